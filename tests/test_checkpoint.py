import os
import time

import pytest
import torch
from torch import nn

from course_utils.checkpoint import (
    RECORD_VERSION,
    ModelRecord,
    checkpoint_path,
    find_checkpoint,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from course_utils.errors import ConfigError
from course_utils.models import UNet
from course_utils.paths import output_dir


def _net(width=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 1))


def test_round_trip_restores_weights_optimizer_and_metadata(tmp_path):
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.randn(2, 4)).sum().backward()
    opt.step()
    path = save_checkpoint(
        tmp_path / "m.pt",
        net,
        optimizer=opt,
        history=[{"epoch": 1, "loss": 0.3}],
        meta={"note": "x"},
        model_config={"width": 3},
    )
    fresh = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.01)
    ckpt = load_checkpoint(path, fresh, optimizer=fresh_opt)
    x = torch.randn(5, 4)
    assert torch.equal(fresh(x), net(x))
    assert ckpt["history"] == [{"epoch": 1, "loss": 0.3}] and ckpt["meta"] == {"note": "x"}
    assert ckpt["model_config"] == {"width": 3}
    assert fresh_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_never_overwrites_silently(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _net())
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="on_exists='rename'"):
        save_checkpoint(path, _net(5))
    assert path.read_bytes() == before
    renamed = save_checkpoint(path, _net(5), on_exists="rename")
    assert renamed.name == "m-001.pt" and path.read_bytes() == before
    assert save_checkpoint(path, _net(5), on_exists="rename").name == "m-002.pt"
    save_checkpoint(path, _net(5), on_exists="overwrite")
    assert path.read_bytes() != before
    assert not list(tmp_path.glob(".*.tmp"))


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="Run the lesson"):
        load_checkpoint(tmp_path / "missing.pt")
    path = save_checkpoint(tmp_path / "m.pt", _net(3))
    with pytest.raises(RuntimeError, match="do not fit this model"):
        load_checkpoint(path, _net(7))
    plain = tmp_path / "plain.pt"
    torch.save(_net().state_dict(), plain)
    with pytest.raises(ValueError, match="not written by course_utils"):
        load_checkpoint(plain)


def test_loading_refuses_pickled_code(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "course_utils.checkpoint/1", "obj": _net()}, evil)  # a whole module, pickled
    with pytest.raises(ValueError, match="weights_only=True"):
        load_checkpoint(evil)


# ----------------------------------------------------------------------------- the checkpoint contract
def _record(model, **changes):
    values = dict(
        lesson="03_drive_vessels",
        kind="unet",
        profile="smoke",
        builder="UNet",
        model_config=dict(model.config),
        inputs=["green"],
        normalisation={"method": "clahe+gamma", "channel": "green"},
        spacing_mm=None,
        inference={"mode": "whole image", "tta": "lr"},
        threshold=0.45,
        threshold_source="validation images, pooled F1",
        training={"data": "synthetic", "epochs": 1},
    )
    values.update(changes)
    return ModelRecord(**values)


def _touch(path, age_s):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_checkpoint_path_names_a_lessons_checkpoint():
    path = checkpoint_path("03_drive_vessels", "unet", "smoke")
    assert path == output_dir("03_drive_vessels") / "unet-smoke.pt" and path.parent.is_dir()
    assert checkpoint_path("04_mri_lesions", "unet3d", "gpu", create=False).name == "unet3d-gpu.pt"
    assert not output_dir("04_mri_lesions", create=False).exists()
    with pytest.raises(ConfigError, match="profile"):
        checkpoint_path("03_drive_vessels", "unet", "laptop")
    with pytest.raises(ConfigError, match="plain name"):
        checkpoint_path("03_drive_vessels", "../unet", "smoke")


def test_find_checkpoint_takes_the_newest_copy_of_the_first_profile_that_has_one():
    folder = output_dir("03_drive_vessels")
    assert find_checkpoint("03_drive_vessels", "unet", "smoke") is None
    _touch(folder / "unet-smoke.pt", 300)
    newest = _touch(folder / "unet-smoke-001.pt", 100)
    _touch(folder / "unet-smoke-002.pt", 200)
    _touch(folder / "unet3d-smoke.pt", 0)  # another kind
    _touch(folder / "unet-smoke-old.pt", 0)  # not a numbered copy
    cpu = _touch(folder / "unet-cpu.pt", 500)
    assert find_checkpoint("03_drive_vessels", "unet", "smoke") == newest
    assert find_checkpoint("03_drive_vessels", "unet", "cpu,smoke") == cpu
    assert find_checkpoint("03_drive_vessels", "unet", ["gpu", "smoke"]) == newest
    assert find_checkpoint("03_drive_vessels", "unet", "gpu") is None
    assert find_checkpoint("04_mri_lesions", "unet3d", "smoke") is None  # folder absent
    with pytest.raises(ConfigError, match="profiles must be among"):
        find_checkpoint("03_drive_vessels", "unet", "")
    with pytest.raises(ConfigError, match="laptop"):
        find_checkpoint("03_drive_vessels", "unet", "laptop")


def test_find_checkpoint_finds_what_save_checkpoint_renamed():
    model = UNet(in_channels=1, depth=2, base_width=2)
    first = save_checkpoint(checkpoint_path("03_drive_vessels", "unet", "smoke"), model, record=_record(model))
    second = save_checkpoint(first, model, record=_record(model), on_exists="rename")
    assert second.name == "unet-smoke-001.pt"
    os.utime(first, (time.time() - 60, time.time() - 60))
    assert find_checkpoint("03_drive_vessels", "unet", "smoke") == second


def test_model_record_round_trips_and_checks_its_values():
    model = UNet(in_channels=1, depth=2, base_width=2)
    record = _record(model)
    assert record.version == RECORD_VERSION and isinstance(record.course_version, str)
    assert ModelRecord.from_dict(record.to_dict()) == record
    assert ModelRecord.from_dict({**record.to_dict(), "future_field": 1}) == record  # unknown keys ignored
    with pytest.raises(ConfigError, match="builder"):
        _record(model, builder="Sequential")
    with pytest.raises(ConfigError, match="profile"):
        _record(model, profile="laptop")
    with pytest.raises(ConfigError, match="input channels"):
        _record(model, inputs=[])
    with pytest.raises(ConfigError, match="threshold"):
        _record(model, threshold=1.5)


def test_model_record_from_dict_names_every_missing_field():
    model = UNet(in_channels=1, depth=2, base_width=2)
    values = _record(model).to_dict()
    for name in ("threshold", "inputs", "spacing_mm"):
        del values[name]
    with pytest.raises(ConfigError, match="missing inputs, spacing_mm, threshold") as err:
        ModelRecord.from_dict(values, source="old.pt")
    assert "old.pt" in str(err.value) and "Re-run the lesson" in str(err.value)
    del values["scale"], values["reference"]  # optional fields have defaults: not named
    with pytest.raises(ConfigError) as err:
        ModelRecord.from_dict(values)
    assert "scale" not in str(err.value) and "reference" not in str(err.value)
    with pytest.raises(ConfigError, match="version 0"):
        ModelRecord.from_dict({**_record(model).to_dict(), "version": 0})
    with pytest.raises(ConfigError, match="no model record"):
        ModelRecord.from_dict(["not", "a", "dict"])


def test_load_model_rebuilds_a_unet_from_the_file_alone(tmp_path):
    torch.manual_seed(5)
    model = UNet(in_channels=2, out_channels=1, depth=3, base_width=4)
    model(torch.randn(2, 2, 16, 16)).sum().backward()
    with torch.no_grad():  # non-default weights and BatchNorm statistics
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        model.train()(torch.randn(4, 2, 16, 16))
    record = _record(model, inputs=["green", "red"], reference={"case": "x", "mean": 0.5})
    path = save_checkpoint(tmp_path / "unet-smoke.pt", model, record=record)
    rebuilt, loaded = load_model(path)
    assert loaded == record and isinstance(rebuilt, UNet) and not rebuilt.training
    assert rebuilt.config == model.config
    x = torch.randn(3, 2, 24, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))
    assert load_checkpoint(path)["model_config"] == record.model_config


def test_load_model_refuses_a_checkpoint_without_a_record(tmp_path):
    model = UNet(in_channels=1, depth=2, base_width=2)
    plain = save_checkpoint(tmp_path / "plain.pt", model, meta={"threshold": 0.5})
    with pytest.raises(ConfigError, match="no model record"):
        load_model(plain)
    incomplete = tmp_path / "incomplete.pt"
    ckpt = load_checkpoint(plain)
    values = _record(model).to_dict()
    del values["normalisation"]
    torch.save({**ckpt, "record": values}, incomplete)
    with pytest.raises(ConfigError, match="missing normalisation"):
        load_model(incomplete)


def test_the_recorded_course_version_is_the_package_version(repo):
    import re

    import course_utils
    from course_utils.checkpoint import course_version

    declared = re.search(r'^version = "([^"]+)"', (repo / "pyproject.toml").read_text(), re.M).group(1)
    assert course_version() == course_utils.__version__ == declared
