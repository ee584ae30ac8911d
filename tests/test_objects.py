"""From a foreground map to objects: watershed split, boxes, features, the feature classifier."""

import numpy as np
import pytest

from course_utils.objects import (
    OBJECT_FEATURES,
    feature_classifier,
    object_boxes,
    object_features,
    relabel,
    split_touching,
)


def disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_two_touching_discs_are_split_and_one_disc_stays_whole():
    shape = (80, 120)
    pair = disc(shape, (40, 40), 18) | disc(shape, (40, 72), 18)  # overlapping by 4 pixels: one component
    from scipy import ndimage

    assert ndimage.label(pair)[1] == 1
    labels, n = split_touching(pair, min_distance=8)
    assert n == 2 and labels.dtype == np.int32
    assert labels[40, 40] != labels[40, 72] and labels[40, 40] > 0 and labels[40, 72] > 0
    assert ((labels > 0) == pair).all()  # the split keeps every foreground pixel
    one, n1 = split_touching(disc(shape, (40, 60), 20), min_distance=8)
    assert n1 == 1
    empty, n0 = split_touching(np.zeros(shape, bool), min_distance=8)
    assert n0 == 0 and not empty.any()


def test_small_objects_are_dropped_and_labels_renumbered():
    mask = disc((60, 60), (20, 20), 10) | disc((60, 60), (50, 50), 1)
    labels, n = split_touching(mask, min_distance=5, min_area=20)
    assert n == 1 and set(np.unique(labels)) == {0, 1} and labels[50, 50] == 0
    renumbered, m = relabel(np.array([[0, 7, 7], [3, 0, 9]]))
    assert m == 3 and renumbered.tolist() == [[0, 2, 2], [1, 0, 3]]
    with pytest.raises(ValueError, match="min_distance"):
        split_touching(mask, min_distance=0)
    with pytest.raises(ValueError, match="2-D"):
        split_touching(mask[None], min_distance=3)


def test_boxes_sit_on_pixel_edges_around_each_object():
    labels = np.zeros((10, 12), np.int32)
    labels[2:5, 3:9] = 1
    labels[7, 10] = 2
    np.testing.assert_array_equal(object_boxes(labels, 2), [[3, 2, 9, 5], [10, 7, 11, 8]])


def test_features_tell_a_large_pink_disc_from_a_small_purple_ellipse():
    shape = (100, 100)
    image = np.full((*shape, 3), 220, np.uint8)
    red = disc(shape, (30, 30), 15)
    yy, xx = np.mgrid[:100, :100]
    purple = ((yy - 75) / 4.0) ** 2 + ((xx - 70) / 9.0) ** 2 <= 1
    image[red] = (200, 140, 160)
    image[purple] = (110, 60, 180)
    labels = red.astype(np.int32) + 2 * purple
    prob = np.where(labels > 0, 0.9, 0.1)
    f = object_features(labels, 2, image, prob)
    assert f.shape == (2, len(OBJECT_FEATURES))
    col = {name: i for i, name in enumerate(OBJECT_FEATURES)}
    assert f[0, col["log_area_px"]] == pytest.approx(np.log(red.sum()))
    assert f[0, col["eccentricity"]] < 0.2 < 0.8 < f[1, col["eccentricity"]]
    np.testing.assert_allclose(
        f[:, [col["mean_red"], col["mean_green"], col["mean_blue"]]] * 255, [[200, 140, 160], [110, 60, 180]], atol=1e-6
    )
    assert f[1, col["green_p10"]] == pytest.approx(60 / 255) and f[0, col["mean_prob"]] == pytest.approx(0.9)
    assert object_features(np.zeros(shape, np.int32), 0, image).shape == (0, len(OBJECT_FEATURES))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        object_features(labels, 2, image[..., 0])


def test_the_feature_classifier_separates_three_kinds():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.3, size=(n, 2)) for c, n in ((0, 100), (3, 10), (6, 20))])
    y = np.repeat([0, 1, 2], [100, 10, 20])
    model = feature_classifier().fit(x, y)
    assert (model.predict(x) == y).mean() > 0.97 and model.predict([[3.0, 3.0]])[0] == 1
