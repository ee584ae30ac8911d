"""The one photograph reader (course_utils.data.images) and the three readers built on it."""

import numpy as np
import pytest
from PIL import Image

from course_utils.data.boxes import load_image
from course_utils.data.images import read_rgb_uint8
from course_utils.errors import DataError
from course_utils.predict import read_rgb


def test_grey_palette_and_alpha_images_become_rgb(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    rgba = rng.integers(0, 256, size=(5, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgba[..., :3]).convert("P").save(tmp_path / "palette.gif")

    out = read_rgb_uint8(tmp_path / "grey.png", advice="x")
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))
    np.testing.assert_array_equal(read_rgb_uint8(tmp_path / "rgba.png", advice="x"), rgba[..., :3])
    palette = read_rgb_uint8(tmp_path / "palette.gif", advice="x")
    with Image.open(tmp_path / "palette.gif") as img:
        expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(palette, expected)


def test_errors_name_the_file_and_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"gone\.png does not exist; restore it"):
        read_rgb_uint8(tmp_path / "gone.png", advice="download it again.", missing_advice="restore it")
    with pytest.raises(DataError, match=r"gone\.png does not exist; download it again"):
        read_rgb_uint8(tmp_path / "gone.png", advice="download it again.")
    (tmp_path / "text.jpg").write_text("not a picture")
    with pytest.raises(DataError, match=r"text\.jpg: cannot read it as an image \(UnidentifiedImageError.*download"):
        read_rgb_uint8(tmp_path / "text.jpg", advice="download it again.")
    good = np.full((40, 40, 3), 128, np.uint8)
    Image.fromarray(good).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.png: cannot read it as an image"):
        read_rgb_uint8(tmp_path / "cut.png", advice="x")


def test_the_readers_agree_on_the_pixels(tmp_path):
    rgb = np.random.default_rng(1).integers(1, 256, size=(20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    np.testing.assert_array_equal(load_image(tmp_path / "photo.png"), rgb)
    np.testing.assert_allclose(read_rgb(tmp_path / "photo.png"), rgb.astype(np.float32) / 255.0)
    with pytest.raises(DataError, match=r"gone\.jpg does not exist; its annotation names it"):
        load_image(tmp_path / "gone.jpg")
