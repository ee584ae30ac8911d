"""Issue #15: bad input never costs a learner their time, files or results.

Each bad input is refused with a clear message *before* any work starts (no notebook executed,
no epoch trained, no file replaced), or warned about where it is legal but suspicious.
These tests only inspect the lesson notebooks; none executes one.
"""

from __future__ import annotations

import os
import stat
import warnings
import zipfile

import numpy as np
import pytest
import torch
from conftest import write_notebook
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import notebook_runner
from course_utils.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from course_utils.errors import ConfigError
from course_utils.lessons.lesson04.pipeline import mean_metrics
from course_utils.notebook_runner import main, run_course
from course_utils.training import fit

# ----- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def no_execution(monkeypatch):
    """Fail the test if the runner tries to execute a notebook."""
    calls = []

    def refuse(path, *args, **kwargs):
        calls.append(path)
        raise AssertionError(f"{path} was executed despite bad input")

    monkeypatch.setattr(notebook_runner, "run_notebook", refuse)
    return calls


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))


def _fit(model, **kw):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 4, 4, generator=g)
    data = DataLoader(TensorDataset(x, (x > 0.5).float()), batch_size=8)
    return fit(
        model,
        data,
        nn.BCEWithLogitsLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=1,
        val_loader=data,
        device="cpu",
        show_progress=False,
        verbose=False,
        **kw,
    )


def _conv():
    torch.manual_seed(0)
    return nn.Conv2d(1, 1, 1)


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


# ----- case 4: a misspelled or unknown notebook parameter ---------------------------------------------
def test_case_04_misspelled_parameter_rejected_before_running(tmp_path, capsys, no_execution):
    rc = main(["--profile", "smoke", "--only", "01", "--build-dir", str(tmp_path), "-p", "epoch=5"])
    err = capsys.readouterr().err
    assert rc != 0 and not no_execution
    assert "01_pytorch_basics" in err and "'epoch'" in err and "did you mean 'epochs'" in err
    assert "batch_size" in err  # the known ones are listed
    assert not (tmp_path / "smoke").exists()  # nothing written either


def test_case_04_unknown_parameter_rejected(tmp_path, capsys, no_execution):
    rc = main(["--profile", "smoke", "--build-dir", str(tmp_path), "-p", "foo=1"])
    err = capsys.readouterr().err
    assert rc != 0 and not no_execution
    assert "'foo'" in err and "06_activation_maximization" in err


def test_case_04_parameter_must_exist_in_every_selected_notebook(tmp_path, capsys, no_execution):
    rc = main(["--profile", "smoke", "--build-dir", str(tmp_path), "-p", "epochs=1"])
    err = capsys.readouterr().err
    assert rc != 0 and not no_execution
    for lacking in ("03_drive_vessels", "04_mri_lesions", "05_transfer_learning", "06_activation_maximization"):
        assert lacking in err
    assert "--only 01 02" in err


def test_case_04_known_parameters_pass_the_check(repo):
    notebooks = notebook_runner.list_notebooks(repo / "notebooks", ["01", "02"])
    notebook_runner.check_parameters(notebooks, {"epochs": 1, "seed": 3})  # no error: both notebooks have them
    notebook_runner.check_parameters(notebook_runner.list_notebooks(repo / "notebooks"), {"seed": 1})


def test_case_04_fake_notebook_dir(tmp_path, no_execution):
    write_notebook(tmp_path / "01_a.ipynb", ['profile = "cpu"\nsteps = 3  # optimiser steps', "x = 1"])
    write_notebook(tmp_path / "02_b.ipynb", ['profile = "cpu"', "x = 1"])
    write_notebook(tmp_path / "03_c.ipynb", ["x = 1"], tag_first=False)  # no parameters cell
    with pytest.raises(ConfigError, match=r"01_a.*did you mean 'steps'"):
        run_course("smoke", ["01"], tmp_path / "build", {"step": 2}, notebook_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"02_b") as info:
        run_course("smoke", ["01", "02"], tmp_path / "build", {"steps": 2}, notebook_dir=tmp_path)
    assert "--only 01" in str(info.value)
    with pytest.raises(ConfigError, match=r"03_c.*no parameters cell"):
        run_course("smoke", ["03"], tmp_path / "build", {"steps": 2}, notebook_dir=tmp_path)
    assert not no_execution and not (tmp_path / "build").exists()


# ----- case 6: fit(checkpoint_path=...) replacing a user's file -----------------------------------------
def test_case_06_fit_refuses_to_replace_an_existing_checkpoint(tmp_path):
    mine = tmp_path / "mine.pt"
    mine.write_bytes(b"the learner's own file")
    model = _conv()
    before = _weights(model)
    with pytest.raises(FileExistsError, match=r"mine\.pt.*overwrite_checkpoint=True") as info:
        _fit(model, checkpoint_path=mine)
    assert "mine-001.pt" in str(info.value)  # a free name is suggested
    assert mine.read_bytes() == b"the learner's own file"
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(model)))  # no training happened


def test_case_06_fit_overwrites_when_asked_and_writes_a_new_file(tmp_path):
    mine = tmp_path / "mine.pt"
    mine.write_bytes(b"old")
    _fit(_conv(), checkpoint_path=mine, overwrite_checkpoint=True)
    assert load_checkpoint(mine)["meta"]["epoch"] == 1
    fresh = tmp_path / "new" / "best.pt"
    _fit(_conv(), checkpoint_path=fresh)
    assert fresh.is_file()


# ----- case 14: a truncated checkpoint is corrupt, not unsafe ------------------------------------------
def test_case_14_truncated_checkpoint_reported_as_corrupt(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _net())
    data = path.read_bytes()
    for name, content in {"half.pt": data[: len(data) // 2], "tail.pt": data[:-10], "empty.pt": b""}.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ValueError, match="corrupt or incomplete") as info:
            load_checkpoint(bad)
        message = str(info.value)
        assert name in message and "loads safely" not in message and "re-download" in message


def test_case_14_unsafe_pickle_still_refused_as_unsafe(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "model": nn.Linear(2, 2)}, path)  # a pickled module: code on load
    with pytest.raises(ValueError, match="not a checkpoint that loads safely"):
        load_checkpoint(path)


# ----- case 17: mean_metrics leaving out NaN values silently ----------------------------------------------
def test_case_17_mean_metrics_says_what_it_left_out():
    rows = [
        {"dice": 0.5, "hd95_mm": float("nan")},
        {"dice": 0.7, "hd95_mm": 4.0},
        {"dice": 0.9, "hd95_mm": float("nan")},
    ]
    with pytest.warns(UserWarning, match=r"hd95_mm: 2 of 3 values .*NaN.* left out") as record:
        out = mean_metrics(rows, ("dice", "hd95_mm"))
    assert out["dice"] == pytest.approx(0.7) and out["hd95_mm"] == 4.0
    assert not any("dice" in str(w.message).split(":")[0] for w in record)  # dice was complete


def test_case_17_all_nan_metric_is_not_a_silent_nan():
    rows = [{"dice": 0.0, "hd95_mm": float("nan")}, {"dice": 0.0, "hd95_mm": float("nan")}]
    with pytest.warns(UserWarning, match=r"hd95_mm: all 2 values are NaN.*mean is NaN"):
        out = mean_metrics(rows, ("dice", "hd95_mm"))
    assert np.isnan(out["hd95_mm"])


def test_case_17_complete_metrics_raise_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mean_metrics([{"dice": 0.5}, {"dice": 0.7}], ("dice",))["dice"] == pytest.approx(0.6)


# ----- case 18: file mode of written checkpoints -------------------------------------------------------
@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_case_18_checkpoint_mode_follows_the_umask(tmp_path, umask):
    umask(0o022)
    path = save_checkpoint(tmp_path / "a.pt", _net())
    assert _mode(path) == 0o644
    umask(0o002)
    assert _mode(save_checkpoint(tmp_path / "b.pt", _net())) == 0o664
    umask(0o077)
    assert _mode(save_checkpoint(tmp_path / "c.pt", _net())) == 0o600


def test_case_18_overwrite_keeps_the_normal_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "m.pt"
    path.write_bytes(b"x")
    path.chmod(0o644)
    save_checkpoint(path, _net(), on_exists="overwrite")
    assert _mode(path) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic write leaves nothing


# ----- further bad inputs --------------------------------------------------------------------------------
def test_further_load_checkpoint_of_a_directory(tmp_path):
    (tmp_path / "run").mkdir()
    save_checkpoint(tmp_path / "run" / "unet-cpu.pt", _net())
    with pytest.raises(IsADirectoryError, match=r"run is a folder.*unet-cpu\.pt"):
        load_checkpoint(tmp_path / "run")


def test_further_save_checkpoint_to_a_directory(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for on_exists in ("error", "rename", "overwrite"):
        with pytest.raises(IsADirectoryError, match=r"models is a folder.*models/model\.pt"):
            save_checkpoint(folder, _net(), on_exists=on_exists)
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_further_checkpoint_from_a_newer_course_format(tmp_path):
    path = tmp_path / "new.pt"
    torch.save({"format": "course_utils.checkpoint/2", "model_state": {}}, path)
    with pytest.raises(ValueError, match=r"newer version of the course.*course_utils.checkpoint/2.*update"):
        load_checkpoint(path)


def test_further_fit_checkpoint_path_is_a_directory_or_under_a_file(tmp_path):
    model = _conv()
    before = _weights(model)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        _fit(model, checkpoint_path=tmp_path, overwrite_checkpoint=True)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"notes\.txt is a file"):
        _fit(model, checkpoint_path=tmp_path / "notes.txt" / "best.pt")
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(model)))


def test_further_fit_checkpoint_in_a_read_only_folder(tmp_path, monkeypatch):
    # root ignores permission bits, so the check's os.access is what a read-only folder answers
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode))
    model = _conv()
    before = _weights(model)
    with pytest.raises(PermissionError, match=r"cannot write.*" + str(tmp_path.name)):
        _fit(model, checkpoint_path=tmp_path / "best.pt")
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(model)))


def test_further_runner_only_prefix_matching_nothing(repo):
    with pytest.raises(SystemExit, match=r"no notebook .* matches \['99'\].*01_pytorch_basics"):
        notebook_runner.list_notebooks(repo / "notebooks", ["01", "99"])


def test_further_runner_profile_as_parameter(tmp_path, capsys, no_execution):
    rc = main(["--profile", "smoke", "--only", "01", "--build-dir", str(tmp_path), "-p", "profile=gpu"])
    assert rc != 0 and not no_execution and "--profile" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["=3", " =3", "sizes=[2,5", 'weights="imagenet', "seed={1"])
def test_further_runner_param_broken(text, tmp_path, capsys, no_execution):
    with pytest.raises(SystemExit) as info:
        main(["--profile", "smoke", "--only", "05", "--build-dir", str(tmp_path), "-p", text])
    assert info.value.code == 2 and "-p/--param" in capsys.readouterr().err and not no_execution


def test_further_runner_profile_typo(tmp_path, capsys, no_execution):
    with pytest.raises(SystemExit) as info:
        main(["--profile", "smok", "--build-dir", str(tmp_path)])
    assert info.value.code == 2 and "invalid choice: 'smok'" in capsys.readouterr().err


def test_further_mean_metrics_inf_and_missing(recwarn):
    rows = [{"dice": 0.5, "hd95_mm": float("inf")}, {"dice": 0.7, "hd95_mm": 4.0}, {"dice": 0.6}]
    with pytest.warns(UserWarning, match=r"hd95_mm: 2 of 3 values .1 Inf, 1 missing"):
        out = mean_metrics(rows, ("dice", "hd95_mm"))
    assert out["hd95_mm"] == 4.0
    with pytest.raises(KeyError, match=r"no row has 'hd95'.*did you mean 'hd95_mm'"):
        mean_metrics(rows, ("dice", "hd95"))
    with pytest.raises(ValueError, match="no rows"):
        mean_metrics([], ("dice",))


def test_further_wrong_kind_checkpoint_and_zip_that_is_no_checkpoint(tmp_path):
    plain = tmp_path / "state.pt"
    torch.save(_net().state_dict(), plain)
    with pytest.raises(ValueError, match="not written by course_utils.save_checkpoint"):
        load_checkpoint(plain)
    other = tmp_path / "archive.pt"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "not a model")
    with pytest.raises(ValueError, match="corrupt or incomplete"):
        load_checkpoint(other)


def test_overwrite_keeps_a_private_file_private(tmp_path):
    """Review finding: overwriting must keep the replaced file's mode (a deliberate 0600 stays 0600)."""
    path = save_checkpoint(tmp_path / "private.pt", _net())
    path.chmod(0o600)
    save_checkpoint(path, _net(), on_exists="overwrite")
    assert _mode(path) == 0o600


def test_an_older_checkpoint_format_is_called_older(tmp_path):
    import torch

    path = tmp_path / "old.pt"
    torch.save({"format": "course_utils.checkpoint/0"}, path)
    with pytest.raises(ValueError, match="an older version of the course"):
        load_checkpoint(path)
