"""Issue #15: bad input never costs a learner their time, files or results.

Each case builds a small broken data set in tmp_path and checks that the course stops with a
clear :class:`DataError` before any work starts, or warns (:class:`DataWarning`) when the input
is legal but suspicious. ``test_case_NN_*`` follow the issue's numbering; ``test_more_*`` are
further bad inputs tried while fixing them.
"""

from __future__ import annotations

import gzip
import os
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import real_data_root
from PIL import Image

from course_utils.data.drive import find_drive_root, load_drive
from course_utils.data.vessels import load_vessel_data
from course_utils.errors import ConfigError, DataError, DataWarning
from course_utils.lessons.lesson04.pipeline import prepare_open_ms
from course_utils.mri.cases import OPEN_MS_LAYOUT, CaseLayout, find_cases, load_case, open_ms_cases
from course_utils.mri.io import load_volume, normalise_intensity
from course_utils.paths import data_root

SHAPE = (10, 12, 8)
SUFFIX = "_N4_regtoMNI.nii.gz"


# ----- fixtures: a tiny open_ms_data tree ------------------------------------------------------------
def _nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), str(path))
    return path


def _brain() -> np.ndarray:
    brain = np.zeros(SHAPE, bool)
    brain[2:-2, 2:-2, 2:-2] = True
    return brain


def _patient(folder: Path, seed: int, skip: tuple[str, ...] = (), lesion: bool = True) -> dict[str, Path]:
    """One open_ms_data-like patient folder (FLAIR, T1, GOLD_STANDARD); ``skip``: modalities left out."""
    rng = np.random.default_rng(seed)
    brain = _brain()
    paths = {}
    for i, modality in enumerate(("FLAIR", "T1")):
        if modality in skip:
            continue
        data = np.where(brain, rng.uniform(1 + i, 2 + i, SHAPE), 0).astype(np.float32)
        paths[modality] = _nifti(folder / f"{modality}{SUFFIX}", data)
    label = np.zeros(SHAPE, np.uint8)
    if lesion:
        label[4:6, 4:6, 3:5] = 1
    paths["label"] = _nifti(folder / f"GOLD_STANDARD{SUFFIX}", label)
    return paths


def _open_ms(root: Path, patients=("patient07", "patient19"), **kwargs) -> Path:
    """``root/open_ms_data/cross_sectional/MNI/<patients>`` plus one label-only patient; returns MNI."""
    mni = root / "open_ms_data" / "cross_sectional" / "MNI"
    for i, name in enumerate(patients):
        _patient(mni / name, i, **(kwargs if name == patients[0] else {}))
    label = np.zeros(SHAPE, np.uint8)
    label[3, 3, 3] = 1
    _nifti(mni / "patient01" / f"GOLD_STANDARD{SUFFIX}", label)  # like the 27 label-only patients
    return mni


# ----- fixtures: a tiny DRIVE tree ---------------------------------------------------------------
N = 24


def _disk(radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:N, :N]
    return (yy - (N - 1) / 2) ** 2 + (xx - (N - 1) / 2) ** 2 <= radius**2


def _drive_case(split_dir: Path, number: str, split: str, *, fov=None, vessels=None, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    for sub in ("images", "1st_manual", "mask"):
        (split_dir / sub).mkdir(parents=True, exist_ok=True)
    fov = _disk(11) if fov is None else fov  # 66 % of the image, like DRIVE's 68-69 %
    if vessels is None:
        vessels = (rng.random((N, N)) < 0.15) & fov
    paths = {
        "image": split_dir / "images" / f"{number}_{split}.tif",
        "label": split_dir / "1st_manual" / f"{number}_manual1.gif",
        "fov": split_dir / "mask" / f"{number}_{split}_mask.gif",
    }
    Image.fromarray(rng.integers(0, 256, (N, N, 3), dtype=np.uint8)).save(paths["image"])
    Image.fromarray(np.where(vessels, 255, 0).astype(np.uint8), mode="L").save(paths["label"])
    Image.fromarray(np.where(fov, 255, 0).astype(np.uint8), mode="L").save(paths["fov"])
    return paths


def _drive(root: Path, name: str = "DRIVE") -> Path:
    for i, number in enumerate(("21", "22", "23")):
        _drive_case(root / name / "training", number, "training", seed=i)
    for i, number in enumerate(("01", "02")):
        _drive_case(root / name / "test", number, "test", seed=10 + i)
    return root / name


def _messages(record) -> str:
    return "\n".join(str(w.message) for w in record)


# ----- the cases -----------------------------------------------------------------------
def test_case_01_non_finite_flair_is_an_error_naming_file_and_count(tmp_path):
    mni = _open_ms(tmp_path)
    flair_path = next((mni / "patient07").glob("FLAIR_*"))
    data = np.asarray(nib.load(str(flair_path)).get_fdata(), np.float32)
    data[5, 5, 4] = np.nan
    data[4, 6, 3] = np.inf
    data[6, 4, 3] = -np.inf
    _nifti(flair_path, data)
    with pytest.raises(DataError) as err:
        load_volume(flair_path)
    msg = str(err.value)
    assert str(flair_path) in msg and "3 non-finite" in msg and "1 NaN" in msg
    with pytest.raises(DataError, match="3 non-finite"):
        prepare_open_ms(None, patients=["patient07"], root=tmp_path)
    # an in-memory array with NaN cannot be normalised either (it would turn the whole brain into NaN)
    with pytest.raises(DataError, match="non-finite"):
        normalise_intensity(data, _brain())


def test_case_05_incomplete_patient_is_named_with_its_missing_modality(tmp_path):
    _open_ms(tmp_path, skip=("T1",))  # patient07 has no T1
    with pytest.warns(DataWarning) as record:
        prepared = prepare_open_ms(None, root=tmp_path)
    assert [p.name for p in prepared] == ["patient19"]
    msg = _messages(record)
    assert "patient07" in msg and "T1" in msg and "patient01" not in msg  # label-only patients are expected
    with pytest.raises(DataError) as err:
        prepare_open_ms(None, patients=["patient07"], root=tmp_path)
    msg = str(err.value)
    assert "patient07" in msg and "T1" in msg and "T1_*.nii.gz" in msg
    assert "complete ones" not in msg or "patient07" not in msg.split("complete ones")[1]
    with pytest.raises(DataError, match="patient99.*no folder"):
        prepare_open_ms(None, patients=["patient99"], root=tmp_path)
    with pytest.warns(DataWarning, match="patient07.*T1"):
        assert [c.name for c in open_ms_cases(root=tmp_path)] == ["patient19"]


def test_case_07_truncated_gzip_names_the_file_and_says_download_again(tmp_path):
    rng = np.random.default_rng(0)
    path = _nifti(tmp_path / "FLAIR.nii.gz", rng.normal(size=(16, 16, 16)).astype(np.float32))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError) as err:
        load_volume(path)
    msg = str(err.value)
    assert str(path) in msg and "corrupt or incomplete" in msg and "download" in msg


def test_case_08_inverted_fov_and_empty_vessel_label_warn(tmp_path):
    drive = _drive(tmp_path)
    inverted = _drive_case(drive / "training", "21", "training", fov=~_disk(11))  # 34 % of the image
    empty = _drive_case(drive / "training", "22", "training", vessels=np.zeros((N, N), bool))
    with pytest.warns(DataWarning) as record:
        load_drive("training", tmp_path)
    msg = _messages(record)
    assert str(inverted["fov"]) in msg and "inverted" in msg
    assert str(empty["label"]) in msg and "vessel" in msg
    assert "23_" not in msg


def test_case_08_good_fake_and_synthetic_data_do_not_warn(tmp_path):
    _drive(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_drive("training", tmp_path)
        load_vessel_data(synthetic=True, max_train=6, max_test=2, n_val=2, synthetic_size=(64, 64))


@pytest.mark.skipif(
    real_data_root() is None or find_drive_root(real_data_root()) is None, reason="COURSE_DATA_DIR holds no DRIVE"
)
def test_case_08_real_drive_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for split in ("training", "test"):
            load_drive(split, real_data_root())


def test_case_09_all_zero_lesion_label_warns_naming_the_case(tmp_path):
    mni = _open_ms(tmp_path, lesion=False)
    (files,) = [
        f for f in find_cases(mni, OPEN_MS_LAYOUT, ["FLAIR", "T1"], on_incomplete="skip") if f.name == "patient07"
    ]
    with pytest.warns(DataWarning, match="patient07.*labelled case with no lesion") as record:
        load_case(files, OPEN_MS_LAYOUT, ["FLAIR", "T1"])
    assert str(files.label) in _messages(record)


def test_case_12_all_zero_flair_names_case_file_and_modality(tmp_path):
    mni = _open_ms(tmp_path)
    flair_path = next((mni / "patient07").glob("FLAIR_*"))
    _nifti(flair_path, np.zeros(SHAPE, np.float32))
    with pytest.raises(DataError) as err:
        prepare_open_ms(None, patients=["patient07"], root=tmp_path)
    msg = str(err.value)
    assert "FLAIR" in msg and str(flair_path) in msg and "patient07" in msg
    # normalise_intensity alone names what it is given
    with pytest.raises(DataError, match="FLAIR of patient07.*constant"):
        normalise_intensity(np.zeros(SHAPE, np.float32), _brain(), name="FLAIR of patient07")


def test_case_15_appledouble_and_stray_copies_are_ignored(tmp_path):
    drive = _drive(tmp_path)
    images = drive / "training" / "images"
    (images / "._21_training.tif").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    shutil.copy(images / "21_training.tif", images / "21_training - Copy.tif")
    with pytest.warns(DataWarning) as record:
        cases = load_drive("training", tmp_path)
    assert [c.name for c in cases] == ["21_training", "22_training", "23_training"]
    msg = _messages(record)
    assert "21_training - Copy.tif" in msg and "._21_training.tif" not in msg


def test_case_16_lower_case_drive_folder_is_used_with_a_note(tmp_path):
    drive = _drive(tmp_path, name="drive")
    with pytest.warns(DataWarning, match="drive.*DRIVE"):
        assert find_drive_root(tmp_path) == drive
    with pytest.warns(DataWarning, match="DRIVE"):
        data = load_vessel_data(tmp_path, n_val=1)
    assert data.source == "real" and len(data.train) == 2 and len(data.test) == 2


def test_case_10_relative_data_root_message_and_runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_DATA_DIR", "../shared/data-nope")
    with pytest.raises(ConfigError) as err:
        data_root()
    msg = str(err.value)
    assert "relative" in msg and str(tmp_path) in msg and "absolute" in msg
    from course_utils.notebook_runner import absolute_data_dir

    (tmp_path / "mydata").mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", "mydata")
    absolute_data_dir()
    assert os.environ["COURSE_DATA_DIR"] == str(tmp_path / "mydata")
    monkeypatch.chdir(tmp_path / "mydata")  # like the kernel in notebooks/
    assert data_root() == tmp_path / "mydata"


# ----- further bad inputs -----------------------------------------------------------------------
def test_more_two_d_and_zero_voxel_size_nifti(tmp_path):
    with pytest.raises(DataError, match="flat.nii.gz.*3D"):
        load_volume(_nifti(tmp_path / "flat.nii.gz", np.ones((5, 5), np.float32)))
    image = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), None)
    image.header.set_sform(np.diag([1.0, 0.0, 1.0, 1.0]), code=1)  # nibabel saves a zero-size axis in sform only
    nib.save(image, str(tmp_path / "zero.nii.gz"))
    with pytest.raises(DataError, match="zero.nii.gz.*voxel size"):
        load_volume(tmp_path / "zero.nii.gz")
    flipped = _nifti(tmp_path / "flip.nii.gz", np.ones((4, 4, 4), np.float32), np.diag([-1.0, 1.0, 1.0, 1.0]))
    assert load_volume(flipped).spacing == (1.0, 1.0, 1.0)  # a negative axis is a flip, not an error


def test_more_label_stored_as_0_255_says_so(tmp_path):
    mni = _open_ms(tmp_path)
    label_path = next((mni / "patient07").glob("GOLD_STANDARD_*"))
    label = np.asarray(nib.load(str(label_path)).dataobj) * 255
    _nifti(label_path, label.astype(np.uint8))
    (files,) = [f for f in find_cases(mni, OPEN_MS_LAYOUT, ["FLAIR"], on_incomplete="skip") if f.name == "patient07"]
    with pytest.raises(DataError, match=r"GOLD_STANDARD.*\[255\].*0/255"):
        load_case(files, OPEN_MS_LAYOUT, ["FLAIR"])


def test_more_wrong_extension_and_empty_file(tmp_path):
    plain = _nifti(tmp_path / "plain.nii", np.ones((4, 4, 4), np.float32))
    renamed = plain.rename(tmp_path / "renamed.nii.gz")  # an uncompressed file named .gz
    with pytest.raises(DataError, match="renamed.nii.gz.*not a gzip file"):
        load_volume(renamed)
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    with pytest.raises(DataError, match="empty.nii.gz"):
        load_volume(tmp_path / "empty.nii.gz")
    gz = tmp_path / "gz_not_nifti.nii.gz"
    gz.write_bytes(gzip.compress(b"hello" * 100))
    with pytest.raises(DataError, match="gz_not_nifti.nii.gz"):
        load_volume(gz)


def test_more_mismatched_modalities_and_rgb_nifti(tmp_path):
    layout = CaseLayout(modalities={"FLAIR": "FLAIR.nii.gz", "T1": "T1.nii.gz"}, name="flat")
    _nifti(tmp_path / "c1" / "FLAIR.nii.gz", np.ones(SHAPE, np.float32))
    _nifti(tmp_path / "c1" / "T1.nii.gz", np.ones((10, 12, 9), np.float32))
    (files,) = find_cases(tmp_path, layout)
    with pytest.raises(DataError, match="T1.*shape.*FLAIR"):
        load_case(files, layout)
    rgb = np.zeros((4, 4, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    _nifti(tmp_path / "rgb.nii.gz", rgb)
    with pytest.raises(DataError, match="rgb.nii.gz"):
        load_volume(tmp_path / "rgb.nii.gz")


def test_more_symlink_loop_and_data_root_is_a_file(tmp_path, monkeypatch):
    loop = tmp_path / "loop.nii.gz"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match="loop.nii.gz is a symbolic link to nothing"):
        load_volume(loop)
    with pytest.raises(DataError, match="is a folder, not a NIfTI file"):
        load_volume(tmp_path)
    drive = _drive(tmp_path)
    img = drive / "training" / "images" / "24_training.tif"
    img.symlink_to(img)
    with pytest.raises(DataError, match="24_training.tif"):
        load_drive("training", tmp_path)
    file_root = tmp_path / "data.txt"
    file_root.write_text("not a folder")
    monkeypatch.setenv("COURSE_DATA_DIR", str(file_root))
    with pytest.raises(ConfigError, match="not a folder"):
        data_root()


def test_more_empty_drive_folder_is_an_error_not_synthetic(tmp_path):
    (tmp_path / "DRIVE").mkdir()
    with pytest.raises(DataError, match="training"):
        load_vessel_data(tmp_path)
    (tmp_path / "DRIVE" / "training" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="No DRIVE images"):
        load_drive("training", tmp_path)


def test_more_png_renamed_tif_and_grey_image_load(tmp_path):
    drive = _drive(tmp_path)
    img = drive / "training" / "images" / "21_training.tif"
    Image.open(img).save(tmp_path / "x.png")
    shutil.copy(tmp_path / "x.png", img)  # a PNG named .tif: Pillow reads it by its content
    Image.open(img).convert("L").save(drive / "training" / "images" / "22_training.tif")
    cases = load_drive("training", tmp_path)
    assert [c.image.shape for c in cases] == [(N, N, 3)] * 3


def test_more_drive_label_not_binary_and_wrong_size(tmp_path):
    drive = _drive(tmp_path)
    label = drive / "training" / "1st_manual" / "21_manual1.gif"
    Image.fromarray((np.arange(N * N).reshape(N, N) % 200).astype(np.uint8), mode="L").save(label)
    with pytest.raises(DataError, match="21_manual1.gif.*not binary"):
        load_drive("training", tmp_path)
    Image.fromarray(np.zeros((N, N + 2), np.uint8), mode="L").save(label)
    with pytest.raises(DataError, match="21_manual1.gif.*must match"):
        load_drive("training", tmp_path)


def test_more_mixed_case_split_folders(tmp_path):
    drive = _drive(tmp_path)
    (drive / "training").rename(drive / "Training")
    with pytest.warns(DataWarning, match="Training"):
        assert len(load_drive("training", tmp_path)) == 3


def test_more_empty_volume_and_appledouble_in_a_case_folder(tmp_path):
    with pytest.raises(DataError, match="none.nii.gz.*no voxel"):
        load_volume(_nifti(tmp_path / "none.nii.gz", np.zeros((0, 5, 5), np.float32)))
    layout = CaseLayout(modalities={"FLAIR": "*FLAIR*.nii.gz"}, label="*lesion*.nii.gz", name="loose")
    paths = _patient(tmp_path / "cases" / "c1", 0)
    paths["FLAIR"].rename(tmp_path / "cases" / "c1" / "my_FLAIR.nii.gz")
    paths["label"].rename(tmp_path / "cases" / "c1" / "lesion.nii.gz")
    (tmp_path / "cases" / "c1" / "._my_FLAIR.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    (case,) = find_cases(tmp_path / "cases", layout)
    assert case.modalities["FLAIR"].name == "my_FLAIR.nii.gz"
