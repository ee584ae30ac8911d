"""The grid detector: layout, targets, decoding (the inverse of the targets), loss, priors, network, COCO scores."""

import warnings

import numpy as np
import pytest
import torch

from course_utils.data.boxes import AnnotatedImage
from course_utils.detection import (
    GridDetectionLoss,
    GridDetector,
    GridSpec,
    cells_view,
    decode,
    encode_targets,
    kmeans_priors,
)
from course_utils.errors import ConfigError, MetricWarning
from course_utils.metrics.boxes import box_iou, nms
from course_utils.metrics.coco import coco_evaluate

CLASSES = ("RBC", "WBC", "Platelets")
SPEC = GridSpec((64, 96), 16, ((20.0, 20.0), (40.0, 36.0)), CLASSES)


def perfect_output(target: torch.Tensor, spec: GridSpec, confidence: float = 12.0) -> torch.Tensor:
    """The raw output ``(1, B * (5 + C), rows, cols)`` whose decoding is exactly the encoded target."""
    cells = torch.zeros(1, spec.rows, spec.cols, spec.boxes_per_cell, spec.numbers_per_box)
    obj = target[..., 4] > 0
    offsets = target[..., :2].clamp(1e-4, 1 - 1e-4)
    cells[0, ..., :2] = torch.log(offsets / (1 - offsets))
    cells[0, ..., 2:4] = target[..., 2:4]
    cells[0, ..., 4] = torch.where(obj, confidence, -confidence)
    for idx in torch.nonzero(obj):
        cells[(0, *idx.tolist(), 5 + int(target[(*idx.tolist(), 5)]))] = confidence
    # (1, rows, cols, B, 5 + C) -> (1, B, 5 + C, rows, cols) -> (1, B * (5 + C), rows, cols)
    return cells.permute(0, 3, 4, 1, 2).reshape(1, spec.out_channels, spec.rows, spec.cols)


BOXES = np.array([[4, 6, 26, 25], [30, 10, 72, 50], [70, 40, 88, 60], [50, 2, 58, 9]], dtype=np.float32)
LABELS = np.array([0, 1, 0, 2])


def test_the_spec_checks_its_numbers_and_round_trips():
    assert (SPEC.rows, SPEC.cols, SPEC.boxes_per_cell, SPEC.numbers_per_box, SPEC.out_channels) == (4, 6, 2, 8, 16)
    assert GridSpec.from_dict(SPEC.to_dict()) == SPEC
    with pytest.raises(ConfigError, match="multiples of the stride 16"):
        GridSpec((60, 96), 16, ((10, 10),), CLASSES)
    with pytest.raises(ConfigError, match="positive"):
        GridSpec((64, 96), 16, ((10, 0),), CLASSES)


def test_cells_view_puts_channel_b_times_5_plus_c_plus_k_at_slot_b_number_k():
    raw = torch.arange(SPEC.out_channels, dtype=torch.float32).view(1, -1, 1, 1).expand(1, -1, 4, 6).contiguous()
    cells = cells_view(raw, SPEC)
    assert cells.shape == (1, 4, 6, 2, 8)
    assert cells[0, 3, 5, 1, 4] == 1 * 8 + 4 and cells[0, 0, 0, 0, 7] == 7
    with pytest.raises(ValueError, match="does not fit the grid"):
        cells_view(raw[:, :-1], SPEC)


def test_decoding_a_perfect_output_gives_back_the_encoded_boxes():
    target, dropped = encode_targets(BOXES, LABELS, SPEC)
    assert dropped == 0 and int(target[..., 4].sum()) == 4
    assert ((target[..., :2] >= 0) & (target[..., :2] < 1)).all()
    (found,) = decode(perfect_output(target, SPEC), SPEC, score_threshold=0.5)
    assert len(found) == 4
    order = np.argmax(box_iou(BOXES, found.boxes), axis=1)
    np.testing.assert_allclose(found.boxes[order], BOXES, atol=1e-2)
    assert found.labels[order].tolist() == LABELS.tolist() and (found.scores > 0.99).all()


def test_a_box_goes_to_the_slot_whose_prior_has_its_shape_and_a_full_cell_drops_the_smaller_box():
    target, _ = encode_targets(np.array([[2, 2, 14, 14], [20, 20, 60, 56]]), np.array([2, 1]), SPEC)
    assert target[0, 0, 0, 4] == 1 and target[0, 0, 1, 4] == 0  # small box: the small prior (slot 0)
    assert target[2, 2, 1, 4] == 1 and target[2, 2, 0, 4] == 0  # centre (40, 38): row 2, col 2, large prior
    one_slot = GridSpec((64, 96), 16, ((20.0, 20.0),), CLASSES)
    same_cell = np.array([[0, 0, 30, 30], [4, 4, 26, 26]], dtype=np.float32)  # both centred in cell (0, 0)
    target, dropped = encode_targets(same_cell, np.array([0, 2]), one_slot)
    assert dropped == 1 and target[0, 0, 0, 5] == 0  # the larger box (class 0) kept
    np.testing.assert_allclose(target[0, 0, 0, 2].item(), np.log(30 / 20), rtol=1e-6)


def test_decode_applies_nms_per_class_as_the_hand_written_nms_does():
    spec = GridSpec((64, 96), 16, ((20.0, 20.0), (24.0, 24.0)), CLASSES)
    boxes = np.array([[8, 8, 28, 28], [40, 8, 60, 28]], dtype=np.float32)
    target, _ = encode_targets(boxes, np.array([0, 0]), spec)
    raw = perfect_output(target, spec)
    cells = raw.view(1, 2, 8, 4, 6)
    cells[0, 1, :, 1, 1] = cells[0, 0, :, 1, 1]  # slot 1 of cell (1, 1) repeats slot 0's box, less sure:
    cells[0, 1, 2:4, 1, 1] = np.log(20 / 24)  # the same size through its own prior
    cells[0, 1, 4, 1, 1] = 1.0
    (kept,) = decode(raw, spec, score_threshold=0.3)
    (every,) = decode(raw, spec, score_threshold=0.3, iou_threshold=None)
    assert len(every) == 3 and len(kept) == 2
    by_hand = nms(every.boxes, every.scores, 0.5)
    np.testing.assert_allclose(np.sort(every.scores[by_hand]), np.sort(kept.scores))


def test_decode_with_an_nms_function_keeps_what_torchvision_keeps_best_first():
    torch.manual_seed(0)
    raw = torch.randn(2, SPEC.out_channels, SPEC.rows, SPEC.cols) * 2
    calls = []

    def numpy_nms(boxes, scores, iou_threshold):
        calls.append(len(scores))
        assert isinstance(boxes, np.ndarray) and boxes.shape == (len(scores), 4)
        return nms(boxes, scores, iou_threshold)

    for threshold in (0.3, 0.6):
        theirs = decode(raw, SPEC, score_threshold=0.05, iou_threshold=threshold, max_detections=40)
        ours = decode(raw, SPEC, score_threshold=0.05, iou_threshold=threshold, max_detections=40, nms_fn=numpy_nms)
        for a, b in zip(theirs, ours):
            assert len(a) == len(b) and len(a) > 5
            np.testing.assert_array_equal(a.scores, b.scores)  # the same boxes, by decreasing score
            np.testing.assert_array_equal(a.labels, b.labels)
            np.testing.assert_array_equal(a.boxes, b.boxes)
    assert calls and len(calls) <= 2 * 2 * len(CLASSES)  # once per class and image
    (every,) = decode(raw[:1], SPEC, score_threshold=0.05, iou_threshold=None, nms_fn=numpy_nms, max_detections=10**6)
    assert len(calls) <= 12 and len(every) > len(ours[0]), "no NMS: the function is not called"


def test_the_loss_is_smallest_for_the_perfect_output_and_its_gradients_are_finite():
    target, _ = encode_targets(BOXES, LABELS, SPEC)
    loss = GridDetectionLoss(SPEC)
    perfect = perfect_output(target, SPEC)
    best = loss(perfect, target[None])
    assert set(loss.parts) == {"xy", "wh", "object", "class"} and best < 0.05
    shifted = perfect.clone().requires_grad_(True)
    worse = loss(shifted + 0.5 * torch.randn(perfect.shape, generator=torch.Generator().manual_seed(0)), target[None])
    worse.backward()
    assert worse > 10 * best and torch.isfinite(shifted.grad).all()
    with pytest.raises(ValueError, match="target of shape"):
        loss(perfect, target)


def test_kmeans_priors_find_the_three_sizes_of_blood_cells():
    rng = np.random.default_rng(0)
    sizes = np.concatenate([rng.normal(c, 2, size=(n, 2)) for c, n in ((10.0, 30), (50.0, 200), (90.0, 10))]).clip(1)
    priors = kmeans_priors(sizes, 3)
    np.testing.assert_allclose(priors.mean(1), [10, 50, 90], atol=3)
    with pytest.raises(ValueError, match="at least k=3 boxes"):
        kmeans_priors(sizes[:2], 3)


def test_the_small_detector_has_the_grid_shape_and_learns_one_image():
    torch.manual_seed(0)
    model = GridDetector(SPEC, backbone="small", width=16)
    image = torch.rand(1, 3, 64, 96)
    assert model(image).shape == (1, SPEC.out_channels, SPEC.rows, SPEC.cols)
    target = encode_targets(BOXES, LABELS, SPEC)[0][None]
    loss = GridDetectionLoss(SPEC)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(60):
        value = loss(model(image), target)
        first = first if first is not None else value.item()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    assert value.item() < 0.3 * first
    with pytest.raises(ValueError, match="stride 16"):
        GridDetector(GridSpec((64, 96), 32, ((10, 10),), CLASSES), backbone="small")


def _image(boxes, labels, name="a.png"):
    return AnnotatedImage(name, 100, 80, np.asarray(boxes, np.float32), np.asarray(labels), CLASSES)


class _Found:
    def __init__(self, boxes, scores, labels):
        self.boxes, self.scores, self.labels = np.asarray(boxes, np.float32), np.asarray(scores), np.asarray(labels)


def test_coco_scores_perfect_loose_late_and_missing_detections():
    truth = [_image([[10, 10, 30, 30], [50, 20, 90, 60]], [0, 1]), _image([[5, 5, 25, 25]], [0], "b.png")]
    perfect = [_Found(t.boxes, [0.9] * len(t.boxes), t.labels) for t in truth]
    with pytest.warns(MetricWarning, match="'Platelets' has no annotated box"):
        scores = coco_evaluate(truth, perfect, CLASSES)
    assert scores.map50 == pytest.approx(1.0) and scores.map50_95 == pytest.approx(1.0)
    assert np.isnan(scores.ap50["Platelets"]) and scores.precision50["RBC"].shape == (101,)
    assert scores.recall50["RBC"] == 1.0 and np.isnan(scores.recall50["Platelets"])

    # every box shifted along x so that IoU = 0.72: right at IoU 0.50 ... 0.70 (5 of the 10 thresholds), wrong above
    def shifted(boxes, iou=0.72):
        d = (boxes[:, 2] - boxes[:, 0]) * (1 - iou) / (1 + iou)  # a box of width w shifted by d: (w - d) / (w + d)
        return boxes + np.column_stack([d, 0 * d, d, 0 * d])

    loose = [_Found(shifted(t.boxes), [0.9] * len(t.boxes), t.labels) for t in truth]
    assert np.allclose(np.diag(box_iou(loose[0].boxes, truth[0].boxes)), 0.72, atol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        scores = coco_evaluate(truth, loose, CLASSES)
        assert scores.map50 == pytest.approx(1.0) and scores.map50_95 == pytest.approx(0.5)

        # a false red cell ranked above the true one on image b: precision 1/2 at recall 1/2 ... COCO's AP by hand
        late = [perfect[0], _Found([[60, 50, 80, 70], [5, 5, 25, 25]], [0.95, 0.5], [0, 0])]
        scores = coco_evaluate(truth, late, CLASSES)
        # RBC: detections by score: image a's (0.9, right), b's false (0.95 first!), b's right (0.5).
        # order 0.95 F, 0.9 T, 0.5 T: precision 0, 1/2, 2/3 at recall 0, 1/2, 1; made monotone: 2/3 everywhere.
        assert scores.ap50["RBC"] == pytest.approx(2 / 3, abs=1e-6) and scores.ap50["WBC"] == pytest.approx(1.0)
        missed = coco_evaluate(truth, [perfect[0], _Found(np.zeros((0, 4)), [], [])], CLASSES)
        assert missed.recall50["RBC"] == pytest.approx(0.5) and missed.ap50["RBC"] == pytest.approx(0.5, abs=0.01)

        nothing = coco_evaluate(truth, [_Found(np.zeros((0, 4)), [], []) for _ in truth], CLASSES)
        assert nothing.map50 == 0.0 and nothing.ap50["RBC"] == 0.0
    with pytest.raises(ValueError, match="one detection list per image"):
        coco_evaluate(truth, perfect[:1], CLASSES)
