"""Boxes: VOC files written in tmp_path (clean, clipped, dropped, broken), COCO conversion, one-box converters."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils.data.boxes import (
    AnnotatedImage,
    class_counts,
    coco_to_voc_box,
    from_coco,
    load_image,
    read_voc,
    to_coco,
    voc_to_coco_box,
)
from course_utils.errors import DataError, DataWarning

CLASSES = ("RBC", "WBC", "Platelets")


def _voc(path: Path, objects, size=("640", "480"), filename: str | None = "cell.jpg") -> Path:
    """A Pascal VOC file at ``path``; ``objects``: ``(name, xmin, ymin, xmax, ymax)`` as written in the file."""
    parts = ["<annotation>", "<folder>JPEGImages</folder>"]
    if filename is not None:
        parts.append(f"<filename>{filename}</filename>")
    if size is not None:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for name, *corners in objects:
        values = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), corners))
        parts.append(f"<object><name>{name}</name><difficult>0</difficult><bndbox>{values}</bndbox></object>")
    parts.append("</annotation>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


@pytest.fixture
def annotations(tmp_path) -> Path:
    return tmp_path / "VOC" / "Annotations"


# ----- reading VOC ----------------------------------------------------------------------------------
def test_clean_file_is_read_exactly_and_quietly(annotations):
    path = _voc(
        annotations / "a.xml", [("WBC", 11, 21, 110, 220), ("Platelets", 1, 1, 30, 40), ("RBC", 600, 400, 640, 480)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = read_voc(path, CLASSES)
    assert (image.width, image.height) == (640, 480)
    assert image.path == annotations.parent / "JPEGImages" / "cell.jpg"
    assert image.boxes.dtype == np.float32 and image.labels.dtype == np.int64
    # VOC counts pixels from 1 with inclusive corners: columns 11..110 are edges 10..110
    np.testing.assert_array_equal(image.boxes, [[10, 20, 110, 220], [0, 0, 30, 40], [599, 399, 640, 480]])
    np.testing.assert_array_equal(image.labels, [1, 2, 0])
    assert image.names == ("WBC", "Platelets", "RBC")
    assert image.classes == CLASSES
    assert image.counts() == {"RBC": 1, "WBC": 1, "Platelets": 1}


def test_pixel_edge_files_and_image_dir(annotations, tmp_path):
    path = _voc(annotations / "b.xml", [("RBC", 10, 20, 110, 220)], filename=None)
    image = read_voc(path, CLASSES, one_based=False, image_dir=tmp_path / "pictures")
    np.testing.assert_array_equal(image.boxes, [[10, 20, 110, 220]])
    assert image.path == tmp_path / "pictures" / "b.jpg"  # no <filename>: named after the annotation


def test_file_without_objects_gives_empty_arrays(annotations):
    image = read_voc(_voc(annotations / "empty.xml", []), CLASSES)
    assert image.boxes.shape == (0, 4) and image.labels.shape == (0,)
    assert image.counts() == {"RBC": 0, "WBC": 0, "Platelets": 0}


def test_box_outside_the_image_is_clipped_with_a_warning_naming_file_object_and_class(annotations):
    path = _voc(annotations / "out.xml", [("RBC", 11, 21, 110, 220), ("WBC", 500, 400, 700, 481)])
    with pytest.warns(DataWarning) as caught:
        image = read_voc(path, CLASSES)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(path) in message and "object 1" in message and "WBC" in message
    assert "xmax=700" in message and "clipped" in message
    np.testing.assert_array_equal(image.boxes, [[10, 20, 110, 220], [499, 399, 640, 480]])
    np.testing.assert_array_equal(image.labels, [0, 1])


@pytest.mark.parametrize(
    "corners, reason",
    [
        ((504, 337, 504, 337), "under min_size"),  # a one-pixel box, as in BCCD's BloodImage_00338.xml
        ((50, 60, 40, 90), "zero or negative area"),  # corners swapped
        ((700, 10, 720, 40), "zero or negative area"),  # wholly right of the image: nothing left after clipping
    ],
)
def test_degenerate_box_is_dropped_with_a_warning(annotations, corners, reason):
    path = _voc(annotations / "slip.xml", [("WBC", 11, 21, 110, 220), ("RBC", *corners)])
    with pytest.warns(DataWarning) as caught:
        image = read_voc(path, CLASSES)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(path) in message and "object 1 (RBC)" in message and "dropped" in message and reason in message
    assert f"xmin={corners[0]}" in message
    np.testing.assert_array_equal(image.boxes, [[10, 20, 110, 220]])
    np.testing.assert_array_equal(image.labels, [1])


def test_min_size_decides_what_is_too_small(annotations):
    path = _voc(annotations / "small.xml", [("Platelets", 11, 21, 13, 40)])  # 3 pixels wide
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_voc(path, CLASSES).boxes) == 1
    with pytest.warns(DataWarning, match="under min_size=4"):
        assert len(read_voc(path, CLASSES, min_size=4).boxes) == 0


@pytest.mark.parametrize(
    "objects, size, match",
    [
        ([("Neutrophil", 1, 1, 20, 20)], ("640", "480"), r"object 0 has class 'Neutrophil'"),
        ([("RBC", 1, "12a", 20, 20)], ("640", "480"), r"object 0 \(RBC\) has <bndbox><ymin> '12a'"),
        ([("RBC", 1, "nan", 20, 20)], ("640", "480"), r"<ymin> 'nan', not a number"),
        ([("RBC", 1, 1, 20, 20)], None, r"has no <size><width>"),
        ([("RBC", 1, 1, 20, 20)], ("0", "480"), r"<size><width> is '0'"),
        ([("RBC", 1, 1, 20, 20)], ("640", "480.5"), r"<size><height> is '480.5'"),
    ],
)
def test_broken_file_raises_data_error_naming_it(annotations, objects, size, match):
    path = _voc(annotations / "broken.xml", objects, size=size)
    with pytest.raises(DataError, match=match) as err:
        read_voc(path, CLASSES)
    assert str(path) in str(err.value)


def test_missing_coordinate_and_unreadable_files(annotations):
    path = annotations / "nobox.xml"
    _voc(path, [("RBC", 1, 1, 20, 20)])
    path.write_text(path.read_text().replace("<xmax>20</xmax>", ""))
    with pytest.raises(DataError, match=r"nobox\.xml: object 0 \(RBC\) has <bndbox><xmax> missing"):
        read_voc(path, CLASSES)
    garbage = annotations / "garbage.xml"
    garbage.write_bytes(b"\xff\xd8 this is a JPEG, not XML")
    with pytest.raises(DataError, match=r"Cannot read annotation .*garbage\.xml"):
        read_voc(garbage, CLASSES)
    with pytest.raises(DataError, match=r"absent\.xml does not exist"):
        read_voc(annotations / "absent.xml", CLASSES)


# ----- the annotated image --------------------------------------------------------------------------
def test_annotated_image_refuses_boxes_it_cannot_hold():
    ok = dict(path="x.jpg", width=10, height=8, boxes=[[0, 0, 10, 8]], labels=[0], classes=CLASSES)
    assert AnnotatedImage(**ok).boxes.shape == (1, 4)
    with pytest.raises(ValueError, match="inside the 10x8 image"):
        AnnotatedImage(**{**ok, "boxes": [[0, 0, 11, 8]]})
    with pytest.raises(ValueError, match="x_min <= x_max"):
        AnnotatedImage(**{**ok, "boxes": [[5, 0, 4, 8]]})
    with pytest.raises(ValueError, match="NaN"):
        AnnotatedImage(**{**ok, "boxes": [[0, 0, np.nan, 8]]})
    with pytest.raises(ValueError, match="one label per box"):
        AnnotatedImage(**{**ok, "labels": [0, 1]})
    with pytest.raises(ValueError, match="indices into classes"):
        AnnotatedImage(**{**ok, "labels": [3]})


def test_class_counts_per_image():
    a = AnnotatedImage("a.jpg", 10, 10, [[0, 0, 2, 2], [1, 1, 5, 5], [2, 2, 4, 4]], [0, 0, 2], CLASSES)
    b = AnnotatedImage("b.jpg", 10, 10, np.zeros((0, 4)), [], CLASSES)
    counts = class_counts([a, b])
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, [[2, 0, 1], [0, 0, 0]])
    with pytest.raises(ValueError, match="classes"):
        class_counts([a, AnnotatedImage("c.jpg", 10, 10, [[0, 0, 2, 2]], [0], ("cell",))])


def test_load_image_checks_the_annotated_size(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(6, 9, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    annotated = AnnotatedImage(tmp_path / "x.png", 9, 6, np.zeros((0, 4)), [], CLASSES)
    pixels = load_image(annotated)
    assert pixels.dtype == np.uint8 and pixels.shape == (6, 9, 3)
    np.testing.assert_array_equal(pixels, rgb)
    wrong = AnnotatedImage(tmp_path / "x.png", 640, 480, np.zeros((0, 4)), [], CLASSES)
    with pytest.raises(DataError, match=r"x\.png is 9x6 pixels but its annotation says 640x480"):
        load_image(wrong)
    with pytest.raises(DataError, match=r"gone\.jpg does not exist"):
        load_image(tmp_path / "gone.jpg")


# ----- one box --------------------------------------------------------------------------------------
def test_single_box_converters():
    assert voc_to_coco_box((10, 20, 30, 60)) == (10.0, 20.0, 20.0, 40.0)
    assert coco_to_voc_box((10, 20, 20, 40)) == (10.0, 20.0, 30.0, 60.0)
    # as written in a VOC file: pixels 1..10 are 10 pixels wide, starting at edge 0
    assert voc_to_coco_box((1, 1, 10, 20), one_based=True) == (0.0, 0.0, 10.0, 20.0)
    assert coco_to_voc_box((0, 0, 10, 20), one_based=True) == (1.0, 1.0, 10.0, 20.0)
    box = (12.5, 3.25, 40.0, 17.75)
    assert coco_to_voc_box(voc_to_coco_box(box)) == box
    assert voc_to_coco_box(np.array(box, dtype=np.float32)) == (12.5, 3.25, 27.5, 14.5)
    with pytest.raises(ValueError, match="4 finite numbers"):
        voc_to_coco_box((1, 2, 3))
    with pytest.raises(ValueError, match="4 finite numbers"):
        coco_to_voc_box((1, 2, np.inf, 4))


# ----- COCO -----------------------------------------------------------------------------------------
def _two_images(folder: Path) -> list[AnnotatedImage]:
    first = AnnotatedImage(
        folder / "a.jpg",
        640,
        480,
        [[10, 20, 110, 220], [0.5, 1.25, 30, 40.75], [599, 399, 640, 480]],
        [1, 2, 0],
        CLASSES,
    )
    second = AnnotatedImage(folder / "sub" / "b.jpg", 320, 240, np.zeros((0, 4)), [], CLASSES)
    return [first, second]


def test_to_coco_follows_the_coco_detection_format(tmp_path):
    expected = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
            {"id": 2, "file_name": "sub/b.jpg", "width": 320, "height": 240},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 2,
                "bbox": [10.0, 20.0, 100.0, 200.0],
                "area": 20000.0,
                "iscrowd": 0,
            },
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0.5, 1.25, 29.5, 39.5], "area": 1165.25, "iscrowd": 0},
            {
                "id": 3,
                "image_id": 1,
                "category_id": 1,
                "bbox": [599.0, 399.0, 41.0, 81.0],
                "area": 3321.0,
                "iscrowd": 0,
            },
        ],
        "categories": [{"id": 1, "name": "RBC"}, {"id": 2, "name": "WBC"}, {"id": 3, "name": "Platelets"}],
    }
    coco = to_coco(_two_images(tmp_path), CLASSES, image_dir=tmp_path)
    assert coco == expected
    assert json.loads(json.dumps(coco)) == expected  # plain Python numbers, ready for json.dump


def test_to_coco_without_image_dir_refuses_clashing_names(tmp_path):
    images = _two_images(tmp_path)
    assert [im["file_name"] for im in to_coco(images, CLASSES)["images"]] == ["a.jpg", "b.jpg"]
    twin = AnnotatedImage(tmp_path / "other" / "a.jpg", 10, 10, np.zeros((0, 4)), [], CLASSES)
    with pytest.raises(ValueError, match="pass image_dir"):
        to_coco([images[0], twin], CLASSES)
    with pytest.raises(ValueError, match="not one of"):
        to_coco(images, ("RBC", "WBC"))


def test_coco_round_trip_gives_the_same_images(tmp_path):
    images = _two_images(tmp_path)
    coco = json.loads(json.dumps(to_coco(images, CLASSES, image_dir=tmp_path)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = from_coco(coco, image_dir=tmp_path)
    assert len(back) == len(images)
    for original, again in zip(images, back):
        assert again.path == original.path and again.classes == original.classes
        assert (again.width, again.height) == (original.width, original.height)
        assert again.boxes.dtype == np.float32
        np.testing.assert_array_equal(again.boxes, original.boxes)
        np.testing.assert_array_equal(again.labels, original.labels)


def test_from_coco_sorts_categories_by_id_and_checks_what_it_reads():
    coco = {
        "images": [{"id": 7, "file_name": "x.jpg", "width": 100, "height": 50}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 5, "bbox": [10, 10, 20, 20], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 2, "bbox": [90, 40, 30, 30], "iscrowd": 0},
            {"id": 3, "image_id": 7, "category_id": 2, "bbox": [0, 0, 100, 50], "iscrowd": 1},
        ],
        "categories": [{"id": 5, "name": "WBC"}, {"id": 2, "name": "RBC"}],
    }
    with pytest.warns(DataWarning) as caught:
        (image,) = from_coco(coco, source="cells.json")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert any("cells.json" in m and "iscrowd=1" in m for m in messages)
    assert any("cells.json image x.jpg" in m and "annotation id 2" in m and "clipped" in m for m in messages)
    assert image.classes == ("RBC", "WBC")
    np.testing.assert_array_equal(image.labels, [1, 0])
    np.testing.assert_array_equal(image.boxes, [[10, 10, 30, 30], [90, 40, 100, 50]])
    with pytest.raises(DataError, match="category_id 9"):
        from_coco({**coco, "annotations": [{"id": 1, "image_id": 7, "category_id": 9, "bbox": [0, 0, 1, 1]}]})
    with pytest.raises(DataError, match="image_id 8"):
        from_coco({**coco, "annotations": [{"id": 1, "image_id": 8, "category_id": 2, "bbox": [0, 0, 1, 1]}]})
    with pytest.raises(DataError, match=r"bbox \[0, 0, 1\]"):
        from_coco({**coco, "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [0, 0, 1]}]})
    with pytest.raises(DataError, match="no 'categories'"):
        from_coco({"images": [], "annotations": []})


def test_pycocotools_reads_the_dict_and_scores_perfect_detections_one(tmp_path):
    import contextlib
    import io

    from pycocotools import coco as coco_api
    from pycocotools.cocoeval import COCOeval

    coco = to_coco(_two_images(tmp_path), CLASSES, image_dir=tmp_path)
    api = coco_api.COCO()
    api.dataset = coco
    api.createIndex()
    assert sorted(api.getImgIds()) == [1, 2]
    anns = api.loadAnns(api.getAnnIds(imgIds=[1]))
    assert [a["bbox"] for a in anns] == [
        [10.0, 20.0, 100.0, 200.0],
        [0.5, 1.25, 29.5, 39.5],
        [599.0, 399.0, 41.0, 81.0],
    ]
    assert [c["name"] for c in api.loadCats(api.getCatIds())] == list(CLASSES)
    detections = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in coco["annotations"]
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(api, api.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0) and evaluation.stats[1] == pytest.approx(1.0), "AP, AP@0.5"
