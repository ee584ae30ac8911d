"""File names that never replace what a user saved."""

from __future__ import annotations

from pathlib import Path

MULTI_SUFFIXES = (".nii.gz", ".tar.gz")


def split_suffix(path: str | Path) -> tuple[str, str]:
    """``("name", ".nii.gz")`` for ``name.nii.gz``, ``("name", ".pt")`` for ``name.pt``,
    ``("name", "")`` without a suffix."""
    name = Path(path).name
    for suffix in MULTI_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    suffix = Path(name).suffix
    return (name[: -len(suffix)], suffix) if suffix else (name, "")


def free_path(path: str | Path) -> Path:
    """``path`` if nothing is there, else the first free ``name-001.ext``, ``name-002.ext``, ... next to it.

    Double suffixes stay whole (``scan.nii.gz`` -> ``scan-001.nii.gz``).
    """
    path = Path(path)
    if not path.exists():
        return path
    stem, suffix = split_suffix(path)
    for i in range(1, 10_000):
        candidate = path.with_name(f"{stem}-{i:03d}{suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"too many numbered copies of {path}; delete some or choose another name.")
