"""Shared fixtures. Tests never write into the repository: outputs go to a temp folder."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path_factory.mktemp("outputs")))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def repo() -> Path:
    return REPO


def real_data_root() -> Path | None:
    """The data root given by COURSE_DATA_DIR (CI points it at ../shared/data), if it exists."""
    env = os.environ.get("COURSE_DATA_DIR")
    return Path(env) if env and Path(env).is_dir() else None
