import os
import stat
import subprocess
import sys

import pytest

from fastscnn_tf.files import (
    atomic_path,
    atomic_paths,
    check_input_file,
    check_output_dir,
    check_output_file,
    write_bytes_atomic,
    write_text_atomic,
)


def test_write_replaces_whole_file_with_usual_mode(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    write_text_atomic(path, "one")
    write_text_atomic(path, "two")
    assert path.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("good")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        assert tmp.endswith("model.keras")  # writers that pick a format from the name still work
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "good"
    assert os.listdir(tmp_path) == ["model.keras"]


# A writer killed by SIGKILL mid-write: no clean-up of its own runs.
KILLED_WRITER = (
    "import os, signal, sys\n"
    "from fastscnn_tf.files import atomic_path\n"
    "with atomic_path(sys.argv[1]) as tmp:\n"
    "    open(tmp, 'wb').write(b'half')\n"
    "    os.kill(os.getpid(), signal.SIGKILL)\n"
)


def _dead_pid():
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    return int(process.stdout)


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"good")
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)])
    assert killed.returncode == -9
    left = [n for n in os.listdir(tmp_path) if n != "model.tflite"]
    assert len(left) == 1 and left[0].startswith(".tmp-") and left[0].endswith("-model.tflite")
    assert target.read_bytes() == b"good"
    write_bytes_atomic(target, b"new")
    assert os.listdir(tmp_path) == ["model.tflite"]
    assert target.read_bytes() == b"new"


def test_only_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    names = {
        f".tmp-{dead}-abcd1234-m.png": False,  # a killed writer of m.png
        ".tmp-abcd1234-m.png": False,  # written before temporaries named their process
        f".tmp-{alive}-abcd1234-m.png": True,  # a live writer of m.png
        f".tmp-{dead}-abcd1234-other.png": True,  # another target
        f".tmp-{dead}-abcd1234-x-m.png": True,  # the temporary of x-m.png, not of m.png
    }
    for name in names:
        (tmp_path / name).write_text("")
    write_text_atomic(tmp_path / "m.png", "png")
    kept = {name for name, keep in names.items() if keep}
    assert set(os.listdir(tmp_path)) == kept | {"m.png"}


def test_a_group_of_files_appears_together_or_not_at_all(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    with pytest.raises(RuntimeError), atomic_paths(paths) as temporaries:
        for tmp in temporaries[:2]:
            open(tmp, "w").write("done")
        raise RuntimeError("failed on the third file")
    assert os.listdir(tmp_path) == []
    with atomic_paths(paths) as temporaries:
        for tmp, path in zip(temporaries, paths, strict=True):
            assert not os.path.exists(path)  # nothing appears before all are written
            open(tmp, "w").write(path.name)
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png", "c.png"]
    assert [p.read_text() for p in paths] == ["a.png", "b.png", "c.png"]


def test_output_checks_name_the_option_and_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    check_output_dir(tmp_path / "new" / "deeper")  # created later: fine
    check_output_file(tmp_path / "new" / "m.tflite")
    check_output_file(blocker)  # an existing file is replaced: fine
    with pytest.raises(ValueError, match=f"out={blocker}/run: {blocker} is a file, not a"):
        check_output_dir(blocker / "run")
    with pytest.raises(ValueError, match=f"out={blocker}: is a file, not a folder"):
        check_output_dir(blocker)
    with pytest.raises(ValueError, match=f"output={blocker}/a/m.keras: {blocker} is a file"):
        check_output_file(blocker / "a" / "m.keras")
    with pytest.raises(ValueError, match=f"output={tmp_path}: is a folder, not a file"):
        check_output_file(tmp_path)


def test_input_check_tells_a_folder_from_a_missing_file(tmp_path):
    (tmp_path / "m.keras").mkdir()
    with pytest.raises(ValueError, match="model file .*m.keras is a directory"):
        check_input_file(str(tmp_path / "m.keras"), "model file")
    with pytest.raises(FileNotFoundError, match="model file .*x.keras does not exist"):
        check_input_file(str(tmp_path / "x.keras"), "model file")
