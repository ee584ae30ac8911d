"""Execute every lesson in the smoke profile (what CI guarantees), and check that lesson 01 repeats itself.

After lessons 03 and 04 a fresh Python process loads the checkpoint they saved and must reproduce their
test prediction exactly (the checkpoint contract: everything prediction needs is in the file).

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

from course_utils.editions import executed_checks, write_edition
from course_utils.notebook_runner import run_notebook

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))


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
    checks = executed_checks(json.loads(open(run.output).read()))
    assert checks, f"{path.name}: no self-check result in the executed notebook"
    failing = [f"cell {i}: {state}: {message[:160]}" for i, state, message in checks if state != "correct"]
    assert not failing, f"{path.name} (solution edition): every self-check must pass; " + "; ".join(failing)
    if path.stem in ("03_drive_vessels", "04_mri_lesions"):
        check_checkpoint_reproduces(path.stem)


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_edition_runs_with_every_check_not_attempted(path, tmp_path, monkeypatch):
    """The student edition (``make student``) runs top to bottom on the embedded data, and every self-check in it
    says "not attempted": no solution leaks into it, and no check mistakes a stub for a wrong answer."""
    empty = tmp_path / "empty-data-root"
    empty.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(empty))
    (student,) = write_edition("student", tmp_path / "student", [path])
    run = run_notebook(student, "smoke", tmp_path / "build")
    assert run.status == "ok", f"student edition of {path.name} failed: {run.error} (executed copy: {run.output})"
    checks = executed_checks(json.loads(open(run.output).read()))
    assert checks, f"{path.name}: no self-check result in the executed student edition"
    attempted = [f"cell {i}: {state}: {message[:160]}" for i, state, message in checks if state != "pending"]
    assert not attempted, f"student edition of {path.name}: every check must say 'not attempted'; " + "; ".join(
        attempted
    )


@pytest.mark.notebooks
def test_lesson01_outputs_repeat_under_nbval(tmp_path, monkeypatch):
    """nbval re-executes the executed lesson and compares the cells marked NBVAL_CHECK_OUTPUT.

    Those cells print tensors, gradients and the per-epoch losses of a seeded training run, so this fails
    as soon as a run with the same profile stops giving the same numbers.
    """
    run = run_notebook(REPO / "notebooks" / "01_pytorch_basics.ipynb", "smoke", tmp_path / "build")
    assert run.status == "ok", run.error
    env = {**os.environ, "COURSE_OUTPUT_DIR": str(tmp_path / "nbval-outputs"), "COURSE_PLAIN_PROGRESS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--rootdir",
            str(tmp_path),
            run.output,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


# A fresh Python process that knows nothing of the notebook: load the checkpoint, read the test case the
# record names, predict as the record says, and print the fingerprint of that prediction.
REPRODUCE = r"""
import json, sys
from course_utils.checkpoint import find_checkpoint, load_model, prediction_fingerprint
from course_utils.config import get_config

lesson = sys.argv[1]
if lesson == "03_drive_vessels":
    from course_utils.data.fundus import preprocess_cases
    from course_utils.data.vessels import load_vessel_data
    from course_utils.lessons.lesson03.pipeline import CHECKPOINT_KIND, predict_cases
    model, record = load_model(find_checkpoint(lesson, CHECKPOINT_KIND, "smoke"))
    ref, cfg = record.reference, get_config(lesson, record.profile)
    data = load_vessel_data(n_val=cfg.n_val, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test,
                            synthetic=ref["source"] == "synthetic")
    case = preprocess_cases([c for c in data.test if c.name == ref["case"]], record.normalisation["channel"])[0]
    prob = predict_cases(model, [case], tta=record.inference["tta"], amp=record.inference["amp"])[0][0]
else:
    from course_utils.lessons.lesson04.pipeline import CHECKPOINT_KIND, predict_case, prepare_open_ms, prepare_synthetic
    model, record = load_model(find_checkpoint(lesson, CHECKPOINT_KIND, "smoke"))
    ref, cfg, inf = record.reference, get_config(lesson, record.profile), record.inference
    spacing = record.spacing_mm[0]
    if ref["source"] == "open_ms":
        case = prepare_open_ms(spacing, tuple(record.inputs), patients=[ref["case"]])[0]
    else:
        case = [c for c in prepare_synthetic(cfg.n_synthetic_cases, seed=cfg.seed, spacing=spacing)
                if c.name == ref["case"]][0]
    prob, _ = predict_case(model, case, rim_mm=inf["rim_mm"], patch_size=inf["patch_size"], overlap=inf["overlap"],
                           batch_size=inf["batch_size"], tta=inf["tta"], modalities=tuple(record.inputs),
                           amp=inf["amp"])
print(json.dumps({"reference": ref, "fresh": prediction_fingerprint(ref["case"], prob, ref["source"])}))
"""


def check_checkpoint_reproduces(lesson):
    """The checkpoint the notebook saved, loaded in a fresh process, predicts its test case bit for bit."""
    proc = subprocess.run(
        [sys.executable, "-c", REPRODUCE, lesson], env=dict(os.environ), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ref, fresh = out["reference"], out["fresh"]
    assert fresh["shape"] == ref["shape"]
    assert fresh["sha256"] == ref["sha256"], f"{lesson}: mean {fresh['mean']!r} vs the notebook's {ref['mean']!r}"
