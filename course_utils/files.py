"""File names that never replace what a user saved."""

from __future__ import annotations

import os
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


def default_file_mode() -> int:
    """The mode a new file gets from ``open()`` under the current umask: ``0o666 & ~umask`` (e.g. ``0o644``).

    Atomic writes go through :func:`tempfile.mkstemp`, which always makes ``0o600``; chmod the temporary
    file to this before renaming it into place.
    """
    try:  # Linux: read it without changing it (os.umask both sets and returns, racing other threads)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def check_target(
    path: str | Path, *, overwrite: bool = False, how_to_replace: str = "pass overwrite=True", example: str = "model.pt"
) -> Path:
    """``path`` as a :class:`Path` if a file can be written there, else an error that says what to do.

    Refuses, before any work is done: a folder (:class:`IsADirectoryError`, naming ``example`` inside it),
    an existing file unless ``overwrite`` (:class:`FileExistsError`, naming a free name and ``how_to_replace``),
    a parent that is a file (:class:`NotADirectoryError`) and a folder the user cannot write to
    (:class:`PermissionError`). Missing parent folders are fine (the writer creates them).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file name; give a file inside it, e.g. {path / example}.")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists and would be replaced. Choose another file name "
            f"({free_path(path).name} is free), or {how_to_replace} to replace it."
        )
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {parent} is a file, not a folder. Choose another path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"cannot write {path}: the folder {parent} is read-only for you. Choose a folder you can write to."
        )
    return path
