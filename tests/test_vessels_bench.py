"""benchmarks/bench_drive.py in its smoke profile, on the synthetic fallback (no DRIVE in the data root)."""

import json

import pytest
from conftest import load_benchmark


def _bench():
    return load_benchmark("bench_drive")


def test_bench_drive_smoke_on_synthetic_data(empty_data_root, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PLAIN_PROGRESS", "1")
    bench = _bench()
    result = bench.main(
        [
            "--profile",
            "smoke",
            "--epochs",
            "1",
            "--set",
            "max_train=4",
            "--set",
            "max_test=2",
            "--set",
            "n_val=1",
        ]
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(result)), "the JSON object is the last line"
    for key in (
        "auc",
        "f1",
        "accuracy",
        "sensitivity",
        "specificity",
        "train_seconds",
        "epochs",
        "planned_epochs",
        "time_capped",
        "infer_seconds_per_image",
        "params",
        "device",
        "threshold",
        "profile",
        "data",
    ):
        assert key in result, key
    assert result["data"] == "synthetic" and result["profile"] == "smoke"
    assert result["epochs"] == result["planned_epochs"] == 1 and result["time_capped"] is False
    assert (result["n_train"], result["n_val"], result["n_test"]) == (3, 1, 2)
    assert 0.0 <= result["auc"] <= 1.0 and result["params"] > 0
    assert "human_f1" not in result, "the synthetic set has no second observer"


def test_bench_drive_rejects_unknown_knobs():
    bench = _bench()
    with pytest.raises(SystemExit, match="knob"):
        bench.parse_overrides(["widht=3"], "cpu")
    assert bench.parse_overrides(["patch_size=64", "tta=none", "lr=0.01"], "cpu") == {
        "patch_size": 64,
        "tta": "none",
        "lr": 0.01,
    }
