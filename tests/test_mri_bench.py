"""benchmarks/bench_mri.py in a tiny configuration on the synthetic fallback (no open_ms_data in the data root)."""

import json
import math

import pytest
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


@pytest.mark.filterwarnings("ignore:all .* training candidates are:course_utils.errors.MetricWarning")
def test_bench_mri_tiny_on_synthetic_data(empty_data_root, monkeypatch, capsys):
    # one-epoch networks on 6 mm synthetic volumes: a map may be one component, all real; the warning says so
    monkeypatch.setenv("COURSE_PLAIN_PROGRESS", "1")
    result = _bench().main(
        [
            "--profile",
            "smoke",
            "--set",
            "spacing=6.0",
            "--set",
            "n_synthetic_cases=3",
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
            "--seeds",
            "2",
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1]) == json.loads(json.dumps(result)), "the JSON object is the last stdout line"
    assert len(out) == 1, "progress goes to stderr, stdout holds only the JSON line"
    assert result["data"] == "synthetic" and result["profile"] == "smoke" and result["threads"] >= 1
    assert result["params"] > 0 and isinstance(result["device"], str)
    assert [(f["seed"], f["patient"]) for f in result["folds"]] == [
        (s, f"synthetic-00{k}") for s in (0, 1) for k in range(3)
    ]
    assert result["seeds"] == [0, 1]
    for row in [result] + result["folds"]:
        for key in KEYS:
            assert key in row, key
        for key in ("dice", "lesion_sensitivity", "lesion_precision", "lesion_f1"):
            assert 0.0 <= row[key] <= 1.0, (key, row[key])
        assert row["avd_percent"] >= 0 and row["train_seconds"] >= 0 and row["infer_seconds_per_volume"] > 0
        assert math.isnan(row["hd95_mm"]) or row["hd95_mm"] >= 0
    for key in ("dice", "train_seconds"):  # top-level values: the mean over seeds of the mean over folds
        assert math.isclose(result[key], sum(f[key] for f in result["folds"]) / 6, abs_tol=1e-3)
        seed_means = [sum(f[key] for f in result["folds"] if f["seed"] == s) / 3 for s in (0, 1)]
        assert math.isclose(result[key + "_sd"], abs(seed_means[0] - seed_means[1]) / math.sqrt(2), abs_tol=1e-3)
        for patient, entry in result["per_patient"].items():
            runs = [f[key] for f in result["folds"] if f["patient"] == patient]
            assert math.isclose(entry[key], sum(runs) / 2, abs_tol=1e-3)
            assert math.isclose(entry[key + "_sd"], abs(runs[0] - runs[1]) / math.sqrt(2), abs_tol=1e-3)
    assert {"n_pred_lesions", "n_true_lesions", "lesion_f1_sd"} <= set(result)
    # the false-lesion filter: nested (no network that made a training map saw the test patient), paired
    assert result["false_lesion_filter"] is True and result["oof_train_seconds"] >= 0
    for f in result["folds"]:
        oof = f["oof_networks"]
        assert sorted(oof) == sorted(
            p for p in ("synthetic-000", "synthetic-001", "synthetic-002") if p != f["patient"]
        )
        assert all(trained_on != f["patient"] and trained_on != case for case, trained_on in oof.items())
        before = f["before_filter"]
        assert f["n_pred_lesions"] <= before["n_pred_lesions"] and f["n_true_lesions"] == before["n_true_lesions"]
        assert f["pred_volume_ml"] <= before["pred_volume_ml"] + 1e-6, "the filter only removes candidates"
    stage1 = result["before_filter"]
    assert math.isclose(stage1["dice"], sum(f["before_filter"]["dice"] for f in result["folds"]) / 6, abs_tol=1e-3)


def test_bench_mri_without_the_filter_needs_two_patients_and_says_it_needs_three_with_it(empty_data_root):
    import pytest

    tiny = ["--profile", "smoke", "--set", "n_synthetic_cases=2", "--set", "epochs=1", "--seeds", "1"]
    tiny += ["--set", "spacing=6.0", "--set", "samples_per_epoch=8", "--set", "patch_size=8", "--set", "depth=2"]
    with pytest.raises(SystemExit, match="at least 3 patients"):
        _bench().main(tiny)
    result = _bench().main(tiny + ["--no-filter"])
    assert result["false_lesion_filter"] is False and "before_filter" not in result
    assert all("before_filter" not in f for f in result["folds"]) and len(result["folds"]) == 2


def test_bench_mri_summary_of_one_seed_has_no_spread():
    bench = _bench()
    folds = [
        {"seed": 0, "patient": p, **{k: v for k in bench.SUMMARY_KEYS}} for p, v in (("a", 0.2), ("b", float("nan")))
    ]
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = bench.summarise(folds)
    assert out["dice"] == 0.2 and out["dice_sd"] is None, "NaN left out of the mean, no sd from one seed"
    assert any("dice" in str(w.message) for w in caught), "the NaN left out is reported"
    assert math.isnan(out["per_patient"]["b"]["dice"])


def test_bench_mri_refuses_an_unknown_patient(empty_data_root):
    import pytest

    with pytest.raises(SystemExit, match="no such patient"):
        _bench().main(["--profile", "smoke", "--only", "patient99", "--set", "n_synthetic_cases=2"])
