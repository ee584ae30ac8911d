"""The command line shared by the benchmark scripts."""

import pytest
import torch

from course_utils.bench_cli import bench_parser, parse_overrides, start_run


def test_parser_knows_profile_threads_and_repeated_set():
    args = bench_parser("x").parse_args(["--profile", "smoke", "--set", "seed=3", "--set", "tta=none"])
    assert args.profile == "smoke" and args.threads is None and args.set == ["seed=3", "tta=none"]
    with pytest.raises(SystemExit):
        bench_parser("x").parse_args(["--profile", "fast"])


def test_unknown_knob_exits_with_the_knob_list():
    with pytest.raises(SystemExit, match="patch_size"):
        parse_overrides("03_drive_vessels", ["widht=3"], "cpu")


def test_start_run_applies_set_overrides_and_threads(monkeypatch):
    monkeypatch.delenv("COURSE_PLAIN_PROGRESS", raising=False)
    before = torch.get_num_threads()
    try:
        args = bench_parser("x").parse_args(["--profile", "smoke", "--threads", "1", "--set", "patch_size=32"])
        cfg, device = start_run("03_drive_vessels", args, seed=7)
        assert cfg.profile == "smoke" and cfg.patch_size == 32 and cfg.seed == 7
        assert torch.get_num_threads() == 1 and device.type in ("cpu", "cuda", "mps")
    finally:
        torch.set_num_threads(before)


def test_a_knob_from_set_and_from_its_own_option_is_refused_but_set_alone_works():
    before = torch.get_num_threads()
    try:
        args = bench_parser("x").parse_args(["--profile", "smoke", "--set", "epochs=7"])
        cfg, _ = start_run("04_mri_lesions", args, epochs=None, seed=None)  # the option left unset
        assert cfg.epochs == 7
        with pytest.raises(SystemExit, match="epochs given twice"):
            start_run("04_mri_lesions", args, epochs=5)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "pair, message",
    [
        ("tta=flip", "Did you mean 'flips'"),
        ("threshold_criterion=f1x", "Did you mean 'f1'"),
        ("rim_mm=-1", "rim_mm"),
        ("max_train_seconds=-5", "max_train_seconds"),
        ("lr=nan", "lr"),
        ("epochs=0", "epochs"),
        ("amp=yes", "amp"),
        ("channels_last=ture", "true"),
        ("epoch=3", "Did you mean 'epochs'"),
    ],
)
def test_a_bad_set_value_exits_before_anything_runs(pair, message):
    """Issue #15, cases 2, 3, 11, 13: a bad --set value stops the benchmark at once, naming the knob."""
    lesson = "04_mri_lesions" if pair.startswith(("threshold", "rim")) else "03_drive_vessels"
    args = bench_parser("x").parse_args(["--profile", "smoke", "--set", pair])
    with pytest.raises(SystemExit, match=message):
        start_run(lesson, args)
