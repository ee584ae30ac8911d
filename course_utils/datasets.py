"""Fetch the course's open data sets into the data root, and check that a data root holds them intact.

``python -m course_utils.datasets fetch open_ms_data BCCD`` (``make data``) downloads each openly licensed set
with pooch (a progress bar, the archive kept in ``<data root>/downloads/`` so that a second run does not fetch it
again, its SHA-256 checked where the host serves a fixed file), unpacks the part the course reads into the data
root's layout (``data/README.org``) and checks every file the course reads against its SHA-256 in
``data/manifests/<set>.sha256``. DRIVE needs a registration: download its archive yourself, then
``python -m course_utils.datasets drive path/to/DRIVE.zip`` checks and unpacks it. ``verify`` checks a data root.

Nothing already in the data root is replaced: a set that is there and intact is left alone, one that is there
but incomplete is an error that names what is wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from .errors import DataError
from .paths import DATA_ENV, data_root

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "manifests"


@dataclass(frozen=True)
class Source:
    """Where one data set comes from and where it goes.

    ``known_hash``: ``"sha256:<hex>"`` of the archive, or ``None`` where the host builds the archive on the fly
    (GitHub's branch archives), so that only the unpacked files can be checked (``manifest``).
    ``archive_root``: the folder inside the archive whose content becomes ``<data root>/<target>``;
    ``keep``: the sub-folders of it to unpack (all when empty).
    """

    name: str
    url: str
    known_hash: str | None
    archive_root: str
    target: str
    keep: tuple[str, ...] = ()
    licence: str = ""
    manifest: Path | None = None

    def manifest_path(self) -> Path:
        return self.manifest if self.manifest is not None else MANIFESTS / f"{self.target}.sha256"


SOURCES: dict[str, Source] = {
    "open_ms_data": Source(
        name="open_ms_data",
        url="https://github.com/muschellij2/open_ms_data/archive/refs/heads/master.zip",
        known_hash=None,
        archive_root="open_ms_data-master",
        target="open_ms_data",
        keep=("README.md", "cross_sectional"),
        licence="CC-BY 4.0: cite Lesjak et al., Neuroinformatics 16:51-63, 2018 (course_utils.mri.OPEN_MS_CITATION)",
    ),
    "BCCD": Source(
        name="BCCD",
        url="https://github.com/Shenggan/BCCD_Dataset/archive/refs/heads/master.zip",
        known_hash=None,
        archive_root="BCCD_Dataset-master/BCCD",
        target="BCCD",
        licence="MIT licence (BCCD/LICENSE, copyright 2017 Shenggan)",
    ),
}
DRIVE_URL = "https://drive.grand-challenge.org/"


def sha256(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: Path) -> dict[str, str]:
    """``relative path -> sha256`` from a ``sha256sum``-style file (``<hex>  <path>`` per line)."""
    if not path.is_file():
        raise DataError(f"{path}: no such manifest; the course ships one per data set in data/manifests/.")
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataError(f"{path}, line {number}: expected '<64 hex digits>  <path>', got {line!r}.")
        entries[name.strip()] = digest
    return entries


def verify(folder: Path, manifest: Path, hashes: bool = True) -> list[str]:
    """What is wrong with ``folder`` against ``manifest``: missing files, and (``hashes``) files whose SHA-256
    differs. Empty when every listed file is there and intact; extra files are allowed."""
    problems = []
    for name, digest in read_manifest(manifest).items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif hashes and sha256(path) != digest:
            problems.append(f"{path}: SHA-256 {sha256(path)}, expected {digest}")
    return problems


def _report(problems: list[str], limit: int = 5) -> str:
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


def _download(source: Source, cache: Path, progress: bool) -> Path:
    """The archive of ``source`` in ``cache``, downloaded by pooch when it is not there yet."""
    import pooch

    name = f"{source.name}.zip"
    try:
        path = pooch.retrieve(
            source.url,
            known_hash=source.known_hash,
            fname=name,
            path=cache,
            progressbar=progress,
            downloader=pooch.HTTPDownloader(progressbar=progress, timeout=60),
        )
    except ValueError as err:  # pooch: "SHA256 hash of downloaded file (...) does not match the known hash: ..."
        raise DataError(
            f"{source.url}: the download is corrupt or not the expected file ({err}). It was not kept and nothing "
            "was unpacked; try again, or download it by hand and check it."
        ) from err
    except Exception as err:  # requests' connection and HTTP errors: no network, a moved file
        raise DataError(
            f"Could not download {source.name} from {source.url}: {type(err).__name__}: {err}. Without internet, "
            f"download it elsewhere and unpack it under the data root as data/README.org shows."
        ) from err
    return Path(path)


def _unpack(archive: Path, inner: str, keep: Sequence[str], dest: Path) -> int:
    """Unpack the members of ``archive`` under ``inner`` (only ``keep`` sub-paths when given) into ``dest``,
    without the ``inner`` prefix; refuses members that would land outside ``dest``. Returns the file count."""
    prefix = PurePosixPath(inner)
    count = 0
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        raise DataError(f"{archive}: not a zip archive ({err}).") from err
    with zf:
        for info in zf.infolist():
            member = PurePosixPath(info.filename)
            if info.is_dir() or prefix not in member.parents:
                continue
            relative = member.relative_to(prefix)
            if keep and relative.parts[0] not in keep:
                continue
            if ".." in relative.parts or relative.is_absolute():
                raise DataError(f"{archive}: member {info.filename!r} would be written outside {dest}.")
            target = dest.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
    if count == 0:
        raise DataError(f"{archive}: holds nothing under {inner}/; is it the right archive?")
    return count


def _install(archive: Path, source: Source, root: Path) -> Path:
    """Unpack into a temporary folder beside the target, check it against the manifest, then move it in place."""
    target = root / source.target
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{source.target}-unpacking-") as tmp:
        staging = Path(tmp) / source.target
        _unpack(archive, source.archive_root, source.keep, staging)
        problems = verify(staging, source.manifest_path())
        if problems:
            raise DataError(
                f"{archive} unpacked, but it is not the data set the course was checked with: {_report(problems)}. "
                f"Nothing was written to {target}."
            )
        staging.rename(target)
    return target


def fetch(
    name: str,
    root: Path | None = None,
    *,
    source: Source | None = None,
    progress: bool = True,
) -> Path:
    """Download, unpack and check one open data set (``"open_ms_data"`` or ``"BCCD"``) into the data root.

    Returns ``<root>/<target>``. A target that is already there is checked and left alone (an error when it is
    incomplete); the archive is kept in ``<root>/downloads/`` (its SHA-256 checked by pooch when known).
    """
    if source is None:
        if name not in SOURCES:
            raise DataError(f"Unknown data set {name!r}: choose from {', '.join(SOURCES)} (DRIVE: use `drive`).")
        source = SOURCES[name]
    root = Path(root) if root is not None else data_root(must_exist=False)
    root.mkdir(parents=True, exist_ok=True)
    target = root / source.target
    if target.exists():
        problems = verify(target, source.manifest_path())
        if problems:
            raise DataError(
                f"{target} is already there but not complete: {_report(problems)}. It was left as it is: move it "
                "away and fetch again, or repair it."
            )
        print(f"{source.name}: already in place and intact in {target}")
        return target
    archive = _download(source, root / "downloads", progress)
    target = _install(archive, source, root)
    print(f"{source.name}: unpacked and checked in {target} ({source.licence})")
    return target


def install_drive(archive: Path, root: Path | None = None, manifest: Path | None = None) -> Path:
    """Check and unpack a DRIVE archive the user downloaded (after registering at ``DRIVE_URL``) into
    ``<root>/DRIVE``. The archive may hold ``training/`` and ``test/`` at its top or in one folder."""
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise DataError(f"{archive}: no such file. Download DRIVE's archive at {DRIVE_URL} (registration needed).")
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [PurePosixPath(n) for n in zf.namelist()]
    except zipfile.BadZipFile as err:
        raise DataError(f"{archive}: not a zip archive ({err}); DRIVE's download is DRIVE.zip.") from err
    inner = next(
        (
            "/".join(n.parts[:i]) or "."
            for n in names
            for i in range(len(n.parts) - 1)
            if n.parts[i : i + 2] == ("training", "images")
        ),
        None,
    )
    if inner is None:
        raise DataError(f"{archive}: holds no training/images/ folder; is it DRIVE's archive from {DRIVE_URL}?")
    source = Source("DRIVE", str(archive), None, inner, "DRIVE", keep=("training", "test"), manifest=manifest)
    root = Path(root) if root is not None else data_root(must_exist=False)
    root.mkdir(parents=True, exist_ok=True)
    target = root / "DRIVE"
    if target.exists():
        problems = verify(target, source.manifest_path())
        if problems:
            raise DataError(f"{target} is already there but not complete: {_report(problems)}. It was left as it is.")
        print(f"DRIVE: already in place and intact in {target}")
        return target
    target = _install(archive, source, root)
    print(f"DRIVE: unpacked and checked in {target} (research and education only; no redistribution)")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.datasets",
        description=f"Get the course's data sets into the data root (${DATA_ENV}, else data/).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="download, unpack and check open data sets")
    p_fetch.add_argument("sets", nargs="*", default=list(SOURCES), help=f"any of {', '.join(SOURCES)} (default: all)")
    p_fetch.add_argument("--url", help="download from this address instead (one set only; e.g. a mirror)")
    p_drive = sub.add_parser("drive", help="check and unpack a DRIVE archive you downloaded")
    p_drive.add_argument("archive", type=Path)
    p_verify = sub.add_parser("verify", help="check the data sets in the data root against their checksums")
    p_verify.add_argument("sets", nargs="*", default=["DRIVE", *SOURCES])
    for p in (p_fetch, p_drive, p_verify):
        p.add_argument("--root", type=Path, default=None, help=f"the data root (default ${DATA_ENV}, else data/)")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            if args.url and len(args.sets) != 1:
                raise DataError("--url needs exactly one data set name.")
            for name in args.sets:
                source = replace(SOURCES[name], url=args.url) if args.url and name in SOURCES else None
                fetch(name, args.root, source=source)
        elif args.command == "drive":
            install_drive(args.archive, args.root)
        else:
            root = args.root if args.root is not None else data_root()
            bad = 0
            for name in args.sets:
                problems = verify(root / name, MANIFESTS / f"{name}.sha256")
                bad += bool(problems)
                print(f"{name}: " + ("intact" if not problems else f"{len(problems)} problem(s): {_report(problems)}"))
            return 1 if bad else 0
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
