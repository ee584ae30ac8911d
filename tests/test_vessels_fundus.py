import numpy as np
import pytest

from course_utils.data.drive import FundusCase
from course_utils.data.fundus import (
    contrast_normalise,
    fov_diameter,
    green_channel,
    input_channels,
    preprocess_cases,
    preprocess_fundus,
)


def _disc(h=64, w=80):
    yy, xx = np.mgrid[:h, :w]
    return (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 2 - 2) ** 2


def test_green_channel_is_channel_one():
    rng = np.random.default_rng(0)
    image = rng.random((5, 6, 3)).astype(np.float32)
    g = green_channel(image)
    assert g.shape == (5, 6) and g.dtype == np.float32
    np.testing.assert_array_equal(g, image[..., 1])
    with pytest.raises(ValueError, match="RGB"):
        green_channel(image[..., :2])
    with pytest.raises(ValueError, match="255"):
        green_channel((image * 255).astype(np.uint8))


def test_contrast_normalise_range_fov_and_local_contrast():
    # Noisy background 0.5 with thin dark lines; the left half is lit 4x more dimly (vignetting).
    h, w = 64, 128
    rng = np.random.default_rng(0)
    base = 0.5 + 0.03 * rng.standard_normal((h, w))
    base[::8, :] -= 0.1  # "vessels": darker rows
    light = np.where(np.arange(w) < w // 2, 0.25, 1.0)[None, :]
    img = np.clip(base * light, 0, 1)
    fov = np.ones((h, w), bool)
    fov[:, :4] = False
    out = contrast_normalise(img, fov, gamma=1.0)
    assert out.shape == (h, w) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1 and (out[~fov] == 0).all()

    def line_contrast(a, cols):
        return a[4::8, cols].mean() - a[::8, cols].mean()  # background minus line

    dark, bright = slice(8, 56), slice(72, 120)
    assert line_contrast(out, dark) > 2 * line_contrast(img, dark), "dim vessels gain contrast"
    before = line_contrast(img, dark) / line_contrast(img, bright)
    after = line_contrast(out, dark) / line_contrast(out, bright)
    assert after > before + 0.05, "dim and bright regions become more alike"
    stronger = contrast_normalise(img, fov, gamma=1.0, clip_limit=0.05)
    assert line_contrast(stronger, dark) > line_contrast(out, dark), "a higher clip limit equalises more"
    # gamma > 1 darkens mid-tones
    assert contrast_normalise(img, fov, gamma=1.5)[fov].mean() < out[fov].mean()


def test_contrast_normalise_rejects_bad_input():
    with pytest.raises(ValueError, match="one channel"):
        contrast_normalise(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="gamma"):
        contrast_normalise(np.zeros((16, 16)), gamma=0)
    with pytest.raises(ValueError, match="same"):
        contrast_normalise(np.zeros((16, 16)), np.ones((8, 8), bool))


def test_preprocess_fundus_channels():
    rng = np.random.default_rng(1)
    image = rng.random((32, 40, 3)).astype(np.float32)
    fov = _disc(32, 40)
    assert preprocess_fundus(image, fov).shape == (32, 40, 1)
    assert preprocess_fundus(image, fov, channel="rgb").shape == (32, 40, 3)
    gray = preprocess_fundus(image, None, channel="gray", clahe=False)[..., 0]
    r, g, b = image[3, 5]
    assert gray[3, 5] == pytest.approx(0.299 * r + 0.587 * g + 0.114 * b, rel=1e-5)
    plain = preprocess_fundus(image, fov, clahe=False)[..., 0]
    np.testing.assert_array_equal(plain, np.where(fov, image[..., 1], 0))
    assert input_channels("green") == 1 and input_channels("rgb") == 3
    with pytest.raises(ValueError, match="channel"):
        preprocess_fundus(image, fov, channel="red")
    with pytest.raises(ValueError, match="channel"):
        input_channels("blue")


def test_preprocess_cases_keeps_labels():
    rng = np.random.default_rng(2)
    fov = _disc()
    case = FundusCase("x", rng.random((64, 80, 3)).astype(np.float32), rng.random((64, 80)) < 0.1, fov)
    (out,) = preprocess_cases([case])
    assert out.name == "x" and out.image.shape == (64, 80, 1)
    assert out.vessels is case.vessels and out.fov is case.fov
    assert case.image.shape == (64, 80, 3), "the original case is not modified"


def test_fov_diameter_is_the_equal_area_circle():
    yy, xx = np.mgrid[:401, :401]
    disc = (yy - 200) ** 2 + (xx - 200) ** 2 <= 150**2
    assert fov_diameter(disc) == pytest.approx(300.0, rel=1e-3)
    square = np.zeros((20, 20), bool)
    square[:10, :10] = True
    assert fov_diameter(square) == pytest.approx(2 * np.sqrt(100 / np.pi))
    with pytest.raises(ValueError, match="non-empty 2D"):
        fov_diameter(np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="non-empty 2D"):
        fov_diameter(np.ones((2, 8, 8), bool))
