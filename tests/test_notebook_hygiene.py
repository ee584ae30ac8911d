"""Rules every lesson notebook follows (checked on the committed files, without running them)."""

import json
import re

import pytest
from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _nb(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no lesson notebooks found"
    assert NOTEBOOKS[0].name == "01_pytorch_basics.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    for cell in _nb(path)["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{path.name} has stored outputs; clear them before committing"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_structure(path):
    cells = _nb(path)["cells"]
    first = _src(cells[0])
    assert first.startswith("# "), "the first cell is the title"
    assert "Learning goals" in first and "Time." in first
    assert f"notebooks/{path.name}" in first and "colab.research.google.com" in first, "Open-in-Colab badge"
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert re.search(r'^profile = "(smoke|cpu|gpu|auto)"', _src(params[0]), re.M)
    colab = [c for c in cells if '"google.colab" in sys.modules' in _src(c)]
    assert len(colab) == 1 and cells.index(colab[0]) < cells.index(params[0])
    markdown = "\n".join(_src(c) for c in cells if c["cell_type"] == "markdown")
    assert "## Recap" in markdown
    code = "\n".join(_src(c) for c in cells if c["cell_type"] == "code")
    assert len(re.findall(r"\bex\.check_\w+\(", code)) >= 2, "exercises with self-checks"
    assert not re.search(r"""\.cuda\(\)|device\s*=\s*["']cuda""", code), "never hard-code CUDA"
    assert "get_config(" in code and "record(" in code


def test_readme_has_a_colab_badge_per_notebook():
    readme = (REPO / "README.org").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, f"README.org lacks a Colab link for {path.name}"
