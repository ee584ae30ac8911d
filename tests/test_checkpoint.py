import pytest
import torch
from torch import nn

from course_utils.checkpoint import load_checkpoint, save_checkpoint


def _net(width=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 1))


def test_round_trip_restores_weights_optimizer_and_metadata(tmp_path):
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.randn(2, 4)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "m.pt", net, optimizer=opt, history=[{"epoch": 1, "loss": 0.3}],
                           meta={"note": "x"}, model_config={"width": 3})
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
