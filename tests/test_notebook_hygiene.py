"""Rules every lesson notebook follows (checked on the committed files, without running them)."""

import json
import re

import pytest
from conftest import REPO

from course_utils.config import lesson_number

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))


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
def test_cell_ids_are_unique(path):
    ids = [cell.get("id") for cell in _nb(path)["cells"]]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    assert not repeated, f"{path.name}: cell ids {repeated} occur twice (a copied cell); give the copy a new id"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_recorded_number_is_not_echoed_as_cell_output(path):
    """``record`` returns its value: as a cell's last line it would print it a second time (``Out: 7.55``)."""
    echoed = []
    for i, cell in enumerate(_nb(path)["cells"]):
        lines = [line for line in _src(cell).splitlines() if line.strip()]
        if cell["cell_type"] == "code" and lines and lines[-1].startswith("record(") and not lines[-1].endswith(";"):
            echoed.append(i)
    assert not echoed, f"{path.name}: cells {echoed} end with record(...) without ';'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_structure(path):
    cells = _nb(path)["cells"]
    first = _src(cells[0])
    assert first.startswith("# "), "the first cell is the title"
    assert "Learning goals" in first and "Learner time." in first and "Compute time." in first
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercise_numbers_in_the_checks_match_the_notebook(path):
    """A check's docstring says "Exercise N" exactly when the notebook calls it under "### Exercise N"."""
    import importlib

    module = importlib.import_module(f"course_utils.lessons.lesson{lesson_number(path.stem)}.exercises")
    number = None
    for cell in _nb(path)["cells"]:
        text = _src(cell)
        heading = re.search(r"### Exercise (\d+)", text)
        if heading:
            number = int(heading.group(1))
        for name in re.findall(r"\bex\.(check_\w+)\(", text):
            doc = getattr(module, name).__doc__ or ""
            said = re.match(r"\s*Exercise (\d+):", doc)
            if said:
                assert number is not None and int(said.group(1)) == number, (
                    f"{path.name}: ex.{name} is called under Exercise {number}, its docstring says {said.group(0)!r}"
                )


# ----- every number live: a result-looking number in prose needs a source ----------------------------------------
RESULT_NUMBER = re.compile(r"(?<![\w.\-])(0\.\d{2,}|1\.0{2,})(?!\w|\.\d)")  # a metric-like value: 0.826, 0.05, 1.000
LITERATURE = re.compile(r"et al\.|\(\w[^()]*\b(19|20)\d\d\)|arXiv|seminar")
BENCHMARK = re.compile(r"benchmarks/RESULTS\.md")
DATE = re.compile(r"20\d\d-\d\d-\d\d")


def unsourced_numbers(markdown: str) -> list[str]:
    """Result-looking numbers of a markdown cell that has no source: a literature citation (author and year, et al.,
    arXiv, the seminar the course answers) or a benchmark quote (``benchmarks/RESULTS.md`` and a date). Numbers in
    code, formulas and the solutions (``<details>``) do not count; this run's numbers are rendered by code cells."""
    prose = re.sub(r"<details>.*?</details>", "", markdown, flags=re.S)
    prose = re.sub(r"```.*?```|`[^`]*`|\$[^$]*\$", "", prose, flags=re.S)
    numbers = RESULT_NUMBER.findall(prose)
    sourced = LITERATURE.search(markdown) or (BENCHMARK.search(markdown) and DATE.search(markdown))
    return [] if sourced else numbers


def test_the_live_number_rule_catches_a_pasted_result():
    assert unsourced_numbers("The U-Net measured AUC 0.980 and F1 0.826 on the test set.") == ["0.980", "0.826"]
    assert unsourced_numbers("In the benchmark (`benchmarks/RESULTS.md`) F1 was 0.82.") == ["0.82"], "needs a date"
    assert not unsourced_numbers("In the benchmark of 2026-11-23 (`benchmarks/RESULTS.md`) F1 was 0.82.")
    assert not unsourced_numbers("LadderNet (Zhuang 2018) reports AUC 0.9793.")
    assert not unsourced_numbers("Use `lr=0.003`, a $0.5$ threshold, 50 % overlap, 3 mm, 12 epochs.")
    assert not unsourced_numbers("<details>n = 0.56</details>")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_numbers_in_prose_are_live_or_sourced(path):
    bad = {
        i: found
        for i, cell in enumerate(_nb(path)["cells"])
        if cell["cell_type"] == "markdown" and (found := unsourced_numbers(_src(cell)))
    }
    assert not bad, (
        f"{path.name}: markdown cells {bad} quote result-looking numbers without a source; render this run's numbers "
        "from code, or cite the literature (author, year) or benchmarks/RESULTS.md with the run's date"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_lesson_states_its_learner_time_as_estimated_from_its_length(path):
    from course_utils.notebook_length import learner_minutes

    intro = _src(_nb(path)["cells"][0])
    stated = re.search(r"\*\*Learner time\.\*\* about (\d+) minutes", intro)
    assert stated, f"{path.name}: the first cell must state '**Learner time.** about N minutes'"
    assert int(stated.group(1)) == learner_minutes(path), (
        f"{path.name} states {stated.group(1)} minutes of learner time; its length gives {learner_minutes(path)}"
    )
    assert "**Compute time.**" in intro, f"{path.name}: state the compute time per profile too"


def test_learner_minutes_counts_prose_code_and_exercises(tmp_path):
    import json

    from course_utils.notebook_length import learner_minutes

    def notebook(words: int, code_lines: int, exercises: int) -> str:
        md = " ".join(["word"] * words) + "".join(f"\n### Exercise {i + 1}\n" for i in range(exercises))
        cells = [{"cell_type": "markdown", "source": md}, {"cell_type": "code", "source": "x = 1\n" * code_lines}]
        path = tmp_path / f"nb{words}_{code_lines}_{exercises}.ipynb"
        path.write_text(json.dumps({"cells": cells}))
        return path

    assert learner_minutes(notebook(1000, 100, 0)) == 20
    assert learner_minutes(notebook(1000, 100, 2)) == 35  # 10 + 10 + 16 = 36 -> 35
    assert learner_minutes(notebook(0, 0, 0)) == 0
