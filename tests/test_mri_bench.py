"""benchmarks/bench_mri.py in a tiny configuration on the synthetic fallback (no open_ms_data in the data root)."""

import json
import math

from conftest import load_benchmark

KEYS = (
    "dice",
    "lesion_sensitivity",
    "lesion_precision",
    "lesion_f1",
    "avd_percent",
    "hd95_mm",
    "train_seconds",
    "infer_seconds_per_volume",
)


def _bench():
    return load_benchmark("bench_mri")


def test_bench_mri_tiny_on_synthetic_data(empty_data_root, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PLAIN_PROGRESS", "1")
    result = _bench().main(
        [
            "--profile",
            "smoke",
            "--set",
            "spacing=6.0",
            "--set",
            "n_synthetic_cases=2",
            "--set",
            "epochs=1",
            "--set",
            "samples_per_epoch=8",
            "--set",
            "patch_size=8",
            "--set",
            "base_width=2",
            "--set",
            "depth=2",
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1]) == json.loads(json.dumps(result)), "the JSON object is the last stdout line"
    assert len(out) == 1, "progress goes to stderr, stdout holds only the JSON line"
    assert result["data"] == "synthetic" and result["profile"] == "smoke" and result["threads"] >= 1
    assert result["params"] > 0 and isinstance(result["device"], str)
    assert [f["patient"] for f in result["folds"]] == ["synthetic-000", "synthetic-001"]
    for row in [result] + result["folds"]:
        for key in KEYS:
            assert key in row, key
        for key in ("dice", "lesion_sensitivity", "lesion_precision", "lesion_f1"):
            assert 0.0 <= row[key] <= 1.0, (key, row[key])
        assert row["avd_percent"] >= 0 and row["train_seconds"] >= 0 and row["infer_seconds_per_volume"] > 0
        assert math.isnan(row["hd95_mm"]) or row["hd95_mm"] >= 0
    for key in ("dice", "train_seconds"):  # top-level values are the means over folds
        assert math.isclose(result[key], sum(f[key] for f in result["folds"]) / 2, abs_tol=1e-3)
