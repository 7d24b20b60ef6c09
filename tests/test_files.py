import os
import stat

import pytest

from fastscnn_tf.files import atomic_path, write_bytes_atomic, write_text_atomic


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
