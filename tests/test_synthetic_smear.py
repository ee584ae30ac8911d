"""Synthetic smears: deterministic, boxes that fit the instance mask, three distinct cell kinds, touching cells."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.data.bccd import BCCD_CLASSES
from course_utils.data.boxes import from_coco, to_coco
from course_utils.data.synthetic_smear import MIN_VISIBLE, synthetic_smear
from course_utils.errors import ConfigError, DataWarning

RBC, WBC, PLATELETS = range(3)


@pytest.fixture(scope="module")
def smears():
    return [synthetic_smear(seed) for seed in range(3)]


def test_same_seed_same_smear_other_seed_other_smear():
    image, annotated, instances = synthetic_smear(5, (240, 320))
    again = synthetic_smear(5, (240, 320))
    np.testing.assert_array_equal(image, again[0])
    np.testing.assert_array_equal(annotated.boxes, again[1].boxes)
    np.testing.assert_array_equal(annotated.labels, again[1].labels)
    np.testing.assert_array_equal(instances, again[2])
    other = synthetic_smear(6, (240, 320))
    assert not np.array_equal(image, other[0])
    assert not np.array_equal(annotated.boxes, other[1].boxes)


def test_types_shapes_and_classes(smears):
    for image, annotated, instances in smears:
        assert image.dtype == np.uint8 and image.shape == (480, 640, 3)
        assert instances.dtype == np.int32 and instances.shape == (480, 640)
        assert (annotated.width, annotated.height) == (640, 480)
        assert annotated.classes == BCCD_CLASSES
        assert annotated.boxes.dtype == np.float32 and annotated.labels.dtype == np.int64
        assert annotated.counts() == {"RBC": 24, "WBC": 2, "Platelets": 5}  # the defaults, all placed


def test_boxes_match_the_instance_mask(smears):
    for _, annotated, instances in smears:
        n = len(annotated.boxes)
        assert set(np.unique(instances).tolist()) == set(range(n + 1))  # background and every cell, visible
        exact = 0
        for k in range(1, n + 1):
            rows, cols = np.nonzero(instances == k)
            x0, y0, x1, y1 = annotated.boxes[k - 1]
            visible_box = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            # the visible pixels lie in the cell's box; the box is tight around the whole cell
            assert x0 <= visible_box[0] and y0 <= visible_box[1] and visible_box[2] <= x1 and visible_box[3] <= y1
            assert len(rows) >= MIN_VISIBLE * 0.7 * (x1 - x0) * (y1 - y0)  # an ellipse fills ~79 % of its box
            exact += visible_box == (x0, y0, x1, y1)
        assert exact >= n // 2  # cells hidden by no later cell: the mask's box is the annotated box


def test_cells_at_the_border_are_clipped(smears):
    at_border = 0
    for _, annotated, _ in smears:
        x0, y0, x1, y1 = annotated.boxes.T
        assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 640).all() and (y1 <= 480).all()
        at_border += int(((x0 == 0) | (y0 == 0) | (x1 == 640) | (y1 == 480)).sum())
    assert at_border > 0


def test_cells_touch_and_overlap(smears):
    for _, annotated, instances in smears:
        left, right = instances[:, :-1], instances[:, 1:]
        assert ((left != right) & (left > 0) & (right > 0)).any()  # two cells side by side, no gap
        boxes = annotated.boxes
        ix = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], boxes[None, :, 0])
        iy = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], boxes[None, :, 1])
        overlapping = (ix > 0) & (iy > 0) & ~np.eye(len(boxes), dtype=bool)
        assert overlapping.sum() // 2 >= 3
        hidden = [k for k in range(1, len(boxes) + 1) if (instances == k).sum() < 0.75 * _box_area(boxes[k - 1])]
        assert hidden  # some cells are partly covered by others


def _box_area(box) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def test_three_sizes_colours_and_textures(smears):
    widths = {c: [] for c in range(3)}  # of cells away from the border (the border clips boxes)
    for _, annotated, _ in smears:
        x0, y0, x1, y1 = annotated.boxes.T
        inside = (x0 > 0) & (y0 > 0) & (x1 < 640) & (y1 < 480)
        for c in range(3):
            widths[c] += (x1 - x0)[inside & (annotated.labels == c)].tolist()
    med = {c: np.median(widths[c]) for c in range(3)}
    assert med[PLATELETS] < 0.4 * med[RBC] and med[RBC] < 0.8 * med[WBC]  # platelets << red cells < white cells
    for image, annotated, instances in smears:
        pixels = {
            c: image[np.isin(instances, np.flatnonzero(annotated.labels == c) + 1)].astype(float) for c in range(3)
        }
        background = image[instances == 0].astype(float)
        red, blue = 0, 2
        assert pixels[RBC][:, red].mean() > pixels[RBC][:, blue].mean() + 10  # pinkish red cells
        for c in (WBC, PLATELETS):
            assert pixels[c][:, blue].mean() > pixels[c][:, red].mean() + 10  # purple stain
        assert background.sum(axis=1).mean() > pixels[RBC].sum(axis=1).mean() + 30  # pale background
        # the grainy nucleus in pale cytoplasm varies far more than a red cell's smooth pallor
        assert pixels[WBC].mean(axis=1).std() > 2 * pixels[RBC].mean(axis=1).std()


def test_sizes_scale_with_the_image():
    _, small, instances = synthetic_smear(0, (120, 160))
    assert instances.shape == (120, 160) and small.counts() == {"RBC": 24, "WBC": 2, "Platelets": 5}
    widths = small.boxes[:, 2] - small.boxes[:, 0]
    assert 15 <= np.median(widths[small.labels == RBC]) <= 28  # about a quarter of the ~95 px at 480x640


def test_annotation_survives_coco_round_trip(smears):
    annotated = smears[0][1]
    (back,) = from_coco(to_coco([annotated], BCCD_CLASSES))
    np.testing.assert_array_equal(back.boxes, annotated.boxes)
    np.testing.assert_array_equal(back.labels, annotated.labels)


def test_bad_arguments_and_overcrowding():
    with pytest.raises(ValueError, match="at least 64"):
        synthetic_smear(0, (32, 640))
    with pytest.raises(ConfigError, match="n_rbc"):
        synthetic_smear(0, n_rbc=-1)
    with pytest.raises(ConfigError, match="seed"):
        synthetic_smear(-3)
    with pytest.warns(DataWarning, match=r"room for only \d+ of 60 WBC"):
        _, crowded, _ = synthetic_smear(0, (96, 128), n_rbc=0, n_wbc=60, n_platelets=0)
    assert 0 < len(crowded.boxes) < 60
