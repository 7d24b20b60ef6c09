"""The suite's shared harness: markers given by what a test needs, so `make test-fast` can
leave out the slow kinds (`make test` runs everything).

- `browser`: drives Debian's Chromium (tests/test_web.py).
- `torch`: compares with PyTorch itself (tests/test_twin_run.py).
- `arm64`: runs ARM64 LiteRT under qemu-aarch64 (tests/test_arm64.py).
- `subprocess`: starts Python processes (`fastscnn` as a user runs it, kills, workers).
- `slow`: trains or converts at full size (marked by hand).
"""

import inspect

import pytest

BY_MODULE = {"test_web.py": "browser", "test_twin_run.py": "torch", "test_arm64.py": "arm64"}
SUBPROCESS_WORDS = ("subprocess.", "sys.executable")


def _starts_processes(function):
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return any(word in source for word in SUBPROCESS_WORDS)


def pytest_collection_modifyitems(config, items):
    for item in items:
        marker = BY_MODULE.get(item.path.name)
        if marker:
            item.add_marker(getattr(pytest.mark, marker))
        if _starts_processes(getattr(item, "function", None)):
            item.add_marker(pytest.mark.subprocess)
