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
        args = bench_parser("x").parse_args(["--profile", "smoke", "--set", "train_seconds=100"])
        cfg, _ = start_run("04_mri_lesions", args, train_seconds=None, seed=None)  # the option left unset
        assert cfg.train_seconds == 100.0
        with pytest.raises(SystemExit, match="train_seconds given twice"):
            start_run("04_mri_lesions", args, train_seconds=50.0)
    finally:
        torch.set_num_threads(before)
