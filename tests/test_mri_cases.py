"""Finding and loading cases: user folders (WMH layout), every error names the file, open_ms_data when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from course_utils.errors import DataError
from course_utils.mri.cases import (
    OPEN_MS_LAYOUT,
    WMH2017_LAYOUT,
    CaseLayout,
    MRICase,
    find_cases,
    load_case,
    load_cases,
    open_ms_dir,
    open_ms_lesion_masks,
    save_prediction,
    write_case,
)
from course_utils.mri.io import load_volume, save_volume

FLAT_WMH = CaseLayout(
    modalities={"FLAIR": "FLAIR.nii.gz", "T1": "T1.nii.gz"}, label="wmh.nii.gz", ignore_values=(2,), name="flat-wmh"
)
AFFINE = np.array([[2.0, 0, 0, -10.0], [0, 2.0, 0, -12.0], [0, 0, 2.0, -8.0], [0, 0, 0, 1]])


def tiny_case(seed: int = 0, shape=(8, 10, 6)) -> MRICase:
    rng = np.random.default_rng(seed)
    brain = np.zeros(shape, bool)
    brain[1:-1, 1:-1, 1:-1] = True
    flair = np.where(brain, rng.uniform(1, 2, shape), 0).astype(np.float32)
    t1 = np.where(brain, rng.uniform(2, 3, shape), 0).astype(np.float32)
    label = np.zeros(shape, np.uint8)
    label[3:5, 3:5, 2:4] = 1
    ignore = np.zeros(shape, bool)
    ignore[5, 6, 3] = True
    return MRICase(
        name=f"case{seed}",
        images={"FLAIR": flair, "T1": t1},
        label=label,
        brain_mask=brain,
        affine=AFFINE.copy(),
        ignore=ignore,
    )


def test_write_then_find_and_load_a_wmh_style_folder(tmp_path):
    cases = [tiny_case(0), tiny_case(1)]
    for i, case in enumerate(cases):
        write_case(case, tmp_path / "Utrecht" / str(i), FLAT_WMH)
    found = find_cases(tmp_path, FLAT_WMH)
    assert [f.name for f in found] == ["Utrecht/0", "Utrecht/1"]
    loaded = load_case(found[1], FLAT_WMH)
    np.testing.assert_allclose(loaded.images["FLAIR"], cases[1].images["FLAIR"])
    np.testing.assert_array_equal(loaded.label, cases[1].label)
    np.testing.assert_array_equal(loaded.ignore, cases[1].ignore)  # label 2 -> ignore, not lesion
    np.testing.assert_array_equal(loaded.brain_mask, cases[1].brain_mask)
    np.testing.assert_allclose(loaded.affine, AFFINE)
    assert loaded.stack(["T1", "FLAIR"]).shape == (2, 8, 10, 6)
    with pytest.raises(DataError, match="no modality \\['T2'\\]"):
        loaded.stack(["T2"])


def test_wmh2017_layout_finds_pre_subfolders_and_natural_order(tmp_path):
    pre_layout = CaseLayout(
        modalities={"FLAIR": "pre/FLAIR.nii.gz", "T1": "pre/T1.nii.gz"}, label="wmh.nii.gz", ignore_values=(2,)
    )
    for name in ("2", "10"):
        write_case(tiny_case(int(name)), tmp_path / "Singapore" / name, pre_layout)
    found = find_cases(tmp_path, WMH2017_LAYOUT)
    assert [f.name for f in found] == ["Singapore/2", "Singapore/10"]
    assert found[0].modalities["FLAIR"] == tmp_path / "Singapore" / "2" / "pre" / "FLAIR.nii.gz"
    assert len(load_cases(tmp_path, WMH2017_LAYOUT, spacing=4.0)) == 2


def test_missing_modality_names_folder_and_file(tmp_path):
    write_case(tiny_case(0), tmp_path / "a", FLAT_WMH)
    (tmp_path / "a" / "T1.nii.gz").unlink()
    with pytest.raises(DataError, match=r"case folder .*a has no file for T1 \(T1.nii.gz\)"):
        find_cases(tmp_path, FLAT_WMH)
    assert find_cases(tmp_path, FLAT_WMH, on_incomplete="skip") == []
    only_flair = find_cases(tmp_path, FLAT_WMH, modalities=["FLAIR"])
    with pytest.raises(DataError, match="no file for modality \\['T1'\\]"):
        load_case(only_flair[0], FLAT_WMH, ["FLAIR", "T1"])


def test_mismatched_label_shape_or_affine_is_an_error_naming_the_file(tmp_path):
    case = tiny_case(0)
    files = write_case(case, tmp_path / "c", FLAT_WMH)
    save_volume(np.zeros((8, 10, 7), np.uint8), files.label, affine=AFFINE, overwrite=True)
    with pytest.raises(DataError, match=r"label .*wmh.nii.gz has shape \(8, 10, 7\) but FLAIR .*FLAIR.nii.gz"):
        load_case(files, FLAT_WMH)
    moved = AFFINE.copy()
    moved[1, 3] += 2.0
    save_volume(case.label, files.label, affine=moved, overwrite=True)
    with pytest.raises(DataError, match=r"wmh.nii.gz and FLAIR .*different affines"):
        load_case(files, FLAT_WMH)
    save_volume(case.label, files.label, affine=AFFINE + 1e-5, overwrite=True)  # float noise is fine
    load_case(files, FLAT_WMH)


def test_unexpected_label_values_are_an_error(tmp_path):
    case = tiny_case(0)
    files = write_case(case, tmp_path / "c", FLAT_WMH)
    bad = case.label.copy()
    bad[0, 0, 0] = 3
    save_volume(bad, files.label, affine=AFFINE, overwrite=True)
    with pytest.raises(DataError, match=r"wmh.nii.gz has values \[3\] besides the allowed \[0, 1, 2\]"):
        load_case(files, FLAT_WMH)


def test_files_in_another_orientation_are_reoriented(tmp_path):
    case = tiny_case(0)
    files = write_case(case, tmp_path / "c", FLAT_WMH)
    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = case.shape[0] - 1  # index i -> n - 1 - i
    las = AFFINE @ flip
    save_volume(case.images["T1"][::-1].copy(), files.modalities["T1"], affine=las, overwrite=True)
    loaded = load_case(files, FLAT_WMH)  # canonical=True: every file to RAS first
    np.testing.assert_allclose(loaded.images["T1"], case.images["T1"])
    with pytest.raises(DataError, match="orientations differ"):
        load_case(files, FLAT_WMH, canonical=False)


def test_save_prediction_goes_back_to_the_stored_grid(tmp_path):
    case = tiny_case(0)
    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = case.shape[0] - 1
    las_case = MRICase(
        name="las",
        images={k: v[::-1].copy() for k, v in case.images.items()},
        label=case.label[::-1].copy(),
        brain_mask=case.brain_mask[::-1].copy(),
        affine=AFFINE @ flip,
    )
    files = write_case(las_case, tmp_path / "las", CaseLayout(modalities={"FLAIR": "FLAIR.nii.gz"}, label="wmh.nii.gz"))
    loaded = load_case(files, FLAT_WMH, ["FLAIR"], spacing=4.0)  # RAS and coarser
    assert loaded.shape == (4, 5, 3)
    out = save_prediction(loaded, np.ones(loaded.shape, bool), tmp_path / "pred.nii.gz")
    back = load_volume(out, dtype=None)
    stored = load_volume(files.modalities["FLAIR"])
    assert back.shape == stored.shape and back.data.dtype == np.uint8 and back.data.all()
    np.testing.assert_allclose(back.affine, stored.affine)
    with pytest.raises(FileExistsError):
        save_prediction(loaded, np.ones(loaded.shape, bool), out)


def test_brain_mask_file_from_the_layout(tmp_path):
    case = tiny_case(0)
    files = write_case(case, tmp_path / "c", FLAT_WMH)
    mask = np.zeros(case.shape, np.uint8)
    mask[2:6, 2:8, 1:5] = 1
    save_volume(mask, tmp_path / "c" / "brainmask.nii.gz", affine=AFFINE)
    layout = CaseLayout(
        modalities=FLAT_WMH.modalities, label="wmh.nii.gz", ignore_values=(2,), brain_mask="brainmask.nii.gz"
    )
    loaded = load_case(find_cases(tmp_path, layout)[0], layout)
    np.testing.assert_array_equal(loaded.brain_mask, mask > 0)
    assert not np.array_equal(loaded.brain_mask, case.brain_mask)
    assert files.label is not None


def test_layout_validation_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="disjoint"):
        CaseLayout(modalities={"FLAIR": "f.nii.gz"}, lesion_values=(1,), ignore_values=(1,))
    with pytest.raises(DataError, match="does not exist"):
        find_cases(tmp_path / "nothing", FLAT_WMH)
    with pytest.raises(ValueError, match="plain file names"):
        write_case(tiny_case(0), tmp_path / "x", OPEN_MS_LAYOUT)
    with pytest.raises(DataError, match="open_ms_data not found.*COURSE_DATA_DIR"):
        open_ms_lesion_masks(tmp_path)


def _open_ms_root() -> Path | None:
    env = os.environ.get("COURSE_DATA_DIR")
    return Path(env) if env and open_ms_dir(env) is not None else None


@pytest.mark.skipif(_open_ms_root() is None, reason="COURSE_DATA_DIR holds no open_ms_data")
def test_open_ms_data_layout_on_the_real_files():
    folder = open_ms_dir(_open_ms_root())
    complete = find_cases(folder, OPEN_MS_LAYOUT, ["FLAIR", "T1"], on_incomplete="skip")
    assert [c.name for c in complete] == ["patient07", "patient19", "patient26"]
    with pytest.raises(DataError, match="has no file for FLAIR"):
        find_cases(folder, OPEN_MS_LAYOUT, ["FLAIR"])  # 27 patients have a lesion mask only
    masks = open_ms_lesion_masks(_open_ms_root())
    assert len(masks) == 27 and not {m.parent.name for m in masks} & {"patient07", "patient19", "patient26"}
    case = load_case(complete[0], OPEN_MS_LAYOUT, ["FLAIR"], spacing=3.0, normalise="zscore")
    assert case.shape == (61, 73, 61) and case.ignore is None
    assert 800 < case.summary()["brain_ml"] < 1600 and case.label.sum() > 0
    assert abs(float(case.images["FLAIR"][case.brain_mask].mean())) < 1e-3
