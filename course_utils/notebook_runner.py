"""Execute the lesson notebooks with papermill: ``make course`` calls this.

Each notebook is executed with its ``profile`` parameter set, written to
``build/<profile>/<name>.ipynb`` together with an HTML export, and summarised in
a table (notebook, status, seconds, the headline numbers the notebook recorded
with :func:`course_utils.report.record`), saved as ``summary.md`` and ``summary.json``.

    python -m course_utils.notebook_runner --profile smoke
    python -m course_utils.notebook_runner --profile cpu --only 01 02
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .config import PROFILE_CHOICES, resolve_profile
from .errors import ConfigError
from .paths import DATA_ENV, repo_root
from .report import collect_records


@dataclass
class NotebookRun:
    """What happened to one notebook."""

    notebook: str
    status: str  # "ok" or "failed"
    seconds: float
    output: str
    html: str | None
    records: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def list_notebooks(notebook_dir: Path | None = None, only: Sequence[str] | None = None) -> list[Path]:
    """Lesson notebooks in order (``NN_name.ipynb``), optionally those whose name starts with one of ``only``."""
    notebook_dir = notebook_dir or repo_root() / "notebooks"
    found = sorted(p for p in notebook_dir.glob("[0-9][0-9]*_*.ipynb"))
    if only:
        unmatched = [o for o in only if not any(p.name.startswith(o) or p.stem == o for p in found)]
        if unmatched:  # every --only prefix must name a notebook: a typo must not silently skip a lesson
            names = ", ".join(p.stem for p in found) or "none"
            raise SystemExit(f"no notebook in {notebook_dir} matches {unmatched}; the notebooks are: {names}.")
        found = [p for p in found if any(p.name.startswith(o) or p.stem == o for o in only)]
    return found


def notebook_parameters(path: Path) -> list[str] | None:
    """The names assigned in ``path``'s cell tagged ``parameters`` (the first one, as papermill uses),
    or ``None`` when it has no such cell. Reads the notebook; executes nothing."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return None
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:  # e.g. IPython magics: let papermill read it
        import papermill as pm

        return list(pm.inspect_notebook(str(path)))
    names: list[str] = []
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name) and name.id not in names:
                    names.append(name.id)
    return names


def check_parameters(notebooks: Sequence[Path], parameters: dict[str, Any] | None) -> None:
    """Refuse (:class:`ConfigError`) a parameter that any of ``notebooks`` does not have, before anything runs.

    papermill would only warn and run the notebook with its own value, so a typo (``epoch`` for ``epochs``)
    would cost a whole run whose numbers look fine. The message names each notebook that lacks it, the
    closest name it does have and all of them, and the ``--only`` that selects the notebooks that have it.
    """
    if not parameters:
        return
    if "profile" in parameters:
        raise ConfigError(
            f"-p profile={parameters['profile']!r}: choose the profile with --profile (it also names the "
            "build folder the results go to), not with -p."
        )
    known = {nb: notebook_parameters(nb) for nb in notebooks}
    problems = []
    for name in parameters:
        lacking = [nb for nb, names in known.items() if names is None or name not in names]
        for nb in lacking:
            names = known[nb]
            if names is None:
                problems.append(f"{nb.stem} has no parameters cell (a cell tagged 'parameters'), so no {name!r}.")
                continue
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{nb.stem} has no parameter {name!r}{hint}; its parameters: {', '.join(names)}.")
        having = [nb for nb in notebooks if nb not in lacking]
        if lacking and having:
            prefixes = " ".join(nb.name.split("_", 1)[0] for nb in having)
            problems.append(
                f"{name!r} is a parameter of {', '.join(nb.stem for nb in having)} only: run "
                f"those alone with --only {prefixes}."
            )
    if problems:
        raise ConfigError("unknown notebook parameter; nothing was executed.\n  " + "\n  ".join(problems))


def export_html(ipynb: Path) -> Path:
    """Write ``ipynb`` as a standalone HTML page next to it."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(ipynb, as_version=4))
    out = ipynb.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out


def run_notebook(
    path: Path,
    profile: str,
    out_dir: Path,
    parameters: dict[str, Any] | None = None,
    kernel_name: str = "python3",
    log_output: bool = False,
) -> NotebookRun:
    """Execute one notebook with papermill and export it to HTML (also when it fails)."""
    import nbformat
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / path.name
    params = {"profile": profile, **(parameters or {})}
    os.environ.setdefault("COURSE_PLAIN_PROGRESS", "1")  # text progress bars in executed HTML
    os.environ.setdefault("COURSE_STATIC_PLOTS", "1")  # viewers render static figures, not widgets
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    absolute_data_dir()
    start = time.perf_counter()
    status, error = "ok", None
    try:
        pm.execute_notebook(
            str(path),
            str(output),
            parameters=params,
            kernel_name=kernel_name,
            cwd=str(path.parent),
            progress_bar=False,
            log_output=log_output,
        )
    except Exception as err:  # papermill wraps the cell's exception as ename/evalue
        ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
        status, error = "failed", f"{ename}: {str(evalue).strip()[:300]}"
    seconds = time.perf_counter() - start
    records: dict[str, Any] = {}
    html = None
    if output.exists():
        records = collect_records(nbformat.read(output, as_version=4))
        try:
            html = str(export_html(output))
        except Exception as err:  # an HTML export problem must not hide the execution result
            error = (error or "") + f" (HTML export failed: {err})"
    return NotebookRun(path.stem, status, seconds, str(output), html, records, error)


def absolute_data_dir() -> None:
    """Make a relative ``$COURSE_DATA_DIR`` absolute (against the current directory) before kernels start:
    they run in ``notebooks/``, where the relative path would name another folder."""
    env = os.environ.get(DATA_ENV, "").strip()
    if env and not Path(env).expanduser().is_absolute():
        os.environ[DATA_ENV] = str(Path(env).expanduser().absolute())


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summary_table(runs: Sequence[NotebookRun]) -> str:
    """A Markdown table of the runs."""
    lines = ["| notebook | status | seconds | headline numbers |", "|---|---|---:|---|"]
    for r in runs:
        numbers = ", ".join(f"{k}={_fmt(v)}" for k, v in r.records.items()) or "-"
        status = r.status if not r.error else f"{r.status}: {r.error}"
        lines.append(f"| {r.notebook} | {status} | {r.seconds:.1f} | {numbers} |")
    return "\n".join(lines)


def run_course(
    profile: str = "cpu",
    only: Sequence[str] | None = None,
    build_dir: Path | None = None,
    parameters: dict[str, Any] | None = None,
    notebook_dir: Path | None = None,
) -> list[NotebookRun]:
    """Execute the lessons in order and write ``summary.md``/``summary.json`` under ``build/<profile>``."""
    profile = resolve_profile(profile)
    out_dir = (build_dir or repo_root() / "build") / profile
    notebooks = list_notebooks(notebook_dir, only)
    check_parameters(notebooks, parameters)  # before any notebook runs
    runs = []
    for nb in notebooks:
        print(f"[{profile}] executing {nb.name} ...", flush=True)
        run = run_notebook(nb, profile, out_dir, parameters)
        print(
            f"[{profile}] {nb.name}: {run.status} in {run.seconds:.1f} s" + (f" ({run.error})" if run.error else ""),
            flush=True,
        )
        runs.append(run)
    table = summary_table(runs)
    (out_dir / "summary.md").write_text(table + "\n", encoding="utf-8")
    (out_dir / "summary.json").write_text(json.dumps([asdict(r) for r in runs], indent=2), encoding="utf-8")
    return runs


def _parse_param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"parameters look like name=value, got {text!r}")
    name, raw = text.split("=", 1)
    name = name.strip()
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: the parameter name must be a Python name like epochs")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        if raw.strip()[:1] in ("[", "{", '"'):  # meant as JSON (a list, a dict, a quoted text) but broken
            raise argparse.ArgumentTypeError(
                f"{text!r}: the value is not valid JSON ({err.msg}); e.g. {name}=[2,5] or {name}='\"text\"'"
            ) from None
        value = raw  # a bare word: the text itself (weights=imagenet, sizes=2,5,20)
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu", choices=PROFILE_CHOICES)
    parser.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 03")
    parser.add_argument("--build-dir", type=Path, default=None)
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        type=_parse_param,
        default=[],
        help="extra notebook parameter name=value (JSON values), repeatable",
    )
    args = parser.parse_args(argv)
    try:
        runs = run_course(args.profile, args.only, args.build_dir, dict(args.param))
    except ConfigError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print()
    print(summary_table(runs))
    failed = [r.notebook for r in runs if r.status != "ok"]
    if failed:
        print(f"\nFAILED: {', '.join(failed)} (see the executed notebooks and HTML under build/)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
