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


def load_benchmark(name: str):
    """The module ``benchmarks/<name>.py`` (the benchmarks are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def empty_data_root(tmp_path, monkeypatch) -> Path:
    """An empty data root in ``COURSE_DATA_DIR``: the course falls back to its synthetic data."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(empty))
    return empty


def write_notebook(path: Path, sources: list[str], tag_first: bool = True) -> Path:
    """A small notebook of code cells at ``path``; the first is tagged ``parameters`` unless ``tag_first`` is False."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    if tag_first:
        nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    return path
