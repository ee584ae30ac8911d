"""benchmarks/bench_transfer.py in a tiny configuration: synthetic 96x96 images, a few steps, offline weights."""

import json

import pytest
from conftest import load_benchmark


def _bench():
    return load_benchmark("bench_transfer")


def test_bench_transfer_tiny_run_prints_the_json_contract(empty_data_root, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on an offline machine: "auto" falls back to Lite1
    bench = _bench()
    load = bench.load_vessel_data
    monkeypatch.setattr(bench, "load_vessel_data", lambda **kw: load(**kw, synthetic_size=(96, 96)))
    result = bench.main(
        [
            "--profile",
            "smoke",
            "--set",
            "sizes=1,2",
            "--set",
            "steps=2",
            "--set",
            "patch_size=32",
            "--set",
            "batch_size=2",
            "--set",
            "max_test=1",
        ]
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(result)), "the JSON object is the last line"
    for key in ("encoder_weights", "results", "profile", "device", "threads", "data"):
        assert key in result, key
    assert result["encoder_weights"] == "imagenet-lite1" and result["data"] == "synthetic"
    assert result["profile"] == "smoke" and result["threads"] >= 1
    rows = result["results"]
    assert len(rows) == 8 and {r["n_train_images"] for r in rows} == {1, 2}
    assert {r["variant"] for r in rows} == {
        "scratch_unet",
        "random_encoder",
        "frozen_pretrained",
        "finetuned_pretrained",
    }
    for row in rows:
        for key in ("variant", "n_train_images", "f1", "auc", "trainable_params", "train_seconds"):
            assert key in row, key
        assert 0 <= row["f1"] <= 1 and 0 <= row["auc"] <= 1 and row["train_seconds"] >= 0
    by = {(r["variant"], r["n_train_images"]): r for r in rows}
    assert by[("frozen_pretrained", 2)]["trainable_params"] < by[("finetuned_pretrained", 2)]["trainable_params"]
    assert set(result["f1_gain_finetuned_over_random"]) == {"1", "2"}


def test_bench_transfer_rejects_unknown_knobs():
    with pytest.raises(SystemExit, match="knob"):
        _bench().parse_overrides(["stpes=3"], "cpu")
