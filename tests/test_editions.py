"""Student and instructor editions from one source (``course_utils.editions``, make student / instructor)."""

import ast
import json
import re
import subprocess
import sys

import pytest
from conftest import REPO

from course_utils.editions import (
    CODE_STUB,
    MARKDOWN_STUB,
    EditionError,
    edition_source,
    executed_checks,
    make_edition_notebook,
    solution_count,
    write_edition,
)
from course_utils.selfcheck import correct, pending, wrong, yours_or_course

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))

FUNCTION = '''def soft_dice(p, t):
    """Docstring stays."""
    # Hint: 1 - 2|P.T| / (|P| + |T|)
    ### BEGIN SOLUTION
    inter = (p * t).sum()
    return 1 - 2 * inter / (p.sum() + t.sum())
    ### END SOLUTION


check(soft_dice)'''

TOP_LEVEL = """# Hint: align the shapes from the right.
### BEGIN SOLUTION
answer = (3, 4, 5)
a, (b, c) = 1, (2, 3)
print(answer)
### END SOLUTION
check(answer)"""


def test_student_edition_stubs_a_function_body_and_keeps_signature_docstring_and_hint():
    student = edition_source(FUNCTION, "student")
    assert "inter" not in student and "return" not in student and "BEGIN" not in student
    assert f"    {CODE_STUB}" in student.split("\n")
    assert '"""Docstring stays."""' in student and "# Hint: 1 - 2|P.T|" in student and "check(soft_dice)" in student
    namespace = {}
    exec(compile(student.replace("check(soft_dice)", ""), "student", "exec"), namespace)
    assert namespace["soft_dice"](1, 2) is None  # the stub returns nothing: its check says "not attempted"


def test_student_edition_assigns_ellipsis_to_every_name_a_top_level_solution_binds():
    student = edition_source(TOP_LEVEL, "student")
    assert student.split("\n") == [
        "# Hint: align the shapes from the right.",
        f"answer = {CODE_STUB}",
        f"a = {CODE_STUB}",
        f"b = {CODE_STUB}",
        f"c = {CODE_STUB}",
        "check(answer)",
    ]
    namespace = {"check": lambda x: x}
    exec(student, namespace)
    assert namespace["answer"] is Ellipsis


def test_instructor_edition_drops_only_the_markers():
    instructor = edition_source(TOP_LEVEL, "instructor")
    assert "BEGIN" not in instructor and "END SOLUTION" not in instructor
    assert instructor == TOP_LEVEL.replace("### BEGIN SOLUTION\n", "").replace("### END SOLUTION\n", "")
    assert edition_source("x = 1", "student") == "x = 1"  # a cell without markers is the same in both


def test_markdown_solutions_become_an_answer_line():
    text = "**Why?**\n### BEGIN SOLUTION\nBecause the weights are shared.\n### END SOLUTION\nNext."
    assert edition_source(text, "student", "markdown") == f"**Why?**\n{MARKDOWN_STUB}\nNext."


@pytest.mark.parametrize(
    "text,message",
    [
        ("### BEGIN SOLUTION\nx = 1", r"cell X, line 1: ### BEGIN SOLUTION is never closed"),
        ("x = 1\n### END SOLUTION", r"line 2: ### END SOLUTION without a ### BEGIN SOLUTION"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", r"line 2: .* inside another solution"),
        ("x = 1  ### BEGIN SOLUTION", r"must stand alone on its line"),
        ("### BEGIN SOLUTION\nx = (\n### END SOLUTION", r"cell X: the solution does not parse"),
    ],
)
def test_malformed_markers_are_named_with_cell_and_line(text, message):
    with pytest.raises(EditionError, match=message):
        edition_source(text, "student", where="cell X")


def test_write_edition_never_overwrites_a_changed_notebook(tmp_path):
    source = tmp_path / "01_demo.ipynb"
    nb = {
        "cells": [{"cell_type": "code", "metadata": {}, "source": [TOP_LEVEL], "outputs": [], "execution_count": 3}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    source.write_text(json.dumps(nb))
    (written,) = write_edition("student", tmp_path / "student", [source])
    assert json.loads(written.read_text())["metadata"]["course"]["edition"] == "student"
    assert write_edition("student", tmp_path / "student", [source]) == [written]  # same content: fine
    written.write_text(written.read_text().replace("check(answer)", "check(answer)  # my work"))
    with pytest.raises(FileExistsError, match=r"01_demo.ipynb differ.*--force"):
        write_edition("student", tmp_path / "student", [source])
    assert "my work" in written.read_text()
    write_edition("student", tmp_path / "student", [source], force=True)
    assert "my work" not in written.read_text()


def test_the_command_writes_both_editions_and_reports_errors(tmp_path):
    for edition in ("student", "instructor"):
        out = tmp_path / edition
        proc = subprocess.run(
            [sys.executable, "-m", "course_utils.editions", edition, "--out", str(out)],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in out.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    (tmp_path / "student" / NOTEBOOKS[0].name).write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "course_utils.editions", "student", "--out", str(tmp_path / "student")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2 and "error:" in proc.stderr and NOTEBOOKS[0].name in proc.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_lesson_marks_its_solutions_and_its_student_edition_holds_none(path):
    nb = json.loads(path.read_text())
    assert solution_count(nb) >= 1, f"{path.name}: no ### BEGIN SOLUTION / ### END SOLUTION region"
    student = make_edition_notebook(nb, "student", path.name)
    solutions = []
    for cell, s_cell in zip(nb["cells"], student["cells"]):
        text = "".join(cell["source"])
        for block in re.findall(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", text, re.S):
            solutions += [line.strip() for line in block.split("\n") if len(line.strip()) > 25]
        if cell["cell_type"] == "code":
            code = "\n".join(line for line in "".join(s_cell["source"]).split("\n") if line.lstrip()[:1] not in "!%")
            ast.parse(code)  # the student's cells are valid Python
    text = "\n".join("".join(c["source"]) for c in student["cells"])
    leaked = [line for line in solutions if line in text]
    assert not leaked, f"{path.name}: solution lines also stand outside the solution regions: {leaked[:3]}"
    assert "<details>" not in text, f"{path.name}: solutions belong in marked cells, not in <details> blocks"


def test_executed_checks_reads_the_marks_of_check_results():
    nb = {
        "cells": [
            {"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {"text/plain": str(correct())}}]},
            {"cell_type": "code", "outputs": [{"output_type": "stream", "text": f"x\n{wrong('no')}\n{pending()}\n"}]},
            {"cell_type": "markdown", "source": []},
        ]
    }
    states = [(i, s) for i, s, _ in executed_checks(nb)]
    assert states == [(0, "correct"), (1, "wrong"), (1, "pending")]


def test_yours_or_course_falls_back_with_a_message(capsys):
    def mine(x):
        return x

    def course(x):
        return x

    assert yours_or_course(correct(), mine, course, "f") is mine
    assert yours_or_course(pending("`f`"), mine, course, "f") is course
    assert "not attempted yet" in capsys.readouterr().out
    assert yours_or_course(wrong("bad"), mine, course, "f") is course
    out = capsys.readouterr().out
    assert "does not pass" in out and "test_yours_or_course_falls_back_with_a_message.<locals>.course" in out
