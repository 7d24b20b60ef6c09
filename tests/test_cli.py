import os
import subprocess
import sys

import pytest

from fastscnn_tf import cli, tflog
from fastscnn_tf.cli import config as cfg

# Runs `cli.main(argv)` in a fresh interpreter and reports which heavy modules it loaded.
PROBE = (
    "import sys\n"
    "from fastscnn_tf import cli\n"
    "try:\n"
    "    cli.main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
    "print('loaded:', ','.join(loaded) or 'none')\n"
)
TF_LOG_MARKS = ("absl::InitializeLog", "I0000", "E0000", "cuInit", "oneDNN", "cpu_feature_guard")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", tflog.ENV)}
    return {**env, **extra}


def _run(args, **extra_env):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=_env(**extra_env), timeout=300
    )


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["predict", "--help"], ["evaluate", "--help"], ["summary", "--help"]],
)
def test_help_loads_no_tensorflow_and_prints_no_log(argv):
    result = _run(["-c", PROBE, *argv])
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("loaded: none")
    assert "usage: fastscnn" in result.stdout
    assert result.stderr == ""


def test_a_command_that_runs_tensorflow_prints_no_start_up_log():
    argv = ["summary", "--num-classes", "3", "--size", "64x64", "--no-layers"]
    result = _run(["-m", "fastscnn_tf.cli", *argv])
    assert result.returncode == 0, result.stderr
    assert "Fast-SCNN, 3 classes, input 64x64" in result.stdout
    assert not [mark for mark in TF_LOG_MARKS if mark in result.stderr], result.stderr


def test_log_levels_are_left_alone_when_asked(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv(tflog.ENV, "1")
    tflog.quiet()
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    monkeypatch.setenv(tflog.ENV, "0")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")  # the user's own level is kept
    tflog.quiet()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


def test_command_is_found_among_options():
    assert cli.command_in(["--help"]) is None
    assert cli.command_in(["predict", "a.png", "--model", "m.tflite"]) == "predict"
    assert cli.command_in(["nonsense"]) is None


@pytest.mark.parametrize(
    "argv,option",
    [
        (["export", "missing.keras", "--precision", "float32", "--output", "{f}/m.tflite"],
         "--output"),
        (["predict", "a.png", "--model", "missing.tflite", "--out", "{f}/out"], "--out"),
        (["import-weights", "missing.npz", "--output", "{f}/m.keras"], "--output"),
        (["evaluate", "--model", "missing.keras", "--out", "{f}/eval"], "--out"),
        (["train", "--dataset", "synthetic:4", "--out", "{f}/run"], "--out"),
        (["write-data", "--out", "{f}/data"], "--out"),
        (["benchmark", "missing.tflite", "--output-dir", "{f}/bench"], "--output-dir"),
        (["android-assets", "--model", "missing.tflite", "--dest", "{f}/assets"], "--dest"),
    ],
)  # fmt: skip
def test_output_under_a_regular_file_is_refused_before_any_work(tmp_path, capsys, argv, option):
    # The inputs do not exist either: the output is checked first, before anything is read.
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = [a.replace("{f}", str(blocker)) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{option} {blocker}" in err and f"{blocker} is a file, not a folder" in err


def test_path_errors_from_the_work_itself_are_one_line(tmp_path, capsys, monkeypatch):
    def job(config):
        os.makedirs(tmp_path / "file" / "sub")  # NotADirectoryError / FileExistsError

    (tmp_path / "file").write_text("")
    monkeypatch.setattr(cli._module("android-assets"), "run", job)
    assert cli.main(["android-assets", "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "file") in err


def test_unknown_presets_and_missing_models_are_refused_before_tensorflow_loads(tmp_path):
    """`--model camvd` (a typo) and `camvid:fp16` fail in a second, not after TensorFlow."""
    script = (
        "import sys\n"
        "from fastscnn_tf import cli\n"
        "code = cli.main(sys.argv[1:])\n"
        "print('tensorflow loaded' if 'tensorflow' in sys.modules else 'no tensorflow')\n"
        "sys.exit(code)\n"
    )
    (tmp_path / "a.png").write_bytes(b"")
    cases = [
        (["predict", str(tmp_path / "a.png"), "--model", "camvd"], "--model camvd: no such file"),
        (["evaluate", "--model", "camvid:fp16"], "unknown preset variant 'fp16'"),
        (["train", "--init-from", "camvd", "--out", str(tmp_path / "r")], "--init-from camvd"),
        (["benchmark", "camvid", "nothing.tflite"], "models nothing.tflite does not exist"),
    ]
    for argv, expected in cases:
        done = subprocess.run(
            [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, (argv, done.stderr)
        assert expected in done.stderr, (argv, done.stderr)
        assert "fp16" in expected or "nothing" in expected or "presets: camvid" in done.stderr
        if argv[0] != "train":  # train's own module is TensorFlow code
            assert done.stdout.strip() == "no tensorflow", argv


def test_tflite_commands_print_no_litert_delegate_line(tmp_path):
    from fastscnn_tf import presets

    samples = os.path.join(presets.ROOT, "camvid", "samples")
    photo = os.path.join(samples, sorted(os.listdir(samples))[0])
    argv = ["predict", photo, "--model", "camvid:int8", "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-m", "fastscnn_tf.cli", *argv], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "XNNPACK" not in done.stderr and "XNNPACK" not in done.stdout
    assert done.stderr.strip() == ""


def test_messages_name_the_argument_or_file_that_is_wrong(tmp_path, capsys):
    """#24 item 12: each bad value is blamed on itself, in one line, exit 2."""
    from fastscnn_tf import labels

    photo = tmp_path / "a.png"
    photo.write_bytes(b"")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    truncated = tmp_path / "cut.tflite"
    with open(labels_preset_int8(), "rb") as f:
        truncated.write_bytes(f.read()[:5000])
    cases = [
        (["predict", str(photo), "--num-threads", "0"], "--num-threads 0: must be 1 or more"),
        (["summary", "--num-classes", "0"], "--num-classes 0: must be 1 or more"),
        (["benchmark", str(truncated), "--output-dir", str(tmp_path / "bench")],
         "cut.tflite: not a loadable TFLite model"),
    ]  # fmt: skip
    for argv, expected in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bench").exists()  # no empty output folder left behind
    with pytest.raises(ValueError, match=r"latin.txt: not UTF-8 text"):
        labels.read_labels(latin)


def test_library_errors_name_the_flags_on_the_command_line(tmp_path, capsys):
    """The library names parameters as Python does; the command names its flags."""
    from fastscnn_tf.cli.export import ExportConfig
    from fastscnn_tf.cli.import_weights import ImportConfig

    cases = [
        (ExportConfig, "size=32x96: too small", "--size 32x96: too small"),
        (ExportConfig, "metadata=True needs mediapipe, or pass metadata=False.",
         "--metadata needs mediapipe, or pass --no-metadata."),
        (ExportConfig, "output=./m.tflite: is a folder", "--output ./m.tflite: is a folder"),
        (ImportConfig, "pass num_classes=", "pass --num-classes"),
        (ImportConfig, "pass aux=True or drop_aux=True)", "pass --aux or --drop-aux)"),
        # Not an option of the command, or part of a longer name: left as it is.
        (ImportConfig, "calibration_images=0, my_num_classes=3", "calibration_images=0, "
         "my_num_classes=3"),
    ]  # fmt: skip
    for config_cls, library, command in cases:
        assert cfg.in_flags(library, config_cls) == command
    argv = ["evaluate", "--model", "camvid", "--dataset", "synthetic:2", "--ignore-index", "300",
            "--out", str(tmp_path / "eval")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--ignore-index 300: masks are 8-bit" in err and len(err.strip().splitlines()) == 1


def labels_preset_int8():
    from fastscnn_tf import presets

    return presets.path("camvid", "int8")


def test_a_garbage_pth_never_suggests_weights_only_false(tmp_path):
    pytest.importorskip("torch")
    from fastscnn_tf import weights

    garbage = tmp_path / "model.pth"
    garbage.write_bytes(b"\x80\x04\x95" + b"not a checkpoint" * 10)
    with pytest.raises(ValueError, match=r"model.pth: not a readable PyTorch file") as info:
        weights.read_checkpoint(str(garbage))
    assert "weights_only" not in str(info.value)
    import pickle

    import numpy as np  # a pickle that holds more than tensors: torch's advice must not leak

    with open(tmp_path / "object.pth", "wb") as f:
        pickle.dump({"w": np.zeros(3), "f": print}, f)
    with pytest.raises(ValueError, match="not a readable PyTorch file") as info:
        weights.read_checkpoint(str(tmp_path / "object.pth"))
    assert "weights_only" not in str(info.value)
