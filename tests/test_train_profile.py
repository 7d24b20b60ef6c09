"""`benchmarks/train_profile.py` (issue #26): op names filed by pass, stage and kind as the
network's layer table says, and a whole traced run on a tiny generated CamVid."""

import pytest

from helpers import ROOT, load_script, write_tiny_camvid


@pytest.fixture(scope="module")
def profile():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports its siblings
    try:
        yield load_script("benchmarks/train_profile.py")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "StatefulPartitionedCall/fast_scnn_1/gfe_b1_2_dw_1/depthwise:_MklNativeDepthwiseConv2dNative",
            ("forward", "GFE bottlenecks", "depthwise conv"),
        ),
        (
            "StatefulPartitionedCall/gradient_tape/fast_scnn_1/ffm_high_conv_1/convolution/"
            "Conv2DBackpropFilter:_MklNativeConv2DBackpropFilterWithBias",
            ("backward", "feature fusion", "1x1 conv"),
        ),
        (
            "StatefulPartitionedCall/gradient_tape/fast_scnn_1/ltd_conv_1/convolution/"
            "Conv2DBackpropFilter:_MklNativeConv2DBackpropFilter",
            ("backward", "learning to downsample", "3x3 conv"),
        ),
        (
            "StatefulPartitionedCall/fast_scnn_1/gfe_ppm_bin6_conv_bn_1/FusedBatchNormV3:"
            "_MklNativeFusedBatchNormV3",
            ("forward", "pyramid pooling", "batch norm"),
        ),
        (
            "StatefulPartitionedCall/gradient_tape/fast_scnn_1/aux_logits_up_1/"
            "ResizeBilinearGrad:ResizeBilinearGrad",
            ("backward", "full-size upsampling", "bilinear resize"),
        ),
        (
            "StatefulPartitionedCall/compile_loss/segmentation_cross_entropy_1/"
            "SparseSoftmaxCrossEntropyWithLogits/SparseSoftmaxCrossEntropyWithLogits:"
            "SparseSoftmaxCrossEntropyWithLogits",
            ("loss", "losses (full size)", "cross-entropy"),
        ),
        (
            "StatefulPartitionedCall/sgd/AssignSubVariableOp_78:AssignSubVariableOp",
            ("optimizer", "-", "element-wise / other"),
        ),
        (
            "StatefulPartitionedCall/UnsortedSegmentSum:UnsortedSegmentSum",
            ("metrics and glue", "-", "element-wise / other"),
        ),
        (
            "StatefulPartitionedCall/fast_scnn_1/aux_conv_1/convolution:_MklNativeConv2D",
            ("forward", "aux head", "3x3 conv"),
        ),
    ],
)
def test_ops_are_filed_by_pass_stage_and_kind(profile, name, expected):
    assert profile.classify(name) == expected


def test_busy_time_is_the_union_of_overlapping_ops(profile):
    # Two compute threads: [0, 10) and [5, 12) overlap, [20, 25) stands alone, [21, 22) inside it.
    assert profile.union_ps([(20, 25), (0, 10), (5, 12), (21, 22)]) == 12 + 5
    assert profile.union_ps([]) == 0


@pytest.mark.slow
def test_a_traced_run_reports_every_part(profile, tmp_path, capsys, monkeypatch):
    write_tiny_camvid(tmp_path, {"train": ["0001TP_1", "0006R0_1"], "val": ["0016E5_9"]})
    argv = ["train_profile.py", "--data", str(tmp_path), "--crop", "64x64", "--batch", "2"]
    monkeypatch.setattr("sys.argv", [*argv, "--steps", "2", "--trace", str(tmp_path / "t")])
    assert profile.main() == 0
    out = capsys.readouterr().out
    assert "2 steps traced, batch 2" in out
    shares = {}
    table = out.split("| pass | ms a step | share of op time |")[1].split("\n\n")[0]
    for row in table.strip().splitlines()[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        shares[cells[0]] = float(cells[2].rstrip(" %"))
    assert {"forward", "backward", "loss", "optimizer"} <= set(shares)
    assert sum(shares.values()) == pytest.approx(100, abs=0.5)
    for part in ("checkpoints, backup, logs", "validation (1 batch of 4)", "tf.data threads"):
        assert part in out
    assert list((tmp_path / "t").rglob("*.xplane.pb"))  # kept for TensorBoard


def test_end_to_end_caps_both_sides_kernels_with_the_environment(profile):
    """`train_end_to_end.py --max-isa avx2` hands the children the variables that oneDNN and
    PyTorch read, and a child that reads them sees AVX2."""
    import sys

    end_to_end = load_script("benchmarks/train_end_to_end.py")
    env = end_to_end.ISA_ENV["avx2"]
    probe = (  # fails, and timed_lines raises, unless the child runs capped
        "import os, torch; assert os.environ['ONEDNN_MAX_CPU_ISA'] == 'AVX2'; "
        "assert torch.backends.cpu.get_cpu_capability() == 'AVX2'; print('isa')"
    )
    marks, wall = end_to_end.timed_lines([sys.executable, "-c", probe], "isa", env)
    assert len(marks) == 1 and wall >= marks[0] > 0
    assert env == {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
