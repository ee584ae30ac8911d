"""``course_utils.datasets`` (``make data``), tested without internet: a local HTTP server on the loopback
address serves small archives that each test makes, laid out like the real downloads."""

from __future__ import annotations

import functools
import hashlib
import http.server
import subprocess
import sys
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO, real_data_root

from course_utils import datasets
from course_utils.errors import DataError

FILES = {
    "Annotations/BloodImage_00000.xml": b"<annotation><object><name>RBC</name></object></annotation>",
    "JPEGImages/BloodImage_00000.jpg": bytes(range(256)) * 40,
    "ImageSets/Main/test.txt": b"BloodImage_00000\n",
}


@pytest.fixture
def server(tmp_path):
    """``(folder, base_url)``: files put in ``folder`` are served at ``base_url`` (127.0.0.1, a free port)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def make_zip(path: Path, files: dict[str, bytes], inner: str) -> str:
    """A zip with ``files`` under ``inner/`` plus a stray file beside it; returns its ``"sha256:<hex>"``."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"{inner}/{name}" if inner else name, data)
        zf.writestr("README-of-the-repository.md", b"not part of the data set")
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def make_manifest(path: Path, files: dict[str, bytes]) -> Path:
    path.write_text("".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(files.items())))
    return path


def bccd_like(tmp_path, url: str, known_hash: str | None) -> datasets.Source:
    return replace(
        datasets.SOURCES["BCCD"], url=url, known_hash=known_hash, manifest=make_manifest(tmp_path / "m.sha256", FILES)
    )


def test_fetch_downloads_unpacks_checks_and_then_leaves_it_alone(server, tmp_path, capsys):
    folder, base = server
    digest = make_zip(folder / "bccd.zip", FILES, "BCCD_Dataset-master/BCCD")
    source = bccd_like(tmp_path, f"{base}/bccd.zip", digest)
    root = tmp_path / "root"
    target = datasets.fetch("BCCD", root, source=source, progress=False)
    assert target == root / "BCCD"
    assert {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()} == set(FILES)
    assert (target / "JPEGImages/BloodImage_00000.jpg").read_bytes() == FILES["JPEGImages/BloodImage_00000.jpg"]
    assert not (root / "README-of-the-repository.md").exists()  # only the data set's folder is unpacked
    assert (root / "downloads" / "BCCD.zip").is_file()  # the cache
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no staging folder left
    assert "unpacked and checked" in capsys.readouterr().out
    (folder / "bccd.zip").unlink()  # a second run neither downloads nor unpacks
    assert datasets.fetch("BCCD", root, source=source, progress=False) == target
    assert "already in place and intact" in capsys.readouterr().out


def test_a_corrupted_archive_is_rejected_with_both_hashes_and_nothing_is_unpacked(server, tmp_path):
    folder, base = server
    digest = make_zip(folder / "bccd.zip", FILES, "BCCD_Dataset-master/BCCD")
    data = bytearray((folder / "bccd.zip").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "bccd.zip").write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    root = tmp_path / "root"
    with pytest.raises(DataError) as err:
        datasets.fetch("BCCD", root, source=bccd_like(tmp_path, f"{base}/bccd.zip", digest), progress=False)
    message = str(err.value)
    assert digest.split(":")[1] in message and actual in message and f"{base}/bccd.zip" in message
    assert not (root / "BCCD").exists() and not (root / "downloads" / "BCCD.zip").exists()


def test_without_a_known_hash_the_unpacked_files_are_checked_against_the_manifest(server, tmp_path):
    folder, base = server
    changed = {**FILES, "ImageSets/Main/test.txt": b"BloodImage_00001\n"}
    make_zip(folder / "bccd.zip", changed, "BCCD_Dataset-master/BCCD")
    root = tmp_path / "root"
    with pytest.raises(DataError, match=r"not the data set the course was checked with: .*test.txt: SHA-256"):
        datasets.fetch("BCCD", root, source=bccd_like(tmp_path, f"{base}/bccd.zip", None), progress=False)
    assert not (root / "BCCD").exists()


def test_an_incomplete_data_set_already_there_is_named_and_left_alone(server, tmp_path):
    _, base = server
    root = tmp_path / "root"
    (root / "BCCD" / "Annotations").mkdir(parents=True)
    mine = root / "BCCD" / "Annotations" / "BloodImage_00000.xml"
    mine.write_bytes(b"my own edit")
    with pytest.raises(DataError, match=r"already there but not complete: .*BloodImage_00000.xml: SHA-256.*missing"):
        datasets.fetch("BCCD", root, source=bccd_like(tmp_path, f"{base}/none.zip", None), progress=False)
    assert mine.read_bytes() == b"my own edit"


def test_no_server_gives_a_clear_error(tmp_path):
    source = bccd_like(tmp_path, "http://127.0.0.1:9/bccd.zip", None)  # port 9: nothing listens
    with pytest.raises(DataError, match=r"Could not download BCCD from http://127.0.0.1:9/bccd.zip.*Without internet"):
        datasets.fetch("BCCD", tmp_path / "root", source=source, progress=False)
    with pytest.raises(DataError, match="Unknown data set 'bccd'"):
        datasets.fetch("bccd", tmp_path / "root")


DRIVE_FILES = {
    "training/images/21_training.tif": b"tif",
    "training/1st_manual/21_manual1.gif": b"gif",
    "test/images/01_test.tif": b"tif2",
}


@pytest.mark.parametrize("inner", ["DRIVE", ""])
def test_a_drive_archive_is_checked_and_unpacked_into_the_layout(tmp_path, inner):
    archive = tmp_path / "DRIVE.zip"
    make_zip(archive, DRIVE_FILES, inner)
    manifest = make_manifest(tmp_path / "drive.sha256", DRIVE_FILES)
    target = datasets.install_drive(archive, tmp_path / "root", manifest=manifest)
    assert {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()} == set(DRIVE_FILES)


def test_a_wrong_drive_archive_is_refused(tmp_path):
    with pytest.raises(DataError, match="no such file.*registration"):
        datasets.install_drive(tmp_path / "missing.zip", tmp_path / "root")
    (tmp_path / "notzip.zip").write_bytes(b"hello")
    with pytest.raises(DataError, match="not a zip archive"):
        datasets.install_drive(tmp_path / "notzip.zip", tmp_path / "root")
    make_zip(tmp_path / "other.zip", {"images/a.tif": b"x"}, "")
    with pytest.raises(DataError, match="holds no training/images/"):
        datasets.install_drive(tmp_path / "other.zip", tmp_path / "root")
    make_zip(tmp_path / "short.zip", {"training/images/21_training.tif": b"tif"}, "DRIVE")
    manifest = make_manifest(tmp_path / "drive.sha256", DRIVE_FILES)
    with pytest.raises(DataError, match=r"01_test.tif: missing"):
        datasets.install_drive(tmp_path / "short.zip", tmp_path / "root", manifest=manifest)


def test_an_archive_member_cannot_escape_the_target(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("BCCD_Dataset-master/BCCD/../../../escaped.txt", b"x")
    with pytest.raises(DataError, match="outside"):
        datasets._unpack(tmp_path / "evil.zip", "BCCD_Dataset-master/BCCD", (), tmp_path / "out")
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_the_command_fetches_from_a_mirror_and_verifies(server, tmp_path, monkeypatch):
    folder, base = server
    real = datasets.read_manifest(datasets.MANIFESTS / "BCCD.sha256")
    assert len(real) == 733 and "LICENSE" in real  # the committed manifest lists the whole set
    files = dict(FILES)
    make_zip(folder / "bccd.zip", files, "BCCD_Dataset-master/BCCD")
    root = tmp_path / "root"
    cmd = [sys.executable, "-m", "course_utils.datasets"]
    proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and "fetch" in proc.stdout and "drive" in proc.stdout
    # the real manifest does not match the small archive: refused, nothing written, exit code 2
    proc = subprocess.run(
        [*cmd, "fetch", "BCCD", "--url", f"{base}/bccd.zip", "--root", str(root)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "not the data set the course was checked with" in proc.stderr
    assert not (root / "BCCD").exists()
    proc = subprocess.run([*cmd, "verify", "BCCD", "--root", str(root)], capture_output=True, text=True)
    assert proc.returncode == 1 and "BCCD: 733 problem(s)" in proc.stdout


def test_the_real_data_root_matches_the_manifests():
    root = real_data_root()
    if root is None:
        pytest.skip("no COURSE_DATA_DIR with the real data (CI sets it)")
    for name in ("DRIVE", "open_ms_data", "BCCD"):
        assert datasets.verify(root / name, datasets.MANIFESTS / f"{name}.sha256") == [], name
