"""Where things live: the repository, the data root and the output folder.

* data root: ``$COURSE_DATA_DIR`` if set, else ``<repo>/data``. It holds the data
  sets the course may not ship (``DRIVE/``, ``open_ms_data/``...).
* output folder: ``$COURSE_OUTPUT_DIR`` if set, else ``<repo>/outputs``. Lessons
  write checkpoints and predictions there; later lessons read them back.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

DATA_ENV = "COURSE_DATA_DIR"
OUTPUT_ENV = "COURSE_OUTPUT_DIR"


def repo_root() -> Path:
    """The course checkout (the folder holding ``course_utils/``).

    Falls back to the current working directory when the package was installed
    without its repository (e.g. a plain ``pip install`` of the wheel).
    """
    here = Path(__file__).resolve().parents[1]
    if (here / "notebooks").is_dir() or (here / "data").is_dir():
        return here
    return Path.cwd()


def data_root(must_exist: bool = True) -> Path:
    """The folder that holds the course's data sets.

    Raises :class:`ConfigError` when ``$COURSE_DATA_DIR`` names a folder that does
    not exist, since a typo there would otherwise silently fall back to the
    synthetic data.
    """
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        root = Path(env).expanduser()
        if must_exist and not root.is_dir():
            what = "is a file, not a folder" if root.is_file() else "does not exist (or is not a folder)"
            relative = ""
            if not root.is_absolute():
                relative = (
                    f" The path is relative, so it was resolved against the current working directory "
                    f"{Path.cwd()} (i.e. {Path.cwd() / root}); a notebook kernel runs in notebooks/, not "
                    f"where you started the shell. Use an absolute path, e.g. {DATA_ENV}=$PWD/{env}."
                )
            raise ConfigError(
                f"{DATA_ENV}={env!r} {what}.{relative} Point it at the "
                "folder that holds DRIVE/, open_ms_data/ and BCCD/, or unset it to use "
                f"{repo_root() / 'data'}."
            )
        return root
    return repo_root() / "data"


def output_dir(lesson: str | None = None, create: bool = True) -> Path:
    """Folder for what lessons write (checkpoints, predictions): ``<outputs>/<lesson>``."""
    env = os.environ.get(OUTPUT_ENV, "").strip()
    base = Path(env).expanduser() if env else repo_root() / "outputs"
    out = base / lesson if lesson else base
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out
