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


@pytest.fixture(scope="module")
def flair_only_checkpoint(tmp_path_factory):
    """A FLAIR-only lesson 04 U-Net trained in the smoke profile on synthetic volumes (4 mm); ``(path, record)``."""
    from course_utils.lessons.lesson04 import pipeline as p04

    cfg = get_config("04_mri_lesions", "smoke", modalities="FLAIR", epochs=3)
    cases = p04.prepare_synthetic(2, seed=11, spacing=cfg.spacing)
    model, _, seconds = p04.train_lesion_network(cases, cfg, seed=0, show_progress=False)
    threshold, _ = p04.training_threshold(model, cases, cfg)
    record = p04.model_record(
        model,
        cfg,
        spacing_mm=[cfg.spacing] * 3,
        threshold=threshold,
        threshold_source="training cases",
        train_cases=[c.name for c in cases],
        data_source="synthetic",
        seconds=seconds,
        epochs=cfg.epochs,
    )
    path = tmp_path_factory.mktemp("ckpt") / "unet3d-smoke.pt"
    save_checkpoint(path, model.eval(), record=record)
    return path, record


def _anisotropic_rotated(case, tmp_path):
    """The case's FLAIR and label resampled to 0.5 x 0.5 x 5 mm voxels on a grid rotated 90 degrees about z."""
    from course_utils.mri.io import Volume, resample_to_grid, save_volume

    extent = np.array(case.shape) * 2.0  # mm, the synthetic grid is 2 mm
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # voxel axis i -> +y, j -> -x
    sizes = np.array([0.5, 0.5, 5.0])
    shape = tuple(int(v) for v in np.ceil(np.array([extent[1], extent[0], extent[2]]) / sizes))
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(sizes)
    corner = case.affine @ np.array([0, 0, 0, 1.0])
    affine[:3, 3] = corner[:3] + np.array([extent[0], 0.0, 0.0])
    flair = resample_to_grid(Volume(case.images["FLAIR"], case.affine), shape, affine, "image")
    label = resample_to_grid(Volume(case.label, case.affine), shape, affine, "label")
    save_volume(flair, tmp_path / "scan_FLAIR.nii.gz")
    save_volume(Volume(label.data.astype(np.uint8), affine), tmp_path / "scan_label.nii.gz")
    return tmp_path / "scan_FLAIR.nii.gz", tmp_path / "scan_label.nii.gz", shape, affine


def test_lesions_command_on_a_rotated_thick_slice_flair_only_scan_in_a_fresh_process(flair_only_checkpoint, tmp_path):
    from course_utils.metrics.lesions import lesion_metrics
    from course_utils.mri.io import load_volume, to_canonical, voxel_size
    from course_utils.mri.synthetic import make_synthetic_case

    path, record = flair_only_checkpoint
    case = make_synthetic_case(seed=40, spacing=2.0)
    flair, label, shape, affine = _anisotropic_rotated(case, tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "course_utils.predict", "lesions", str(path), "--flair", str(flair)]
    cmd += ["--labels", str(label), "--out", str(out), "--hd95", "2d"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "0.5 x 0.5 x 5 mm, the model learnt at 4 mm" in proc.stderr  # the grid mismatch is said
    prob = load_volume(out / "scan_FLAIR_lesion_prob.nii.gz")
    lesions = load_volume(out / "scan_FLAIR_lesions.nii.gz", dtype=None)
    for vol in (prob, lesions):
        assert vol.shape == shape and np.allclose(vol.affine, affine, atol=1e-4)  # the input's own grid
    assert np.isfinite(prob.data).all() and 0 <= prob.data.min() and prob.data.max() <= 1
    table = (out / "scan_FLAIR_lesions.csv").read_text().splitlines()
    assert table[0] == "id,voxels,volume_ml,x_mm,y_mm,z_mm" and len(table) - 1 == int(
        proc.stdout.split(": ")[1].split()[0]
    )
    metrics = json.loads((out / "scan_FLAIR_metrics.json").read_text())
    truth = to_canonical(load_volume(label, dtype=None))
    pred = to_canonical(lesions)
    mine = lesion_metrics(pred.data > 0, truth.data > 0, spacing=voxel_size(truth.affine), erosion="2d")
    for key in ("dice", "lesion_sensitivity", "lesion_precision", "lesion_f1", "n_pred_lesions", "n_true_lesions"):
        assert metrics[key] == pytest.approx(mine[key]), key
    assert metrics["hd95_mm"] == pytest.approx(mine["hd95_mm"], nan_ok=True) and metrics["hd95"] == "2d"
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "already exist" in proc.stderr


def test_lesions_needs_the_images_the_model_was_trained_on(tmp_path):
    from course_utils.lessons.lesson04 import pipeline as p04
    from course_utils.predict import predict_lesions

    cfg = get_config("04_mri_lesions", "smoke", modalities="FLAIR,T1")
    model = p04.build_lesion_model(2, base_width=2, depth=2)
    record = p04.model_record(
        model,
        cfg,
        spacing_mm=[4.0] * 3,
        threshold=0.5,
        threshold_source="-",
        train_cases=[],
        data_source="synthetic",
        seconds=0.0,
        epochs=0,
    )
    save_checkpoint(tmp_path / "two.pt", model, record=record)
    with pytest.raises(Exception, match=r"trained on FLAIR, T1, so it needs T1 too \(--t1\).*modalities"):
        predict_lesions(tmp_path / "two.pt", {"FLAIR": tmp_path / "f.nii.gz"}, tmp_path / "out")
    with pytest.raises(Exception, match=r"f.nii.gz: no such file"):
        predict_lesions(
            tmp_path / "two.pt", {"FLAIR": tmp_path / "f.nii.gz", "T1": tmp_path / "t.nii.gz"}, tmp_path / "o"
        )


def _voc(path, truth, size):
    """Write ``truth``'s boxes (edges from 0) as a Pascal VOC file (1-based inclusive corners) for ``size = (W, H)``."""
    objects = "".join(
        f"<object><name>{truth.classes[int(k)]}</name><bndbox><xmin>{x0 + 1:.0f}</xmin><ymin>{y0 + 1:.0f}</ymin>"
        f"<xmax>{x1:.0f}</xmax><ymax>{y1:.0f}</ymax></bndbox></object>"
        for (x0, y0, x1, y1), k in zip(truth.boxes, truth.labels)
    )
    path.write_text(
        f"<annotation><filename>{path.stem}.jpg</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
        f"<depth>3</depth></size>{objects}</annotation>"
    )


@pytest.fixture(scope="module")
def detector_checkpoint(tmp_path_factory):
    """A lesson 07 grid detector trained for 2 epochs in the smoke profile on synthetic smears; ``(path, record)``."""
    from course_utils.lessons.lesson07 import pipeline as p07

    empty = tmp_path_factory.mktemp("empty-data-root")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_DIR", str(empty))
        cfg = get_config("07_blood_cells", "smoke", epochs=2, score_threshold=0.0)  # boxes even from 2 epochs
        data = p07.lesson_data(cfg)
        model, _, seconds, _ = p07.train_detector(cfg, data, show_progress=False)
    val_found, _ = p07.detect(model, data.val, cfg)
    record = p07.detector_record(
        model,
        cfg,
        count_thresholds=p07.count_thresholds(val_found, data.val),
        data_source="synthetic",
        train_images=[c.name for c in data.train],
        seconds=seconds,
        epochs=cfg.epochs,
    )
    path = tmp_path_factory.mktemp("ckpt") / "detector-smoke.pt"
    save_checkpoint(path, model.eval(), record=record)
    return path, record, model, cfg


def test_cells_checkpoint_rebuilds_the_detector(detector_checkpoint):
    from course_utils.checkpoint import load_model

    path, record, model, _ = detector_checkpoint
    loaded, rec = load_model(path)
    x = torch.rand(1, 3, *record.normalisation["input_size"])
    assert rec.kind == "detector" and rec.builder == "GridDetector"
    assert torch.allclose(loaded(x), model.eval()(x), atol=1e-6)


def test_cells_command_on_a_larger_photograph_in_a_fresh_process(detector_checkpoint, tmp_path):
    from course_utils.data.boxes import read_voc
    from course_utils.data.synthetic_smear import synthetic_smear
    from course_utils.detection import Detections
    from course_utils.lessons.lesson07 import pipeline as p07

    path, record, _, _ = detector_checkpoint
    image, truth, _ = synthetic_smear(seed=777, size=(300, 420))  # another size than the 480 x 640 of training
    Image.fromarray(image).save(tmp_path / "smear.jpg", quality=95)
    _voc(tmp_path / "smear.xml", truth, (420, 300))
    cmd = [sys.executable, "-m", "course_utils.predict", "cells", str(path), str(tmp_path / "smear.jpg")]
    cmd += ["--out", str(tmp_path / "out"), "--labels", str(tmp_path / "smear.xml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    coco = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert coco["images"] == [{"id": 1, "file_name": "smear.jpg", "width": 420, "height": 300}]
    assert [c["name"] for c in coco["categories"]] == ["RBC", "WBC", "Platelets"]
    boxes = np.array([a["bbox"] for a in coco["annotations"]]).reshape(-1, 4)
    assert len(boxes) and (boxes[:, 0] >= -1).all() and (boxes[:, 0] + boxes[:, 2] <= 421).all()
    assert (boxes[:, 1] + boxes[:, 3] <= 301).all()  # in the photograph's pixels, not the network's
    drawn = Image.open(tmp_path / "out" / "smear_boxes.png")
    assert drawn.size[0] > 100
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    found = Detections(
        np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float32),
        np.array([a["score"] for a in coco["annotations"]], np.float32),
        np.array([a["category_id"] - 1 for a in coco["annotations"]], np.int64),
    )
    labelled = p07.CellImage(np.zeros((2, 2, 3), np.uint8), read_voc(tmp_path / "smear.xml", classes=truth.classes))
    mine = p07.score_detections([labelled], [found])
    assert scores["map50"] == pytest.approx(mine.map50, abs=1e-6, nan_ok=True)
    assert scores["map50_95"] == pytest.approx(mine.map50_95, abs=1e-6, nan_ok=True)
