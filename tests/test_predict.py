"""``python -m course_utils.predict``: a tiny model trained in the smoke profile, saved through the checkpoint
contract, applied in a fresh process to inputs of another size than it was trained at."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from course_utils import get_config
from course_utils.checkpoint import save_checkpoint
from course_utils.data.fundus import estimate_fov, preprocess_cases
from course_utils.data.synthetic_fundus import make_synthetic_fundus
from course_utils.lessons.lesson03 import pipeline as p03
from course_utils.predict import predict_vessels
from course_utils.recipe import train_model


@pytest.fixture(scope="module")
def vessel_checkpoint(tmp_path_factory):
    """A lesson 03 U-Net trained for 2 epochs on 128 x 128 synthetic photographs; ``(path, cases, record)``."""
    torch.manual_seed(0)
    cfg = get_config("03_drive_vessels", "smoke", base_width=4, depth=2)
    cases = make_synthetic_fundus(3, size=(128, 128), seed=3)
    train = preprocess_cases(cases[:2], cfg.channel)
    model = p03.build_vessel_model(1, base_width=4, depth=2)
    x = torch.from_numpy(np.stack([c.image for c in train])).permute(0, 3, 1, 2)
    y = torch.from_numpy(np.stack([c.vessels for c in train])[:, None].astype(np.float32))
    train_model(model, [(x, y)], lr=1e-2, epochs=2, show_progress=False, verbose=False)
    record = p03.model_record(
        model,
        cfg,
        threshold=0.5,
        threshold_source="test",
        train_cases=cases[:2],
        data_source="synthetic",
        seconds=1.0,
        epochs=2,
    )
    path = tmp_path_factory.mktemp("ckpt") / "unet-smoke.pt"
    save_checkpoint(path, model.eval(), record=record)
    return path, cases, record


def _save_rgb(path, image):
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path)


def test_vessels_at_the_training_scale_equal_the_lessons_prediction(vessel_checkpoint, tmp_path):
    path, cases, record = vessel_checkpoint
    case = cases[2]
    photo, fov = tmp_path / "photo.png", tmp_path / "fov.png"
    _save_rgb(photo, case.image)
    Image.fromarray(case.fov.astype(np.uint8) * 255).save(fov)
    (result,) = predict_vessels(path, [photo], tmp_path / "out", fovs=[fov], show_progress=False)
    from course_utils.checkpoint import load_model

    model, _ = load_model(path)
    png = case.image.copy()
    png[:] = np.asarray(Image.open(photo), dtype=np.float32) / 255  # the same 8-bit image the command read
    pre = preprocess_cases([type(case)(case.name, png, case.vessels, case.fov)], record.normalisation["channel"])
    (expected,), _ = p03.predict_cases(model, pre, tta=record.inference["tta"], amp=record.inference["amp"])
    assert result.scale == pytest.approx(1.0, abs=0.01)
    np.testing.assert_allclose(result.prob, expected, atol=1e-5)


def test_vessels_command_on_a_larger_photograph_without_fov_in_a_fresh_process(vessel_checkpoint, tmp_path):
    path, cases, record = vessel_checkpoint
    case = cases[2]
    big = np.asarray(Image.fromarray((case.image * 255).astype(np.uint8)).resize((200, 190), Image.BILINEAR))
    label = np.asarray(Image.fromarray(case.vessels.astype(np.uint8) * 255).resize((200, 190), Image.NEAREST))
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=95)
    Image.fromarray(label).save(tmp_path / "big_label.png")
    cmd = [sys.executable, "-m", "course_utils.predict", "vessels", str(path), str(tmp_path / "big.jpg")]
    cmd += ["--out", str(tmp_path / "out"), "--labels", str(tmp_path / "big_label.png")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    prob = np.asarray(Image.open(tmp_path / "out" / "big_vessel_prob.png"))
    vessels = np.asarray(Image.open(tmp_path / "out" / "big_vessels.png")) > 0
    assert prob.shape == vessels.shape == (190, 200)
    assert "FOV estimated" in proc.stdout and "scale x0.6" in proc.stdout  # 200 px wide -> the 128 px it learnt at
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    fov = estimate_fov(np.asarray(Image.open(tmp_path / "big.jpg"), dtype=np.float32) / 255)
    truth = np.asarray(Image.open(tmp_path / "big_label.png")) > 0
    mine = p03.evaluate_vessels(
        [prob / 65535.0], [type(case)("big", np.zeros((190, 200, 3), np.float32), truth, fov)], record.threshold
    )
    for key in ("f1", "sensitivity", "specificity", "precision", "accuracy"):
        assert metrics["pooled"][key] == pytest.approx(mine[key], abs=2e-3), key
    assert metrics["pooled"]["auc"] == pytest.approx(mine["auc"], abs=5e-3)
    # a second run refuses to overwrite, before any work
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "already exist" in proc.stderr and "big_vessel_prob.png" in proc.stderr


def test_vessels_bad_inputs_are_named(vessel_checkpoint, tmp_path):
    path, cases, _ = vessel_checkpoint
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(Exception, match=r"broken.png: cannot read it as an image"):
        predict_vessels(path, [tmp_path / "broken.png"], tmp_path / "o1", show_progress=False)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "black.png")
    with pytest.raises(Exception, match=r"black.png: the image is entirely black"):
        predict_vessels(path, [tmp_path / "black.png"], tmp_path / "o2", show_progress=False)
    _save_rgb(tmp_path / "a.png", cases[2].image)
    with pytest.raises(Exception, match=r"--labels: give one file per photograph \(1\), got 2"):
        predict_vessels(path, [tmp_path / "a.png"], tmp_path / "o3", labels=[tmp_path / "a.png"] * 2)
    with pytest.raises(Exception, match="holds a 03_drive_vessels 'unet' model; this command needs a 04_mri_lesions"):
        from course_utils.predict import load_predictor

        load_predictor(path, "04_mri_lesions", "unet3d")
