"""BCCD: a fake VOC tree in tmp_path for every error, the real data set when the data root holds BCCD/."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import real_data_root
from PIL import Image

from course_utils.data.bccd import BCCD_CLASSES, BCCD_SPLITS, bccd_dir, bccd_split, blood_counts, load_bccd
from course_utils.data.boxes import load_image
from course_utils.errors import ConfigError, DataError, DataWarning

H, W = 48, 64  # the fake images are small; the real ones are 480x640
FAKE = {  # image id -> objects (class, xmin, ymin, xmax, ymax as written in the file)
    "BloodImage_00001": [("RBC", 1, 1, 20, 20), ("RBC", 30, 10, 50, 30), ("WBC", 10, 20, 40, 48)],
    "BloodImage_00002": [("Platelets", 5, 5, 10, 10), ("RBC", 33, 33, 33, 33)],  # the second: a one-pixel slip
    "BloodImage_00003": [("RBC", 40, 1, 64, 30)],
}
FAKE_SPLITS = {
    "train": ["BloodImage_00001", "BloodImage_00002"],
    "val": ["BloodImage_00003"],
    "trainval": ["BloodImage_00001", "BloodImage_00002", "BloodImage_00003"],
    "test": ["BloodImage_00003"],
}


def _write_voc(path: Path, filename: str, objects) -> None:
    body = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox>"
        "</object>"
        for n, a, b, c, d in objects
    )
    path.write_text(
        f"<annotation><filename>{filename}</filename><size><width>{W}</width><height>{H}</height><depth>3</depth>"
        f"</size>{body}</annotation>",
        encoding="utf-8",
    )


@pytest.fixture
def fake_root(tmp_path) -> Path:
    """A data root holding a complete, tiny BCCD/ tree (3 images)."""
    bccd = tmp_path / "BCCD"
    for part in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (bccd / part).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for image_id, objects in FAKE.items():
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(bccd / "JPEGImages" / f"{image_id}.jpg")
        _write_voc(bccd / "Annotations" / f"{image_id}.xml", f"{image_id}.jpg", objects)
    for name, ids in FAKE_SPLITS.items():
        (bccd / "ImageSets" / "Main" / f"{name}.txt").write_text("\n".join(ids) + "\n")
    return tmp_path


def test_bccd_dir_finds_the_folder(fake_root, monkeypatch):
    assert bccd_dir(fake_root) == fake_root / "BCCD"
    assert bccd_dir(fake_root / "BCCD") == fake_root / "BCCD"  # the BCCD folder itself
    monkeypatch.setenv("COURSE_DATA_DIR", str(fake_root))
    assert bccd_dir() == fake_root / "BCCD"


def test_empty_data_root_has_no_bccd(empty_data_root):
    assert bccd_dir() is None
    with pytest.raises(DataError, match="https://github.com/Shenggan/BCCD_Dataset") as err:
        bccd_split("train")
    assert str(empty_data_root) in str(err.value) and "COURSE_DATA_DIR" in str(err.value)


@pytest.mark.parametrize(
    "remove, named",
    [
        ("Annotations", "BCCD/Annotations/ (folder missing)"),
        ("JPEGImages/*", "BCCD/JPEGImages/ (holds no *.jpg file)"),
        ("ImageSets", "BCCD/ImageSets/Main/train.txt"),
        ("ImageSets/Main/test.txt", "BCCD/ImageSets/Main/test.txt"),
    ],
)
def test_incomplete_folder_names_the_missing_part(fake_root, remove, named):
    bccd = fake_root / "BCCD"
    for path in bccd.glob(remove):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    with pytest.raises(DataError, match="incomplete") as err:
        bccd_dir(fake_root)
    message = str(err.value)
    assert named in message and "https://github.com/Shenggan/BCCD_Dataset" in message
    if remove != "ImageSets":
        assert "ImageSets/Main/train.txt" not in message  # only what is really missing


def test_splits_of_the_fake_tree(fake_root):
    for name in BCCD_SPLITS:
        assert bccd_split(name, fake_root) == FAKE_SPLITS[name]
    with pytest.raises(ConfigError, match="'val'"):
        bccd_split("validation", fake_root)


def test_listed_image_without_files_is_reported(fake_root):
    bccd = fake_root / "BCCD"
    (bccd / "JPEGImages" / "BloodImage_00002.jpg").unlink()
    with (bccd / "ImageSets" / "Main" / "train.txt").open("a") as f:
        f.write("BloodImage_00009\n")
    with pytest.raises(DataError, match="lists 2 of its 3 images without their files") as err:
        bccd_split("train", fake_root)
    message = str(err.value)
    assert str(bccd / "JPEGImages" / "BloodImage_00002.jpg") in message
    assert str(bccd / "Annotations" / "BloodImage_00009.xml") in message
    assert str(bccd / "Annotations" / "BloodImage_00002.xml") not in message  # that file is there
    with pytest.warns(DataWarning, match="left out of split 'train'"):
        assert bccd_split("train", fake_root, on_missing="warn") == ["BloodImage_00001"]


def test_repeated_id_is_used_once_with_a_warning(fake_root):
    (fake_root / "BCCD" / "ImageSets" / "Main" / "val.txt").write_text("BloodImage_00003\n\nBloodImage_00003\n")
    with pytest.warns(DataWarning, match="more than once"):
        assert bccd_split("val", fake_root) == ["BloodImage_00003"]


def test_load_bccd_reads_boxes_drops_the_slip_and_counts(fake_root):
    with pytest.warns(DataWarning) as caught:
        images = load_bccd("train", fake_root)
    assert len(caught) == 1 and "BloodImage_00002.xml: object 1 (RBC)" in str(caught[0].message)
    assert [im.path for im in images] == [fake_root / "BCCD" / "JPEGImages" / f"BloodImage_0000{i}.jpg" for i in (1, 2)]
    np.testing.assert_array_equal(images[0].boxes, [[0, 0, 20, 20], [29, 9, 50, 30], [9, 19, 40, 48]])
    np.testing.assert_array_equal(images[1].boxes, [[4, 4, 10, 10]])
    counts = blood_counts(images)
    assert list(counts) == list(BCCD_CLASSES)
    np.testing.assert_array_equal(counts["RBC"], [2, 0])
    np.testing.assert_array_equal(counts["WBC"], [1, 0])
    np.testing.assert_array_equal(counts["Platelets"], [0, 1])
    pixels = load_image(images[0])
    assert pixels.dtype == np.uint8 and pixels.shape == (H, W, 3)


def test_annotation_naming_another_image_is_paired_by_id_with_a_warning(fake_root):
    bccd = fake_root / "BCCD"
    _write_voc(bccd / "Annotations" / "BloodImage_00003.xml", "BloodImage_00001.jpg", FAKE["BloodImage_00003"])
    with pytest.warns(DataWarning, match="names image BloodImage_00001.jpg but the split lists BloodImage_00003"):
        (image,) = load_bccd("val", fake_root)
    assert image.path == bccd / "JPEGImages" / "BloodImage_00003.jpg"


# ----- the real data set ----------------------------------------------------------------------------
def _real_bccd() -> Path | None:
    """The real BCCD folder (an incomplete one fails the tests below, loudly, through bccd_dir)."""
    root = real_data_root()
    return root / "BCCD" if root is not None and (root / "BCCD").is_dir() else None


real = pytest.mark.skipif(_real_bccd() is None, reason="COURSE_DATA_DIR holds no BCCD/ folder")


@real
def test_real_splits_add_up():
    folder = bccd_dir(_real_bccd())
    listed = {
        name: [line for line in (folder / "ImageSets" / "Main" / f"{name}.txt").read_text().split() if line]
        for name in BCCD_SPLITS
    }
    splits = {name: bccd_split(name, folder) for name in BCCD_SPLITS}
    for name in BCCD_SPLITS:
        assert splits[name] == listed[name]
    train, val, trainval, test = (set(splits[n]) for n in ("train", "val", "trainval", "test"))
    assert not train & val and train | val == trainval
    assert not trainval & test
    assert trainval | test == {p.stem for p in (folder / "JPEGImages").glob("*.jpg")}
    assert (len(train), len(val), len(test)) == (205, 87, 72)  # the data set's own lists, 364 images in all


@real
def test_real_boxes_are_checked_and_the_two_slips_dropped():
    folder = bccd_dir(_real_bccd())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = load_bccd("trainval", folder) + load_bccd("test", folder)
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, DataWarning))
    assert len(messages) == 2, messages
    assert "BloodImage_00338.xml: object 12 (RBC)" in messages[0] and "dropped" in messages[0]
    assert "BloodImage_00343.xml: object 3 (RBC)" in messages[1] and "dropped" in messages[1]
    by_name = {im.path.stem: im for im in images}
    assert len(by_name) == 364
    for name in ("BloodImage_00338", "BloodImage_00343"):
        n_objects = (folder / "Annotations" / f"{name}.xml").read_text().count("<object>")
        assert len(by_name[name].boxes) == len(by_name[name].labels) == n_objects - 1
    for im in images:
        assert (im.width, im.height) == (640, 480)
        x0, y0, x1, y1 = im.boxes.T
        assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 640).all() and (y1 <= 480).all()
        assert (x1 - x0 >= 2).all() and (y1 - y0 >= 2).all()
    totals = {name: int(n.sum()) for name, n in blood_counts(images).items()}
    assert set(totals) == set(BCCD_CLASSES) and all(totals[c] > 0 for c in BCCD_CLASSES)
    assert totals == {"RBC": 4153, "WBC": 372, "Platelets": 361}  # 4155 red-cell boxes in the files, 2 dropped
    pixels = load_image(by_name["BloodImage_00338"])
    assert pixels.dtype == np.uint8 and pixels.shape == (480, 640, 3)
