"""Lesson 07's steps on synthetic smears (and BCCD's split when the data root has it): data, weak masks, the
detector's dataset and training, detection in original pixels, counting thresholds, segment-then-classify."""

import numpy as np
import pytest
import torch
from conftest import real_data_root

from course_utils.config import get_config
from course_utils.data.boxes import AnnotatedImage
from course_utils.detection import Detections, GridSpec, decode
from course_utils.lessons.lesson07 import pipeline as p07

TINY = dict(epochs=1, seg_epochs=1, n_synthetic_train=4, n_synthetic_test=1, batch_size=2)


@pytest.fixture
def tiny(empty_data_root):
    cfg = get_config("07_blood_cells", "smoke", **TINY)
    return cfg, p07.lesson_data(cfg)


def test_synthetic_data_are_resized_and_split_and_boxes_stay_in_original_pixels(tiny):
    cfg, data = tiny
    assert not data.real and (len(data.train), len(data.val), len(data.test)) == (3, 1, 1)
    item = data.train[0]
    assert item.pixels.shape == (cfg.input_height, cfg.input_width, 3) and item.pixels.dtype == np.uint8
    assert (item.truth.width, item.truth.height) == (640, 480)
    np.testing.assert_allclose(item.scale, (cfg.input_width / 640, cfg.input_height / 480))
    np.testing.assert_allclose(item.input_boxes()[:, 2], item.truth.boxes[:, 2] * item.scale[0], rtol=1e-6)


@pytest.mark.skipif(real_data_root() is None or not (real_data_root() / "BCCD").is_dir(), reason="no BCCD")
def test_bccd_keeps_its_own_split():
    cfg = get_config("07_blood_cells", "smoke")
    data = p07.lesson_data(cfg)
    assert data.real and (len(data.train), len(data.val), len(data.test)) == (205, 87, 72)
    assert {c.name for c in data.test}.isdisjoint({c.name for c in data.train + data.val})


def test_weak_masks_are_the_ellipses_inscribed_in_the_boxes():
    pixels = np.zeros((48, 64, 3), np.uint8)
    truth = AnnotatedImage("x.png", 128, 96, np.array([[20, 20, 60, 60], [80, 10, 120, 30]]), [0, 1], ("a", "b"))
    mask = p07.cell_masks(p07.CellImage(pixels, truth))  # half size: circle of radius 10 at (20, 20)
    assert mask.shape == (48, 64) and mask[20, 20] == 1 and mask[11, 11] == 0  # the box corner is not cell
    assert mask[11:30, 11:30].sum() == pytest.approx(np.pi * 10**2, rel=0.06)
    assert mask[10, 50] == 1 and mask[6, 41] == 0  # the flat ellipse of the second box


def test_the_detection_dataset_flips_pixels_and_boxes_together(tiny):
    cfg, data = tiny
    spec = p07.detector_spec(cfg, data.train)
    item = data.train[0]
    marked = np.zeros_like(item.pixels)
    for x0, y0, x1, y1 in item.input_boxes():  # mark each box's centre pixel
        marked[int((y0 + y1) / 2), int((x0 + x1) / 2)] = 255
    ds = p07.DetectionDataset([p07.CellImage(marked, item.truth)], spec, seed=3)
    flipped_somewhere = False
    for epoch in range(1, 7):
        ds.set_epoch(epoch)
        image, target = ds[0]
        (found,) = decode(perfect_raw(target, spec), spec, score_threshold=0.5)
        centres = ((found.boxes[:, :2] + found.boxes[:, 2:]) / 2).astype(int)
        lit = image[0].numpy() > 0.5
        near = [lit[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2].any() for x, y in centres]
        assert len(found) == len(item.truth.boxes) - ds.dropped and all(near)
        flipped_somewhere |= not np.array_equal(image[0].numpy() > 0.5, marked[..., 0] > 0)
    assert flipped_somewhere


def perfect_raw(target, spec):
    cells = torch.zeros(1, spec.rows, spec.cols, spec.boxes_per_cell, spec.numbers_per_box)
    obj = target[..., 4] > 0
    off = target[..., :2].clamp(1e-4, 1 - 1e-4)
    cells[0, ..., :2], cells[0, ..., 2:4] = torch.log(off / (1 - off)), target[..., 2:4]
    cells[0, ..., 4] = torch.where(obj, 12.0, -12.0)
    cells[0, ..., 5] = 12.0
    return cells.permute(0, 3, 4, 1, 2).reshape(1, spec.out_channels, spec.rows, spec.cols)


def test_a_trained_detector_reports_boxes_in_original_pixels_and_coco_scores(tiny):
    cfg, data = tiny
    model, history, seconds, dataset = p07.train_detector(cfg, data, show_progress=False)
    assert len(history) == 1 and seconds > 0 and dataset.boxes > 0
    found, per_image = p07.detect(model, data.test, cfg)
    assert len(found) == 1 and per_image > 0
    if len(found[0]):
        assert found[0].boxes[:, [0, 2]].max() <= 640 and found[0].boxes[:, [1, 3]].max() <= 480
        assert found[0].boxes[:, 2].max() > cfg.input_width or len(found[0]) < 3  # scaled back up, not input pixels
    scores = p07.score_detections(data.test, found)
    assert 0 <= scores.map50 <= 1 and set(scores.ap50) == set(data.classes)


def test_count_thresholds_minimise_the_count_error_per_class():
    spec_classes = ("RBC", "WBC", "Platelets")
    truth = AnnotatedImage("a.png", 64, 64, np.array([[0, 0, 4, 4]] * 3 + [[8, 8, 20, 20]]), [0, 0, 0, 1], spec_classes)
    item = p07.CellImage(np.zeros((64, 64, 3), np.uint8), truth)
    found = Detections(
        np.zeros((6, 4), np.float32), np.array([0.9, 0.8, 0.7, 0.32, 0.6, 0.2]), np.array([0, 0, 0, 0, 1, 1])
    )
    thresholds = p07.count_thresholds([found], [item])
    assert thresholds[0] > 0.32 and thresholds[0] <= 0.7 and thresholds[1] > 0.2 and thresholds[1] <= 0.6
    counts = p07.detection_counts([found], thresholds)
    assert counts.tolist() == [[3, 1, 0]]
    assert p07.count_errors(counts, [item]) == {"RBC": 0.0, "WBC": 0.0, "Platelets": 0.0}


def test_segment_then_classify_finds_and_names_the_cells_of_a_perfect_map(tiny):
    cfg, data = tiny
    objects = [p07.cell_objects(p07.cell_masks(c).astype(np.float32), c, cfg) for c in data.train]
    n_boxes = sum(len(c.truth.boxes) for c in data.train)
    assert 0.6 * n_boxes <= sum(o.n for o in objects) <= 1.4 * n_boxes
    matched = np.concatenate([o.truth for o in objects])
    assert (matched != p07.OBJECT_CLASSES.index(p07.NOT_A_CELL)).mean() > 0.5
    classifier = p07.fit_object_classifier(objects)
    found = p07.classify_objects(objects[0], classifier)
    assert set(found.labels.tolist()) <= {0, 1, 2} and (np.diff(found.scores) <= 0).all()
    model, history, _ = p07.train_cell_unet(cfg, data, show_progress=False)
    probs, per_image = p07.segment(model, data.test)
    assert probs.shape == (1, cfg.input_height, cfg.input_width) and 0 <= probs.min() and probs.max() <= 1


def test_the_multires_unet_is_built_from_the_block_knob(empty_data_root):
    plain = p07.build_cell_unet(get_config("07_blood_cells", "smoke"))
    multires = p07.build_cell_unet(get_config("07_blood_cells", "smoke", block="multires"))
    assert len(plain.res_paths) == 0 and len(multires.res_paths) == 2
    x = torch.rand(1, 3, 32, 32)
    assert multires(x).shape == plain(x).shape == (1, 1, 32, 32)


def test_the_spec_of_the_profile_has_its_priors_from_the_training_boxes(tiny):
    cfg, data = tiny
    spec = p07.detector_spec(cfg, data.train)
    assert isinstance(spec, GridSpec) and spec.boxes_per_cell == cfg.boxes_per_cell
    areas = [w * h for w, h in spec.priors]
    assert areas == sorted(areas) and spec.image_size == (cfg.input_height, cfg.input_width)


def test_tally_detections_counts_cells_found_per_class_with_the_given_iou():
    classes = ("RBC", "WBC", "Platelets")
    truth = AnnotatedImage("a.png", 64, 64, np.array([[0, 0, 10, 10], [20, 20, 40, 40]]), [0, 1], classes)
    item = p07.CellImage(np.zeros((64, 64, 3), np.uint8), truth)
    found = Detections(
        np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 40, 40], [20, 20, 40, 40]], np.float32),
        np.array([0.9, 0.8, 0.7, 0.6]),
        np.array([0, 0, 0, 1]),  # a copy of the red cell, and the white cell's box once with the wrong class
    )
    tally = p07.tally_detections([item], [found])
    assert tally == {"detections": 4, "found": 2, "annotated": 2, "recall": 1.0, "precision": 0.5}
    none = p07.tally_detections([item], [Detections(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0, int))])
    assert none["found"] == 0 and none["precision"] == 0.0 and none["recall"] == 0.0
    calls = []
    p07.tally_detections([item], [found], iou=lambda a, b: calls.append(1) or np.ones((len(a), len(b))))
    assert calls, "the IoU function given is used"
