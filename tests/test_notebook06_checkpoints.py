"""Lesson 06 in smoke: without the earlier lessons' checkpoints (it trains fallbacks and says so) and with
checkpoints of lessons 03 and 04 written through their contracts (it loads them and records that)."""

import pytest
import torch
from conftest import REPO

from course_utils.checkpoint import ModelRecord, save_checkpoint
from course_utils.models import UNet
from course_utils.notebook_runner import run_notebook

NOTEBOOK = REPO / "notebooks" / "06_activation_maximization.ipynb"


def _run(tmp_path, monkeypatch, outputs):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(outputs))
    run = run_notebook(NOTEBOOK, "smoke", tmp_path / "build")
    assert run.status == "ok", f"{NOTEBOOK.name} failed: {run.error} (executed copy: {run.output})"
    return run


@pytest.mark.notebooks
def test_lesson06_without_checkpoints_trains_fallbacks(tmp_path, monkeypatch):
    outputs = tmp_path / "empty-outputs"
    outputs.mkdir()
    run = _run(tmp_path, monkeypatch, outputs)
    assert run.records["drive_unet_loaded"] == 0 and run.records["mri_unet_loaded"] == 0
    assert run.records["encoder_finetuned"] == 0
    text = open(run.output, encoding="utf-8").read()
    assert "TRAINED HERE" in text
    assert 0.0 <= run.records["share_above_random_weights"] <= 1.0


@pytest.mark.notebooks
def test_lesson06_loads_the_checkpoints_of_lessons_03_and_04(tmp_path, monkeypatch):
    outputs = tmp_path / "outputs"
    torch.manual_seed(0)
    drive = UNet(in_channels=1, out_channels=1, depth=3, base_width=4)
    drive_record = ModelRecord(
        lesson="03_drive_vessels",
        kind="unet",
        profile="smoke",
        builder="UNet",
        model_config=dict(drive.config),
        inputs=["green"],
        normalisation={"method": "clahe+gamma", "channel": "green", "range": [0.0, 1.0]},
        spacing_mm=None,
        inference={"mode": "whole image", "tta": "none"},
        threshold=0.5,
        threshold_source="test",
        training={"data": "synthetic"},
    )
    # the file names of checkpoint_path (written under this test's own outputs folder)
    save_checkpoint(outputs / "03_drive_vessels" / "unet-smoke.pt", drive, record=drive_record, on_exists="rename")
    mri = UNet(in_channels=2, out_channels=1, dims=3, depth=3, base_width=4)
    mri_record = ModelRecord(
        lesson="04_mri_lesions",
        kind="unet3d",
        profile="smoke",
        builder="UNet",
        model_config=dict(mri.config),
        inputs=["FLAIR", "T1"],
        normalisation={"method": "zscore", "where": "brain mask", "orientation": "RAS"},
        spacing_mm=[4.0, 4.0, 4.0],
        inference={"mode": "sliding window", "patch_size": 16, "tta": "lr"},
        threshold=0.5,
        threshold_source="test",
        training={"data": "synthetic"},
    )
    save_checkpoint(outputs / "04_mri_lesions" / "unet3d-smoke.pt", mri, record=mri_record, on_exists="rename")
    run = _run(tmp_path, monkeypatch, outputs)
    assert run.records["drive_unet_loaded"] == 1 and run.records["mri_unet_loaded"] == 1
    text = open(run.output, encoding="utf-8").read()
    assert "loaded the lesson 03 network" in text and "loaded the lesson 04 network" in text
    assert "TRAINED HERE" not in text
