import pytest
from conftest import write_notebook

from course_utils.notebook_runner import NotebookRun, _parse_param, list_notebooks, run_notebook, summary_table


def test_list_notebooks_in_lesson_order(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in list_notebooks(tmp_path)] == ["01_a.ipynb", "02_b.ipynb"]
    assert [p.name for p in list_notebooks(tmp_path, ["02"])] == ["02_b.ipynb"]
    with pytest.raises(SystemExit, match="no notebook"):
        list_notebooks(tmp_path, ["07"])


def test_run_records_parameters_numbers_and_failures(tmp_path):
    ok = write_notebook(
        tmp_path / "01_ok.ipynb",
        ['profile = "cpu"', "from course_utils import record\nrecord('profile_len', len(profile))"],
    )
    run = run_notebook(ok, "smoke", tmp_path / "out")
    assert run.status == "ok" and run.records == {"profile_len": 5}  # papermill injected "smoke"
    assert run.html.endswith(".html")
    bad = write_notebook(tmp_path / "02_bad.ipynb", ['profile = "cpu"', "raise ValueError('boom')"])
    run = run_notebook(bad, "smoke", tmp_path / "out")
    assert run.status == "failed" and "ValueError: boom" in run.error
    table = summary_table([run])
    assert "| 02_bad | failed: ValueError: boom |" in table


def test_summary_table_and_param_parsing():
    runs = [NotebookRun("01_x", "ok", 1.25, "o", "h", {"dice": 0.91234, "n": 3})]
    assert "| 01_x | ok | 1.2 | dice=0.9123, n=3 |" in summary_table(runs)
    assert _parse_param("epochs=3") == ("epochs", 3)
    assert _parse_param("name=abc") == ("name", "abc")
