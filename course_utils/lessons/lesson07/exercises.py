"""Self-checks for lesson 07 (from pixels to objects): a VOC box as a COCO box, box IoU, decoding one grid slot,
greedy NMS, and the experiment with and without NMS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torchvision

from ...data.boxes import voc_to_coco_box
from ...detection import GridSpec, decode_boxes
from ...selfcheck import CheckResult, as_number, correct, not_attempted, pending, returned_nothing, wrong

VOC_CASES = ((10.0, 20.0, 50.0, 80.0), (0.0, 0.0, 640.0, 480.0), (100.5, 7.0, 101.5, 9.0))


def check_voc_to_coco(fn: Any) -> CheckResult:
    """Exercise 1: ``fn((x_min, y_min, x_max, y_max)) -> (x, y, width, height)`` (pixel edges, as the course reads
    Pascal VOC), compared with :func:`course_utils.data.boxes.voc_to_coco_box`."""
    if not_attempted(fn):
        return pending("`voc_to_coco`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. voc_to_coco (without calling it).")
    for box in VOC_CASES:
        try:
            result = fn(box)
            if returned_nothing(result):
                return pending("the body of `voc_to_coco`")
            got = np.asarray(result, dtype=float).reshape(-1)
        except Exception as err:
            return wrong(f"voc_to_coco({box}) failed: {type(err).__name__}: {err}")
        want = np.asarray(voc_to_coco_box(box))
        if got.shape != (4,):
            return wrong(f"voc_to_coco({box}) should return 4 numbers (x, y, width, height), got {got.tolist()}.")
        if np.allclose(got, want):
            continue
        x0, y0, x1, y1 = box
        if np.allclose(got, box):
            return wrong(
                "You returned the corners unchanged. COCO keeps the top-left corner but then wants the "
                "width and the height, not the bottom-right corner."
            )
        if np.allclose(got, [x0, y0, x1 - x0 + 1, y1 - y0 + 1]):
            return wrong(
                "Width and height are one pixel too large: the course's boxes lie on pixel edges "
                "(a box from 10 to 50 is 40 pixels wide); the +1 belongs to one-based pixel indices only."
            )
        if np.allclose(got, [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]):
            return wrong(
                "That is the box's centre: YOLO's labels use (centre x, centre y, w, h); COCO's x, y is "
                "the top-left corner."
            )
        return wrong(f"voc_to_coco({box}) gave {got.tolist()}, expected {want.tolist()}.")
    return correct("Correct: COCO boxes are [x, y, width, height] from the top-left corner, and area = width * height.")


def iou_toy() -> tuple[np.ndarray, np.ndarray]:
    """Two sets of boxes for exercise 2: overlapping, nested, touching, apart, and a zero-area box in each."""
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 40], [0, 0, 4, 4], [70, 70, 70, 75]], dtype=np.float32)
    b = np.array(
        [[0, 0, 10, 10], [2, 2, 6, 6], [10, 0, 20, 10], [50, 50, 60, 60], [3, 3, 3, 9], [22, 25, 31, 33]],
        dtype=np.float32,
    )
    return a, b


def check_box_iou(fn: Any) -> CheckResult:
    """Exercise 2: ``fn(a (N, 4), b (M, 4)) -> (N, M)`` IoU of every pair of corner boxes, compared with
    ``torchvision.ops.box_iou``."""
    if not_attempted(fn):
        return pending("`box_iou`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. box_iou (without calling it).")
    a, b = iou_toy()
    try:
        result = fn(a.copy(), b.copy())
        if returned_nothing(result):
            return pending("the body of `box_iou`")
        got = np.asarray(result, dtype=float)
    except Exception as err:
        return wrong(f"box_iou(a, b) failed: {type(err).__name__}: {err}")
    # torchvision gives 0 / 0 = NaN for two empty boxes; the course's rule (and yours) says 0
    want = np.nan_to_num(torchvision.ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy(), nan=0.0)
    if got.shape == want.T.shape and got.shape != want.shape:
        return wrong(f"The shape is {got.shape}: rows should follow a ({len(a)} boxes), columns b ({len(b)}).")
    if got.shape != want.shape:
        return wrong(f"box_iou(a, b) should be an array of shape {want.shape} (one row per box of a), got {got.shape}.")
    if np.allclose(got, want, atol=1e-5):
        return correct(
            "Correct, the same as torchvision.ops.box_iou: 1 for the same box, 0 for boxes apart or "
            "touching only along an edge."
        )
    if np.isnan(got).any() and np.allclose(np.nan_to_num(got, nan=0.0), want, atol=1e-5):
        return wrong(
            "NaN in your answer: two zero-area boxes (a[4] and b[4], counting from 0) have union 0, and 0 / 0 is NaN. "
            "Return 0 there (divide by max(union, tiny number))."
        )
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    raw = (hi - lo).prod(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if (got < -1e-6).any() or np.allclose(got, raw / (area_a[:, None] + area_b[None] - raw), equal_nan=True):
            return wrong(
                "Boxes far apart give a negative or non-zero overlap: clip the intersection's width and "
                "height at 0 before multiplying (two negatives multiply to a positive area)."
            )
        inter = np.clip(hi - lo, 0, None).prod(-1)
        if np.allclose(got, inter / (area_a[:, None] + area_b[None]), equal_nan=True):
            return wrong(
                "You divided by the sum of the two areas; the union is that sum minus the intersection (counted twice)."
            )
        plus1 = np.clip(hi - lo + 1, 0, None).prod(-1)
        a1 = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
        b1 = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
        if np.allclose(got, plus1 / (a1[:, None] + b1[None] - plus1), atol=1e-5):
            return wrong(
                "You added 1 to widths and heights (the old one-based pixel convention); these boxes lie "
                "on pixel edges, width = x_max - x_min."
            )
    return wrong(f"Not yet. Expected\n{np.round(want, 3)}\ngot\n{np.round(got, 3)}.")


DECODE_SPEC = GridSpec((64, 96), 16, ((20.0, 14.0), (42.0, 40.0)), ("RBC", "WBC", "Platelets"))
DECODE_SLOT = (2, 3, 1)  # row, column, slot
DECODE_NUMBERS = np.array([0.4, -1.2, 0.3, -0.2, 1.5, 0.2, 2.1, -0.7], dtype=np.float32)  # tx ty tw th to logits


def decode_toy() -> dict[str, Any]:
    """The numbers of exercise 3: one slot's ``5 + C`` raw outputs, its row, column and slot, the grid's stride and
    the slot's prior ``(w, h)`` in pixels."""
    row, col, slot = DECODE_SLOT
    return {
        "numbers": DECODE_NUMBERS.copy(),
        "row": row,
        "col": col,
        "stride": DECODE_SPEC.stride,
        "prior": DECODE_SPEC.priors[slot],
    }


def _expected_decode() -> tuple[np.ndarray, float, int]:
    raw = torch.zeros(1, DECODE_SPEC.out_channels, DECODE_SPEC.rows, DECODE_SPEC.cols)
    row, col, slot = DECODE_SLOT
    n = DECODE_SPEC.numbers_per_box
    raw[0, slot * n : (slot + 1) * n, row, col] = torch.from_numpy(DECODE_NUMBERS)
    boxes, objectness, probs = decode_boxes(raw, DECODE_SPEC)
    scores = objectness[0, row, col, slot] * probs[0, row, col, slot]
    return boxes[0, row, col, slot].numpy(), float(scores.max()), int(scores.argmax())


def check_decode_slot(fn: Any) -> CheckResult:
    """Exercise 3: ``fn(numbers, row, col, stride, prior) -> (box (x_min, y_min, x_max, y_max), score, label)``,
    compared with :func:`course_utils.detection.decode_boxes` on :func:`decode_toy`."""
    if not_attempted(fn):
        return pending("`decode_slot`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. decode_slot (without calling it).")
    toy = decode_toy()
    try:
        result = fn(toy["numbers"], toy["row"], toy["col"], toy["stride"], toy["prior"])
        if returned_nothing(result):
            return pending("the body of `decode_slot`")
        box, score, label = result
    except Exception as err:
        return wrong(
            f"decode_slot(numbers, row, col, stride, prior) failed: {type(err).__name__}: {err}. It should return "
            "(box, score, label)."
        )
    box = np.asarray(box, dtype=float).reshape(-1)
    want_box, want_score, want_label = _expected_decode()
    score_value = as_number(score)
    if box.shape != (4,) or score_value is None:
        return wrong("Return three things: the box as 4 numbers (x_min, y_min, x_max, y_max), one score, one label.")
    t = DECODE_NUMBERS.astype(float)
    row, col, stride, (pw, ph) = toy["row"], toy["col"], toy["stride"], toy["prior"]
    sig = 1 / (1 + np.exp(-t[:2]))

    def corners(cx, cy, w, h):
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    box_ok = np.allclose(box, want_box, atol=1e-3)
    if not box_ok:
        w, h = pw * np.exp(t[2]), ph * np.exp(t[3])
        slips = (
            (
                corners((row + sig[0]) * stride, (col + sig[1]) * stride, w, h),
                "x and y are swapped: the column gives x (across), the row gives y (down).",
            ),
            (
                corners((col + t[0]) * stride, (row + t[1]) * stride, w, h),
                "The centre offsets go through a sigmoid first, so the centre stays inside its cell: "
                "x = (col + sigmoid(tx)) * stride.",
            ),
            (
                corners(col + sig[0], row + sig[1], w, h),
                "The centre is in grid units: multiply (col + sigmoid(tx)) by the stride to get pixels.",
            ),
            (
                corners((col + sig[0]) * stride, (row + sig[1]) * stride, pw * t[2], ph * t[3]),
                "Width and height are prior * exp(tw) (a log-scale correction of the prior), not prior * tw.",
            ),
            (
                np.array(
                    [
                        (col + sig[0]) * stride,
                        (row + sig[1]) * stride,
                        (col + sig[0]) * stride + w,
                        (row + sig[1]) * stride + h,
                    ]
                ),
                "(col + sigmoid(tx)) * stride is the centre, not the top-left corner: x_min = centre - width / 2.",
            ),
        )
        for values, message in slips:
            if np.allclose(box, values, atol=1e-3):
                return wrong(message)
        return wrong(f"The box is {np.round(box, 2).tolist()}, expected {np.round(want_box, 2).tolist()}.")
    if int(label) != want_label:
        return wrong(f"The box is right; the label should be the most probable class, index {want_label}.")
    if not np.isclose(score_value, want_score, atol=1e-4):
        logits = t[5:]
        probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        if np.isclose(score_value, probs.max(), atol=1e-4):
            return wrong("The score also needs the objectness: sigmoid(to) * the class probability.")
        if np.isclose(score_value, 1 / (1 + np.exp(-t[4])), atol=1e-4):
            return wrong(
                "That is the objectness alone; multiply it by the probability of the chosen class "
                "(softmax of the class logits)."
            )
        return wrong(f"The box and label are right; the score should be {want_score:.4f}, got {score_value:.4f}.")
    return correct(
        f"Correct: box {np.round(want_box, 1).tolist()}, class {want_label}, score {want_score:.3f}, "
        "the same as course_utils.detection.decode_boxes."
    )


def nms_toy(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes (40, 4), scores (40,))`` for exercise 4: clusters of jittered copies of a few boxes."""
    rng = np.random.default_rng(seed)
    base = np.array([[10, 10, 50, 50], [40, 30, 90, 70], [120, 20, 140, 44], [121, 60, 160, 100]], dtype=np.float32)
    boxes = np.repeat(base, 10, axis=0) + rng.normal(0, 4, size=(40, 4)).astype(np.float32)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    return boxes, rng.random(40).astype(np.float32)


def check_nms(fn: Any) -> CheckResult:
    """Exercise 4: ``fn(boxes (N, 4), scores (N,), iou_threshold) -> indices kept``, best first, compared with
    ``torchvision.ops.nms`` at IoU 0.3 and 0.6."""
    if not_attempted(fn):
        return pending("`nms`")
    if not callable(fn):
        return wrong("Pass the function itself, e.g. nms (without calling it).")
    boxes, scores = nms_toy()
    for threshold in (0.3, 0.6):
        want = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
        try:
            result = fn(boxes.copy(), scores.copy(), threshold)
            if returned_nothing(result):
                return pending("the body of `nms`")
            got = np.asarray(result).astype(int).reshape(-1)
        except Exception as err:
            return wrong(f"nms(boxes, scores, {threshold}) failed: {type(err).__name__}: {err}")
        if np.array_equal(got, want):
            continue
        if sorted(got.tolist()) == sorted(want.tolist()):
            return wrong(
                "You keep the right boxes; return them best first (in order of decreasing score), as torchvision does."
            )
        if len(got) < len(want):
            return wrong(
                f"At IoU {threshold} you keep {len(got)} boxes, torchvision {len(want)}. Suppress only by "
                "boxes you keep: a box already suppressed must not suppress others."
            )
        if len(got) > len(want):
            return wrong(
                f"At IoU {threshold} you keep {len(got)} boxes, torchvision {len(want)}. Walk the boxes "
                "from the highest score down; each kept box removes every remaining box whose IoU with it "
                "is above the threshold."
            )
        return wrong(f"At IoU {threshold}: expected indices {want.tolist()}, got {got.tolist()}.")
    return correct("Correct, the same boxes as torchvision.ops.nms, best first.")


EXPERIMENT_ANSWERS = ("recall", "precision", "both", "neither")
TALLY_KEYS = ("detections", "found", "annotated", "recall", "precision")


def _tally(value: Any) -> dict[str, float] | None:
    if not isinstance(value, Mapping) or any(as_number(value.get(k)) is None for k in TALLY_KEYS):
        return None
    return {k: float(value[k]) for k in TALLY_KEYS}


def check_nms_experiment(
    answer: Any, with_nms: Mapping, without_nms: Mapping, map50_with: float, map50_without: float
) -> CheckResult:
    """Exercise 5: which of recall and precision can NMS raise? ``"precision"``: NMS only removes boxes, and a cell
    found by a box NMS keeps is found without NMS too, so it never raises the recall.

    ``with_nms`` / ``without_nms``: :func:`~course_utils.lessons.lesson07.pipeline.tally_detections` of the same
    detector's detections with and without NMS (every detection counted); ``map50_*``: their COCO mAP@0.5. The
    answer is judged by the rule; the numbers of the run show it and say what NMS did here.
    """
    if not_attempted(answer):
        return pending("`nms_can_raise`")
    word = str(answer).strip().lower()
    if word not in EXPERIMENT_ANSWERS:
        return wrong(f"Answer with one of {', '.join(map(repr, EXPERIMENT_ANSWERS))}.")
    kept, every = _tally(with_nms), _tally(without_nms)
    map_with, map_without = as_number(map50_with), as_number(map50_without)
    if kept is None or every is None or map_with is None or map_without is None:
        return wrong(
            "Pass the two tallies (tally_detections(...) with and without NMS) and the two mAP@0.5 values: "
            "check_nms_experiment(answer, with_nms, without_nms, map50_with, map50_without)."
        )
    removed = int(every["detections"] - kept["detections"])
    lost = int(every["found"] - kept["found"])
    numbers = (
        f"This run, on the test images: with NMS {kept['detections']:.0f} detections found {kept['found']:.0f} of "
        f"the {kept['annotated']:.0f} annotated cells (recall {kept['recall']:.3f}, precision "
        f"{kept['precision']:.3f}); without NMS {every['detections']:.0f} detections found {every['found']:.0f} "
        f"(recall {every['recall']:.3f}, precision {every['precision']:.3f}). COCO's mAP@0.5, which weighs both "
        f"along the ranking: {map_with:.3f} with NMS, {map_without:.3f} without."
    )
    rule = (
        "NMS only removes boxes, and COCO's matching never loses a found cell when boxes are added: a cell that a "
        "box kept by NMS finds is still found without NMS (by that box, or by a better-scoring copy of it). So "
        "the recall without NMS is never lower than with it."
    )
    if kept["found"] > every["found"]:
        rule += " (This run breaks that rule: a bug in the NMS or in the matching; please report it.)"
    if removed <= 0:
        story = "Here NMS removed no box, so both stayed the same."
    elif kept["precision"] > every["precision"]:
        story = (
            f"Here NMS removed {removed} boxes, which made {removed - lost} fewer false positives (copies of a box "
            "that found the same cell, or boxes that found nothing)"
            + (
                f" and {lost} fewer cells found (cells whose only finding box was suppressed by a better-scoring box "
                "of the same class: a neighbouring cell's box, or a worse-placed box of the same cell)"
                if lost
                else " and not one cell fewer found"
            )
            + ": the precision rose."
        )
    else:
        story = (
            f"Here NMS removed {removed} boxes and the precision did not rise: the boxes it removed found cells at "
            "least as often as the ones it kept. On a well-trained detector the removed boxes are mostly copies of "
            "a box that found its cell, each a false positive."
        )
    if word == "precision":
        return correct(f"Yes: NMS can raise the precision, never the recall. {rule} {story} {numbers}")
    if word in ("recall", "both"):
        return wrong(f"NMS cannot raise the recall. {rule} {story} {numbers}")
    return wrong(
        "NMS can raise the precision: every copy of a box that already found its cell is a false positive, and "
        f"removing copies is what NMS is for. {story} {numbers}"
    )
