"""NIfTI I/O: round trips, grid / orientation / label checks, resampling, normalisation."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from course_utils.errors import DataError
from course_utils.mri.io import (
    Volume,
    brain_mask_from,
    check_label_values,
    check_orientation,
    check_same_grid,
    coarse_grid,
    load_volume,
    normalise_intensity,
    orientation,
    resample_to_grid,
    resample_to_voxel_size,
    save_volume,
    to_canonical,
    voxel_size,
)

LAS = np.array([[-1.0, 0, 0, 90.0], [0, 1.0, 0, -126.0], [0, 0, 1.0, -72.0], [0, 0, 0, 1]])


def aniso_affine() -> np.ndarray:
    return np.array([[0.9, 0, 0, -40.0], [0, 1.2, 0, -50.0], [0, 0, 3.0, -20.0], [0, 0, 0, 1]])


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int16])
def test_round_trip_keeps_affine_zooms_and_dtype(tmp_path, dtype):
    rng = np.random.default_rng(0)
    data = (rng.random((6, 7, 5)) * 100).astype(dtype)
    path = save_volume(data, tmp_path / "x.nii.gz", affine=aniso_affine())
    back = load_volume(path, dtype=None)
    assert back.data.dtype == dtype
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_allclose(back.affine, aniso_affine())
    assert back.header.get_zooms() == pytest.approx((0.9, 1.2, 3.0))
    assert back.header.get_data_dtype() == dtype
    assert back.spacing == pytest.approx((0.9, 1.2, 3.0))


def test_saving_like_a_volume_keeps_its_grid_and_never_overwrites(tmp_path):
    ref = Volume(np.ones((4, 4, 4), np.float32), LAS.copy())
    first = save_volume(ref, tmp_path / "ref.nii.gz")
    flair = load_volume(first)
    pred = np.zeros((4, 4, 4), dtype=bool)
    pred[1, 2, 3] = True
    out = save_volume(pred, tmp_path / "pred.nii.gz", like=flair)
    back = load_volume(out, dtype=None)
    assert back.data.dtype == np.uint8 and back.data[1, 2, 3] == 1 and back.data.sum() == 1
    np.testing.assert_allclose(back.affine, LAS)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_volume(pred, out, like=flair)
    save_volume(pred * 0, out, like=flair, overwrite=True)
    assert load_volume(out).data.sum() == 0
    with pytest.raises(ValueError, match="like="):
        save_volume(pred, tmp_path / "nowhere.nii.gz")


def test_missing_or_broken_files_are_named(tmp_path):
    with pytest.raises(DataError, match="not found: .*nope.nii.gz"):
        load_volume(tmp_path / "nope.nii.gz")
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti at all")
    with pytest.raises(DataError, match="broken.nii.gz"):
        load_volume(broken)
    four_d = save_volume(Volume(np.zeros((3, 3, 3, 2), np.float32)[..., 0], np.eye(4)), tmp_path / "ok.nii.gz")
    assert load_volume(four_d).shape == (3, 3, 3)
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), str(tmp_path / "series.nii.gz"))
    with pytest.raises(DataError, match="series.nii.gz.*3D"):
        load_volume(tmp_path / "series.nii.gz")


def test_check_same_grid_names_files_and_tolerates_float_noise():
    a = Volume(np.zeros((4, 5, 6)), np.eye(4), path=Path("FLAIR.nii.gz"))
    noisy = Volume(np.zeros((4, 5, 6)), np.eye(4) + 1e-5, path=Path("T1.nii.gz"))
    check_same_grid({"FLAIR": a, "T1": noisy})
    other_shape = Volume(np.zeros((4, 5, 7)), np.eye(4), path=Path("wmh.nii.gz"))
    with pytest.raises(DataError, match=r"label wmh.nii.gz has shape \(4, 5, 7\) but FLAIR FLAIR.nii.gz"):
        check_same_grid({"FLAIR": a, "label": other_shape})
    shifted = np.eye(4)
    shifted[0, 3] = 1.0
    with pytest.raises(DataError, match="T1 T1.nii.gz and FLAIR FLAIR.nii.gz .* different affines"):
        check_same_grid({"FLAIR": a, "T1": Volume(np.zeros((4, 5, 6)), shifted, path=Path("T1.nii.gz"))})
    flipped = Volume(np.zeros((4, 5, 6)), np.diag([-1.0, 1, 1, 1]), path=Path("T1.nii.gz"))
    with pytest.raises(DataError, match="orientations differ.*canonical=True"):
        check_same_grid({"FLAIR": a, "T1": flipped})


def test_to_canonical_flips_data_and_keeps_world_positions():
    data = np.zeros((5, 4, 3), np.float32)
    data[0, 1, 2] = 7.0  # LAS: axis 0 runs to the patient's left
    vol = Volume(data, LAS.copy(), path=Path("las.nii.gz"))
    assert orientation(vol.affine) == "LAS"
    with pytest.raises(DataError, match="LAS orientation, expected RAS.*as_closest_canonical"):
        check_orientation(vol)
    ras = to_canonical(vol)
    assert ras.orientation == "RAS"
    check_orientation(ras)
    world_before = LAS @ np.array([0, 1, 2, 1])
    ((i, j, k),) = np.argwhere(ras.data == 7.0)
    np.testing.assert_allclose(ras.affine @ np.array([i, j, k, 1]), world_before)
    same = resample_to_grid(vol, ras.shape, ras.affine, "image")
    np.testing.assert_array_equal(same.data, ras.data)


def test_label_values_checked():
    ok = Volume(np.array([0, 1, 2], np.uint8).reshape(1, 1, 3), np.eye(4), path=Path("wmh.nii.gz"))
    assert check_label_values(ok, (0, 1, 2)).tolist() == [[[0, 1, 2]]]
    with pytest.raises(DataError, match=r"wmh.nii.gz has values \[2\] besides the allowed \[0, 1\]"):
        check_label_values(ok, (0, 1))
    soft = Volume(np.array([0.0, 0.4, 1.0]).reshape(1, 1, 3), np.eye(4), path=Path("soft.nii.gz"))
    with pytest.raises(DataError, match="soft.nii.gz has non-integer values.*Threshold"):
        check_label_values(soft, (0, 1))


def test_resample_to_2mm_is_exact_block_mean_and_places_voxels_right():
    rng = np.random.default_rng(1)
    data = rng.random((8, 6, 4)).astype(np.float32)
    vol = Volume(data, np.array([[1.0, 0, 0, -3], [0, 1, 0, -2], [0, 0, 1, -1], [0, 0, 0, 1]]))
    coarse = resample_to_voxel_size(vol, 2.0)
    assert coarse.shape == (4, 3, 2) and voxel_size(coarse.affine) == pytest.approx((2, 2, 2))
    expected = data.reshape(4, 2, 3, 2, 2, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(coarse.data, expected, rtol=1e-6)
    # the coarse voxel (0, 0, 0) sits at the centre of the fine voxels (0..1, 0..1, 0..1)
    np.testing.assert_allclose(coarse.affine @ [0, 0, 0, 1], vol.affine @ [0.5, 0.5, 0.5, 1])


def test_resample_label_majority_and_mask():
    label = np.zeros((4, 2, 2), np.uint8)
    label[0:2, 0:2, 0] = 1  # 4 of the 8 voxels of coarse voxel 0: a tie, kept
    label[2, 0, 0] = 1  # 1 of 8 in coarse voxel 1: lost
    vol = Volume(label, np.eye(4))
    coarse = resample_to_voxel_size(vol, 2.0, kind="label")
    assert coarse.data.dtype == np.uint8 and coarse.data.ravel().tolist() == [1, 0]
    mask = resample_to_voxel_size(Volume(label > 0, np.eye(4)), 2.0, kind="mask")
    assert mask.data.dtype == bool and mask.data.ravel().tolist() == [True, False]
    with pytest.raises(ValueError, match="kind"):
        resample_to_voxel_size(vol, 2.0, kind="nearest")


def test_non_integer_factor_keeps_constants_and_zero_outside():
    vol = Volume(np.full((9, 9, 9), 5.0, np.float32), np.eye(4))
    coarse = resample_to_voxel_size(vol, 1.5)
    assert coarse.shape == (6, 6, 6)
    inner = coarse.data[1:-1, 1:-1, 1:-1]
    np.testing.assert_allclose(inner, 5.0, rtol=1e-5)  # averaging a constant gives the constant
    outside = resample_to_grid(vol, (4, 4, 4), np.diag([1.0, 1.0, 1.0, 1.0]) @ _shift(20.0), "image")
    assert (outside.data == 0).all()  # beyond the source: zeros


def _shift(mm: float) -> np.ndarray:
    out = np.eye(4)
    out[:3, 3] = mm
    return out


def test_coarse_grid_covers_the_same_box():
    shape, affine = coarse_grid((182, 218, 182), LAS, 2.0)
    assert shape == (91, 109, 91)
    assert orientation(affine) == "LAS"
    np.testing.assert_allclose(affine @ [0, 0, 0, 1], LAS @ [0.5, 0.5, 0.5, 1])


def test_normalise_intensity_inside_mask_only():
    rng = np.random.default_rng(2)
    data = rng.normal(100, 20, size=(10, 10, 10)).astype(np.float32)
    mask = np.zeros(data.shape, bool)
    mask[2:8, 2:8, 2:8] = True
    z = normalise_intensity(data, mask, "zscore", percentiles=(0, 100))
    assert z[mask].mean() == pytest.approx(0, abs=1e-5) and z[mask].std() == pytest.approx(1, abs=1e-5)
    assert (z[~mask] == 0).all()
    mm = normalise_intensity(data, mask, "minmax", percentiles=(0, 100))
    assert mm[mask].min() == pytest.approx(0) and mm[mask].max() == pytest.approx(1)
    with pytest.raises(DataError, match="brain mask is empty"):
        normalise_intensity(data, np.zeros_like(mask))
    assert brain_mask_from([np.where(mask, data, 0)]).sum() == mask.sum()


def _open_ms_patient() -> Path | None:
    env = os.environ.get("COURSE_DATA_DIR")
    folder = Path(env) / "open_ms_data" / "cross_sectional" / "MNI" / "patient07" if env else None
    return folder if folder is not None and folder.is_dir() else None


@pytest.mark.skipif(_open_ms_patient() is None, reason="COURSE_DATA_DIR holds no open_ms_data")
def test_real_flair_header_and_orientation():
    path = next(_open_ms_patient().glob("FLAIR_*.nii.gz"))
    vol = load_volume(path)
    assert vol.shape == (182, 218, 182) and vol.spacing == pytest.approx((1, 1, 1))
    assert vol.orientation == "LAS"
    ras = to_canonical(vol)
    assert ras.orientation == "RAS"
    np.testing.assert_array_equal(ras.data, vol.data[::-1])
    coarse = resample_to_voxel_size(ras, 3.0)
    assert coarse.shape == (61, 73, 61) and np.isfinite(coarse.data).all()
