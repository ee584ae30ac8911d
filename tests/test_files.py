"""course_utils.files.free_path: numbered copies next to an existing file, never replacing it."""

from course_utils.files import free_path, split_suffix


def test_free_path_keeps_a_free_name(tmp_path):
    for name in ("pred.nii.gz", "model.pt", "notes"):
        assert free_path(tmp_path / name) == tmp_path / name  # nothing there: the name itself
    assert free_path(str(tmp_path / "model.pt")) == tmp_path / "model.pt"


def test_free_path_numbers_nifti_copies_keeping_the_double_suffix(tmp_path):
    first = tmp_path / "pred.nii.gz"
    first.write_bytes(b"x")
    second = free_path(first)
    assert second.name == "pred-001.nii.gz" and not second.exists()
    second.write_bytes(b"y")
    assert free_path(first).name == "pred-002.nii.gz"
    assert first.read_bytes() == b"x" and second.read_bytes() == b"y"


def test_free_path_numbers_checkpoints_and_plain_names(tmp_path):
    ckpt = tmp_path / "unet-smoke.pt"
    ckpt.write_bytes(b"")
    assert free_path(ckpt) == tmp_path / "unet-smoke-001.pt"
    plain = tmp_path / "notes"
    plain.write_text("x")
    assert free_path(plain) == tmp_path / "notes-001"
    (tmp_path / "unet-smoke-001.pt").write_bytes(b"")
    (tmp_path / "unet-smoke-003.pt").write_bytes(b"")
    assert free_path(ckpt).name == "unet-smoke-002.pt"  # the first free number


def test_split_suffix():
    assert split_suffix("scan.nii.gz") == ("scan", ".nii.gz")
    assert split_suffix("a/b/run.tar.gz") == ("run", ".tar.gz")
    assert split_suffix("model.pt") == ("model", ".pt")
    assert split_suffix("README") == ("README", "")
    assert split_suffix(".nii.gz") == (".nii", ".gz")  # no stem: not a double suffix
