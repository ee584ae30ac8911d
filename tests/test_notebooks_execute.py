"""Execute every lesson in the smoke profile (what CI guarantees), and check that lesson 01 repeats itself.

A notebook whose metadata says ``{"course": {"uses_data": true}}`` runs twice: with the data root
of the environment (CI: ../shared/data, the real data) and with an empty data root (the embedded
synthetic default).
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from course_utils.notebook_runner import run_notebook

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _uses_data(path):
    return json.loads(path.read_text())["metadata"].get("course", {}).get("uses_data", False)


CASES = [pytest.param(p, "env", id=p.stem) for p in NOTEBOOKS]
CASES += [pytest.param(p, "synthetic", id=f"{p.stem}-synthetic") for p in NOTEBOOKS if _uses_data(p)]


@pytest.mark.notebooks
@pytest.mark.parametrize("path,data", CASES)
def test_notebook_runs_in_smoke_profile(path, data, tmp_path, monkeypatch):
    if data == "synthetic":
        empty = tmp_path / "empty-data-root"
        empty.mkdir()
        monkeypatch.setenv("COURSE_DATA_DIR", str(empty))
    run = run_notebook(path, "smoke", tmp_path / "build")
    assert run.status == "ok", f"{path.name} failed: {run.error} (executed copy: {run.output})"
    assert run.records, "the notebook should record its headline numbers with course_utils.record"
    assert run.html and os.path.getsize(run.html) > 10_000


@pytest.mark.notebooks
def test_lesson01_outputs_repeat_under_nbval(tmp_path, monkeypatch):
    """nbval re-executes the executed lesson and compares the cells marked NBVAL_CHECK_OUTPUT.

    Those cells print tensors, gradients and the per-epoch losses of a seeded training run, so this fails
    as soon as a run with the same profile stops giving the same numbers.
    """
    run = run_notebook(REPO / "notebooks" / "01_pytorch_basics.ipynb", "smoke", tmp_path / "build")
    assert run.status == "ok", run.error
    env = {**os.environ, "COURSE_OUTPUT_DIR": str(tmp_path / "nbval-outputs"), "COURSE_PLAIN_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--rootdir", str(tmp_path), run.output], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
