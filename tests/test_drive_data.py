"""DRIVE loading: fake DRIVE trees in tmp_path for every error, the real data when COURSE_DATA_DIR has it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils.data.drive import FundusCase, find_drive_root, load_drive, split_train_val
from course_utils.errors import DataError

H, W = 12, 10


def _write_case(
    split_dir: Path,
    number: str,
    split: str,
    rng,
    *,
    label_values=(0, 255),
    fov_values=(0, 255),
    second: bool = False,
    label_size=(W, H),
) -> dict:
    """Write one fake DRIVE case; returns the arrays written."""
    for sub in ("images", "1st_manual", "mask", "2nd_manual"):
        (split_dir / sub).mkdir(parents=True, exist_ok=True)
    rgb = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    vessels = rng.random((label_size[1], label_size[0])) < 0.3
    fov = np.zeros((H, W), dtype=bool)
    fov[1:-1, 1:-1] = True  # 67 % of the image, like a real DRIVE field of view
    Image.fromarray(rgb).save(split_dir / "images" / f"{number}_{split}.tif")
    lo, hi = label_values
    Image.fromarray(np.where(vessels, hi, lo).astype(np.uint8), mode="L").save(
        split_dir / "1st_manual" / f"{number}_manual1.gif"
    )
    lo, hi = fov_values
    Image.fromarray(np.where(fov, hi, lo).astype(np.uint8), mode="L").save(
        split_dir / "mask" / f"{number}_{split}_mask.gif"
    )
    second_labels = None
    if second:  # like the real 2nd_manual: a palette GIF holding indices {0, 1}
        second_labels = rng.random((H, W)) < 0.2
        im = Image.fromarray(second_labels.astype(np.uint8), mode="P")
        im.putpalette([4, 2, 4, 252, 254, 252] + [0, 0, 0] * 254)
        im.save(split_dir / "2nd_manual" / f"{number}_manual2.gif")
    return {"rgb": rgb, "vessels": vessels, "fov": fov, "second": second_labels}


@pytest.fixture
def fake_drive(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for number in ("22", "21", "23"):
        written[f"{number}_training"] = _write_case(tmp_path / "DRIVE" / "training", number, "training", rng)
    for number in ("01", "02"):
        written[f"{number}_test"] = _write_case(tmp_path / "DRIVE" / "test", number, "test", rng, second=True)
    return tmp_path, written


def test_loads_fake_tree_exactly(fake_drive):
    root, written = fake_drive
    cases = load_drive("training", root)
    assert [c.name for c in cases] == ["21_training", "22_training", "23_training"]
    for case in cases:
        ref = written[case.name]
        assert case.image.dtype == np.float32 and case.image.shape == (H, W, 3)
        np.testing.assert_allclose(case.image, ref["rgb"] / 255.0, atol=1e-6)
        assert case.vessels.dtype == bool and case.fov.dtype == bool
        np.testing.assert_array_equal(case.vessels, ref["vessels"])
        np.testing.assert_array_equal(case.fov, ref["fov"])


def test_second_observer_palette_gif_and_testing_folder_name(fake_drive):
    root, written = fake_drive
    (root / "DRIVE" / "test").rename(root / "DRIVE" / "testing")
    first = load_drive("test", root)
    second = load_drive("test", root, observer=2)
    assert [c.name for c in second] == ["01_test", "02_test"]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(b.vessels, written[b.name]["second"])
        np.testing.assert_array_equal(a.vessels, written[a.name]["vessels"])
        np.testing.assert_array_equal(a.image, b.image)


def test_labels_stored_as_zero_one_are_accepted(tmp_path):
    written = _write_case(
        tmp_path / "DRIVE" / "training",
        "21",
        "training",
        np.random.default_rng(1),
        label_values=(0, 1),
        fov_values=(0, 1),
    )
    (case,) = load_drive("training", tmp_path)
    np.testing.assert_array_equal(case.vessels, written["vessels"])
    np.testing.assert_array_equal(case.fov, written["fov"])


def test_find_drive_root(tmp_path, monkeypatch):
    assert find_drive_root(tmp_path) is None
    (tmp_path / "DRIVE").mkdir()
    assert find_drive_root(tmp_path) == tmp_path / "DRIVE"
    assert find_drive_root(tmp_path / "DRIVE") == tmp_path / "DRIVE"
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert find_drive_root() == tmp_path / "DRIVE"


def test_missing_drive_tells_where_to_get_and_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as err:
        load_drive("training")
    msg = str(err.value)
    assert "https://drive.grand-challenge.org/" in msg
    assert str(tmp_path / "DRIVE" / "training") in msg and str(tmp_path / "DRIVE" / "test") in msg
    assert "COURSE_DATA_DIR" in msg


def test_missing_split_folder(tmp_path):
    (tmp_path / "DRIVE" / "training").mkdir(parents=True)
    with pytest.raises(DataError, match="test"):
        load_drive("test", tmp_path)


def test_no_images(tmp_path):
    (tmp_path / "DRIVE" / "training" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="No DRIVE images"):
        load_drive("training", tmp_path)


@pytest.mark.parametrize("missing", ["1st_manual/21_manual1.gif", "mask/21_training_mask.gif"])
def test_image_without_label_or_fov(tmp_path, missing):
    _write_case(tmp_path / "DRIVE" / "training", "21", "training", np.random.default_rng(2))
    (tmp_path / "DRIVE" / "training" / missing).unlink()
    with pytest.raises(DataError, match=r"21_training\.tif has no") as err:
        load_drive("training", tmp_path)
    assert Path(missing).stem in str(err.value)


def test_non_binary_mask(tmp_path):
    _write_case(tmp_path / "DRIVE" / "training", "21", "training", np.random.default_rng(3), label_values=(0, 128))
    with pytest.raises(DataError, match=r"21_manual1\.gif is not binary"):
        load_drive("training", tmp_path)


def test_size_mismatch(tmp_path):
    _write_case(tmp_path / "DRIVE" / "training", "21", "training", np.random.default_rng(4), label_size=(W + 1, H))
    with pytest.raises(DataError, match=r"21_manual1\.gif is 11x12 pixels but image .*21_training\.tif is 10x12"):
        load_drive("training", tmp_path)


def test_bad_arguments(fake_drive):
    root, _ = fake_drive
    with pytest.raises(ValueError, match="split"):
        load_drive("validation", root)
    with pytest.raises(ValueError, match="test split only"):
        load_drive("training", root, observer=2)


def _dummy_cases(n: int) -> list[FundusCase]:
    z = np.zeros((2, 2), dtype=bool)
    return [FundusCase(f"c{i}", np.zeros((2, 2, 3), np.float32), z, z) for i in range(n)]


def test_split_train_val_deterministic_disjoint_complete():
    cases = _dummy_cases(20)
    train, val = split_train_val(cases, n_val=4, seed=0)
    again_train, again_val = split_train_val(cases, n_val=4, seed=0)
    assert [c.name for c in val] == [c.name for c in again_val]
    assert [c.name for c in train] == [c.name for c in again_train]
    assert len(val) == 4 and len(train) == 16
    assert {c.name for c in train} | {c.name for c in val} == {c.name for c in cases}
    assert not {c.name for c in train} & {c.name for c in val}
    other_seeds = {tuple(c.name for c in split_train_val(cases, 4, seed=s)[1]) for s in range(1, 6)}
    assert len(other_seeds | {tuple(c.name for c in val)}) > 1
    with pytest.raises(ValueError):
        split_train_val(cases, n_val=20)


# ----- the real data (CI sets COURSE_DATA_DIR to the shared data folder) -------------------------
def _real_root() -> Path | None:
    env = os.environ.get("COURSE_DATA_DIR")
    if env and (Path(env) / "DRIVE").is_dir():
        return Path(env)
    return None


@pytest.mark.skipif(_real_root() is None, reason="COURSE_DATA_DIR holds no DRIVE/ folder")
def test_real_drive_matches_the_protocol():
    root = _real_root()
    for split in ("training", "test"):
        cases = load_drive(split, root)
        assert len(cases) == 20
        fractions = []
        for case in cases:
            assert case.image.shape == (584, 565, 3) and case.vessels.shape == case.fov.shape == (584, 565)
            assert 0.0 <= case.image.min() and case.image.max() <= 1.0
            fractions.append(case.vessels[case.fov].sum() / case.fov.sum())
        pooled = float(np.mean(fractions))
        assert 0.11 <= pooled <= 0.14, (split, pooled)
    second = load_drive("test", root, observer=2)
    assert len(second) == 20 and all(0.05 < c.vessel_fraction() < 0.25 for c in second)
