"""Student and instructor editions of the lessons, made from one source.

The committed notebooks are the source: each exercise's solution sits between nbgrader's markers
(``### BEGIN SOLUTION`` / ``### END SOLUTION``, on lines of their own, in code or markdown cells). From them:

* the **instructor** edition drops the marker lines and keeps the solutions;
* the **student** edition replaces every marked region with a stub: inside a function or class body, ``...``
  (so the function returns ``None`` and its check says "not attempted"); at the top level of a cell, one
  ``name = ...`` per name the solution assigns; in markdown, *Your answer here.* A hint stays where it is, in a
  comment line just before ``### BEGIN SOLUTION`` (kept in both editions).

``python -m course_utils.editions student|instructor [--out DIR] [--force]`` (``make student`` /
``make instructor``) writes ``build/student/`` or ``build/instructor/``. It refuses to overwrite a notebook that
differs from the edition it would write (a learner's work in it, for example) unless ``--force``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CODE_STUB = "...  # YOUR CODE HERE"
MARKDOWN_STUB = "*Your answer here.*"
EDITIONS = ("student", "instructor")
REPO = Path(__file__).resolve().parents[1]


class EditionError(ValueError):
    """A notebook's solution markers are malformed (names the notebook, cell and line)."""


def _regions(lines: Sequence[str], where: str) -> list[tuple[int, int]]:
    """``(begin, end)`` line indices of each marked region; raises :class:`EditionError` on a stray marker."""
    regions, begin = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == BEGIN:
            if begin is not None:
                raise EditionError(f"{where}, line {i + 1}: {BEGIN} inside another solution (line {begin + 1}).")
            begin = i
        elif text == END:
            if begin is None:
                raise EditionError(f"{where}, line {i + 1}: {END} without a {BEGIN} before it.")
            regions.append((begin, i))
            begin = None
        elif BEGIN in text or END in text:
            raise EditionError(f"{where}, line {i + 1}: a solution marker must stand alone on its line: {text!r}.")
    if begin is not None:
        raise EditionError(f"{where}, line {begin + 1}: {BEGIN} is never closed by {END}.")
    return regions


def _assigned_names(code: str, where: str) -> list[str]:
    """The names a top-level solution binds, in order (assignments, ``def``, ``class``, ``import``)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        raise EditionError(f"{where}: the solution does not parse ({err.msg}, line {err.lineno}).") from err
    names: list[str] = []

    def add(target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                add(t)

    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                add(t)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            add(node.target)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
    return list(dict.fromkeys(names))


def edition_source(source: str, edition: str, kind: str = "code", where: str = "cell") -> str:
    """The text of one cell in ``edition`` (``"student"`` or ``"instructor"``); ``kind``: the cell's type."""
    if edition not in EDITIONS:
        raise EditionError(f"edition must be one of {EDITIONS}, got {edition!r}.")
    lines = source.split("\n")
    regions = _regions(lines, where)
    if not regions:
        return source
    out: list[str] = []
    last = 0
    for begin, end in regions:
        out.extend(lines[last:begin])
        body = lines[begin + 1 : end]
        indent = re.match(r"\s*", lines[begin]).group(0)
        if edition == "instructor":
            out.extend(body)
        elif kind == "markdown":
            out.append(indent + MARKDOWN_STUB)
        elif indent:
            out.append(indent + CODE_STUB)
        else:
            names = _assigned_names("\n".join(body), where)
            out.extend(f"{name} = {CODE_STUB}" for name in names) if names else out.append(CODE_STUB)
        last = end + 1
    out.extend(lines[last:])
    return "\n".join(out)


def solution_count(notebook: dict) -> int:
    """How many marked solution regions a notebook (as JSON) holds."""
    name = notebook.get("metadata", {}).get("course", {}).get("name", "notebook")
    return sum(
        len(_regions("".join(c["source"]).split("\n"), f"{name}, cell {i}")) for i, c in enumerate(notebook["cells"])
    )


def make_edition_notebook(notebook: dict, edition: str, name: str = "notebook") -> dict:
    """A copy of ``notebook`` (nbformat JSON) in ``edition``, outputs cleared."""
    nb = copy.deepcopy(notebook)
    for i, cell in enumerate(nb["cells"]):
        text = edition_source("".join(cell["source"]), edition, cell["cell_type"], f"{name}, cell {i}")
        lines = text.split("\n")
        cell["source"] = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.setdefault("metadata", {}).setdefault("course", {})["edition"] = edition
    return nb


def _dump(notebook: dict) -> str:
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def write_edition(
    edition: str,
    out_dir: Path,
    notebooks: Sequence[Path] | None = None,
    force: bool = False,
) -> list[Path]:
    """Write ``edition`` of ``notebooks`` (default: every lesson in ``notebooks/``) into ``out_dir``.

    Checks every notebook first; refuses (``FileExistsError``, naming the files) to replace a file that differs
    from what it would write, unless ``force``.
    """
    if edition not in EDITIONS:
        raise EditionError(f"edition must be one of {EDITIONS}, got {edition!r}.")
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb")) if notebooks is None else list(notebooks)
    if not notebooks:
        raise EditionError("no notebooks to write (expected notebooks/NN_name.ipynb).")
    texts = {}
    for path in notebooks:
        texts[out_dir / path.name] = _dump(make_edition_notebook(json.loads(path.read_text()), edition, path.name))
    changed = [p for p, text in texts.items() if p.exists() and p.read_text() != text]
    if changed and not force:
        listed = ", ".join(str(p) for p in changed)
        raise FileExistsError(
            f"{listed} differ(s) from the {edition} edition made now (your own work in them, or an older edition). "
            f"Move them away first, or run again with --force (make {edition} FORCE=1) to replace them."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        path.write_text(text)
    return list(texts)


MARKS = {"\u2705": "correct", "\u274c": "wrong", "\u23f3": "pending"}


def executed_checks(notebook: dict) -> list[tuple[int, str, str]]:
    """The self-check results shown in an executed notebook: ``(cell index, state, message)`` with state
    ``"correct"``, ``"wrong"`` or ``"pending"`` (read from :class:`~course_utils.selfcheck.CheckResult`'s text,
    which starts with its mark)."""
    found = []
    for i, cell in enumerate(notebook["cells"]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts = "".join(out.get("text", "")).split("\n")
            else:
                texts = ["".join(out.get("data", {}).get("text/plain", ""))]
            for text in texts:
                text = text.strip()
                if text[:1] in MARKS:
                    found.append((i, MARKS[text[:1]], text[1:].strip()))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.editions",
        description="Write the student edition (solutions replaced by stubs) or the instructor edition "
        "(solutions in, markers removed) of every lesson.",
    )
    parser.add_argument("edition", choices=EDITIONS)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/<edition>/)")
    parser.add_argument("--force", action="store_true", help="replace notebooks that differ from the new edition")
    args = parser.parse_args(argv)
    out = args.out or REPO / "build" / args.edition
    try:
        written = write_edition(args.edition, out, force=args.force)
    except (EditionError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.edition} edition: {len(written)} notebooks in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
