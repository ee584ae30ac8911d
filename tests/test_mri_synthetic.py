"""Synthetic MRI cases: offline, deterministic, fast, anatomically plausible, licence notice kept."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from course_utils.errors import DataError
from course_utils.mri import synthetic
from course_utils.mri.cases import open_ms_dir
from course_utils.mri.contrast import lesion_contrast
from course_utils.mri.synthetic import LICENSE_NOTICE, make_synthetic_case, synthetic_grid


@pytest.fixture(scope="module")
def case():
    return make_synthetic_case(3, 2.0, lesions="procedural")


def test_builds_offline_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access is not allowed in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    synthetic.mni152_maps.cache_clear()
    c = make_synthetic_case(0, 4.0, lesions="procedural")
    assert c.images["FLAIR"].shape == synthetic_grid(4.0)[0]


def test_deterministic_per_seed():
    case = make_synthetic_case(3, 4.0, lesions="procedural")
    again = make_synthetic_case(3, 4.0, lesions="procedural")
    for name in ("FLAIR", "T1"):
        np.testing.assert_array_equal(case.images[name], again.images[name])
    np.testing.assert_array_equal(case.label, again.label)
    other = make_synthetic_case(4, 4.0, lesions="procedural")
    assert not np.array_equal(case.label, other.label)
    assert not np.array_equal(case.images["FLAIR"], other.images["FLAIR"])


def test_grid_matches_open_ms_data_in_ras(case):
    shape, affine = synthetic_grid(2.0)
    assert case.shape == shape == (91, 109, 91)
    np.testing.assert_allclose(case.affine, affine)
    assert case.spacing == pytest.approx((2.0, 2.0, 2.0))
    # the 2 mm voxel (0, 0, 0) covers the 1 mm voxels (0..1) of the RAS open_ms grid, origin (-91, -126, -72)
    np.testing.assert_allclose(case.affine[:3, 3], [-90.5, -125.5, -71.5])


def test_anatomy_and_lesions_are_plausible(case):
    brain, lesion = case.brain_mask, case.label > 0
    brain_ml = brain.sum() * 8 / 1000
    assert 1000 < brain_ml < 1700  # an adult brain, like the open_ms_data patients
    assert lesion.any() and not (lesion & ~brain).any()
    for img in case.images.values():
        assert img.dtype == np.float32 and np.isfinite(img).all() and (img[~brain] == 0).all()
    wm = case.extras["wm"] > 0.5
    gm = case.extras["gm"] > 0.5
    flair, t1 = case.images["FLAIR"], case.images["T1"]
    normal_wm = wm & ~lesion
    ratio = flair[lesion].mean() / flair[normal_wm].mean()
    assert 1.1 < ratio < 1.6  # FLAIR: hyperintense, from real-like to twice that
    assert t1[lesion].mean() < 0.95 * t1[normal_wm].mean()  # T1: lesions hypointense
    assert flair[gm & ~lesion].mean() > flair[normal_wm].mean()  # FLAIR: GM brighter than WM
    assert t1[gm].mean() < t1[normal_wm].mean()  # T1: WM brighter than GM
    near_wm = case.extras["wm"] + case.extras["lesion_fraction"] > 0.3
    assert (lesion & near_wm).sum() >= 0.9 * lesion.sum()  # lesions sit in white matter


def test_fast_at_2mm(case):
    start = time.perf_counter()
    make_synthetic_case(11, 2.0, lesions="procedural")
    assert time.perf_counter() - start < 2.0


def test_licence_notice_is_kept():
    for text in (LICENSE_NOTICE, synthetic.__doc__):
        assert "Copyright (C) 1993-2004 Louis Collins" in text and "McGill University" in text
        assert "provided that the above" in text


def test_bad_arguments_and_missing_real_masks(tmp_path):
    with pytest.raises(ValueError, match="lesions=.random. is not supported"):
        make_synthetic_case(0, lesions="random")
    with pytest.raises(ValueError, match="spacing"):
        make_synthetic_case(0, spacing=0.1)
    with pytest.raises(DataError, match="open_ms_data not found"):
        make_synthetic_case(0, 4.0, lesions="open_ms", root=tmp_path)
    c = make_synthetic_case(0, 4.0, lesions="auto", root=tmp_path)  # no data: procedural lesions
    assert c.label.any()


def _open_ms_root() -> Path | None:
    env = os.environ.get("COURSE_DATA_DIR")
    return Path(env) if env and open_ms_dir(env) is not None else None


@pytest.mark.skipif(_open_ms_root() is None, reason="COURSE_DATA_DIR holds no open_ms_data")
def test_real_lesion_masks_are_used_when_available():
    a = make_synthetic_case(1, 2.0, lesions="open_ms", root=_open_ms_root())
    b = make_synthetic_case(1, 2.0, lesions="open_ms", root=_open_ms_root())
    np.testing.assert_array_equal(a.label, b.label)
    assert a.label.any() and not (a.label.astype(bool) & ~a.brain_mask).any()


@pytest.mark.skipif(_open_ms_root() is None, reason="COURSE_DATA_DIR holds no open_ms_data")
def test_lesion_contrast_range_covers_the_real_patients(monkeypatch):
    """The weakest synthetic lesions stand out less than a real patient's lesions and the strongest more
    (FLAIR, 1 mm, contrast against the tissue around them in brain SDs), with real-like tissue variation."""
    from course_utils.mri.cases import OPEN_MS_LAYOUT, find_cases, load_case

    root = _open_ms_root()
    files = [
        f
        for f in find_cases(open_ms_dir(root), OPEN_MS_LAYOUT, ("FLAIR",), on_incomplete="skip")
        if f.name == "patient26"
    ]
    real_case = load_case(files[0], OPEN_MS_LAYOUT, ("FLAIR",))
    real = lesion_contrast(real_case.images["FLAIR"], real_case.brain_mask, real_case.label)
    assert 0.8 < real["contrast"] < 1.5  # the real patient, as measured (1.13)
    low, high = synthetic.FLAIR_LESION
    measured = {}
    for name, value in (("weakest", low), ("strongest", high)):
        monkeypatch.setattr(synthetic, "FLAIR_LESION", (value, value))
        synth = make_synthetic_case(1001, 1.0, lesions="open_ms", root=root)
        measured[name] = lesion_contrast(synth.images["FLAIR"], synth.brain_mask, synth.label)
    assert measured["weakest"]["contrast"] < real["contrast"] < measured["strongest"]["contrast"], measured
    assert abs(measured["weakest"]["surround_sd"] - real["surround_sd"]) < 0.25  # 0.61 vs 0.76 when measured
