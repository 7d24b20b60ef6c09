"""The package's shape: two layers (library below, jobs in `cli/` above), imports pointing
down without cycles, modules a reader can hold, a light root, and saved models that load
after `import fastscnn_tf` alone."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).parents[1] / "fastscnn_tf"
MAX_LINES = 400


def _modules():
    """module name -> path, for every .py file of the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(path, modules):
    """The package modules a file imports (a name imported from a package counts as its
    submodule where there is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in modules}


def _graph():
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_the_library_imports_no_job():
    jobs = "fastscnn_tf.cli"
    wrong = [
        (module, target)
        for module, targets in _graph().items()
        if not (module == jobs or module.startswith(jobs + "."))
        for target in targets
        if target == jobs or target.startswith(jobs + ".")
    ]
    assert wrong == []


def test_imports_have_no_cycles():
    graph, state, cycles = _graph(), {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_module_is_over_400_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def _python(code):
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_importing_the_package_starts_no_tensorflow():
    out = _python(
        "import sys, fastscnn_tf\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    assert out.strip() == "[]"


@pytest.mark.slow
def test_run_checkpoints_load_after_importing_the_package_alone(tmp_path):
    from fastscnn_tf.cli import train

    out = tmp_path / "run"
    config = train.TrainConfig(
        dataset="synthetic:8",
        out=str(out),
        epochs=1,
        steps_per_epoch=2,
        batch_size=2,
        crop=(64, 64),
        overlays=0,
        verbose=0,
    )
    train.train(config)
    # A fresh interpreter, Keras imported after the package and before it, as users do.
    for first, second in (("fastscnn_tf", "keras"), ("keras", "fastscnn_tf")):
        printed = _python(
            f"import {first}\nimport {second}\n"
            f"last = keras.saving.load_model({str(out / 'last.keras')!r}, safe_mode=True)\n"
            f"best = keras.saving.load_model({str(out / 'best.keras')!r}, safe_mode=True)\n"
            "print(type(last.optimizer).__name__, int(last.optimizer.iterations.numpy()),\n"
            "      last.optimizer.get_config()['learning_rate']['class_name'], len(best.outputs))\n"
        )
        assert printed.split() == ["SGDWithL2", "2", "PolyDecay", "1"]
