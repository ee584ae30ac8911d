import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.checkpoint import load_checkpoint
from course_utils.metrics import dice_score
from course_utils.seeding import seed_everything
from course_utils.training import History, evaluate, fit


def _task(n=64, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g)
    y = (x > 0.6).float()  # learnable by a 1x1 conv: threshold the intensity
    return TensorDataset(x, y)


def _model():
    return nn.Sequential(nn.Conv2d(1, 4, 1), nn.ReLU(), nn.Conv2d(4, 1, 1))


def _run(epochs=8, seed=0, **kw):
    g = seed_everything(seed)
    model = _model()
    train = DataLoader(_task(), batch_size=16, shuffle=True, generator=g)
    val = DataLoader(_task(32, seed=1), batch_size=16)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    hist = fit(
        model,
        train,
        nn.BCEWithLogitsLoss(),
        opt,
        epochs=epochs,
        val_loader=val,
        metrics={"dice": dice_score},
        device="cpu",
        show_progress=False,
        verbose=False,
        **kw,
    )
    return model, hist


def test_fit_learns_and_records_history():
    _, hist = _run()
    assert len(hist) == 8
    assert set(hist.keys()) >= {"epoch", "train_loss", "val_loss", "val_dice", "lr", "seconds"}
    assert hist["train_loss"][-1] < 0.5 * hist["train_loss"][0]
    assert hist.last("val_dice") > 0.9
    epoch, value = hist.best("val_loss", mode="min")
    assert value == min(hist["val_loss"]) and hist["val_loss"][epoch - 1] == value


def test_fit_is_deterministic_under_a_seed():
    m1, h1 = _run(epochs=3, seed=5)
    m2, h2 = _run(epochs=3, seed=5)
    assert h1["train_loss"] == h2["train_loss"]
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1, p2)


def test_time_cap_stops_early_with_a_warning():
    from course_utils.errors import TimeCapWarning

    with pytest.warns(TimeCapWarning, match="1 of 50 planned epochs"):
        _, hist = _run(epochs=50, max_seconds=1e-9)
    assert len(hist) == 1 and hist.time_capped and hist.planned_epochs == 50


def test_best_checkpoint_is_written_and_loads(tmp_path):
    path = tmp_path / "best.pt"
    model, hist = _run(epochs=4, checkpoint_path=path, monitor="val_dice", mode="max")
    ckpt = load_checkpoint(path, _model())
    best_epoch, best_value = hist.best("val_dice", "max")
    assert ckpt["meta"]["epoch"] == best_epoch and math.isclose(ckpt["meta"]["val_dice"], best_value)


def test_evaluate_weights_batches_by_size():
    x = torch.zeros(5, 1, 2, 2)
    y = torch.cat([torch.ones(4, 1, 2, 2), torch.zeros(1, 1, 2, 2)])
    loader = DataLoader(TensorDataset(x, y), batch_size=4)  # batches of 4 and 1
    model = nn.Identity()
    out = evaluate(model, loader, None, torch.device("cpu"), metrics={"mean_target": lambda lo, t: t.mean().item()})
    assert out["mean_target"] == pytest.approx(0.8)  # sample-weighted, not (1 + 0) / 2


def test_non_finite_loss_is_reported():
    model = _model()
    loader = DataLoader(_task(8), batch_size=8)
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(
            model,
            loader,
            lambda lo, t: lo.sum() * float("nan"),
            torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            device="cpu",
            show_progress=False,
            verbose=False,
        )


def test_history_round_trip_and_errors():
    h = History.from_list([{"epoch": 1, "a": 1.0}, {"epoch": 2, "a": 0.5}])
    assert h["a"] == [1.0, 0.5] and h.best("a", "min") == (2, 0.5)
    with pytest.raises(KeyError, match="recorded"):
        h["b"]
    with pytest.raises(ValueError):
        fit(_model(), [], nn.MSELoss(), torch.optim.SGD(_model().parameters(), lr=1), epochs=0)


def test_amp_off_is_plain_float32_and_auto_uses_bf16_only_where_native():
    from course_utils.precision import cpu_has_native_bf16

    _, plain = _run(epochs=2, seed=3)
    _, off = _run(epochs=2, seed=3, amp="off")
    _, auto = _run(epochs=2, seed=3, amp=True)
    assert plain["train_loss"] == off["train_loss"]
    # bfloat16 rounds activations: results differ exactly when the CPU computes in bfloat16.
    assert (plain["train_loss"] != auto["train_loss"]) == cpu_has_native_bf16()


def test_plain_progress_bars_for_executed_notebooks(monkeypatch):
    from tqdm.std import tqdm as std_tqdm

    from course_utils.progress import progress

    monkeypatch.setenv("COURSE_PLAIN_PROGRESS", "1")
    bar = progress(range(3), enabled=False)
    assert type(bar) is std_tqdm and list(bar) == [0, 1, 2]


def test_fit_tells_patch_datasets_the_epoch():
    class Patches(TensorDataset):
        epochs_seen: list = []

        def set_epoch(self, epoch):
            self.epochs_seen.append(epoch)

    ds = Patches(*_task(16).tensors)
    model = _model()
    fit(
        model,
        DataLoader(ds, batch_size=8),
        nn.BCEWithLogitsLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=3,
        device="cpu",
        show_progress=False,
        verbose=False,
    )
    assert ds.epochs_seen == [1, 2, 3]


def _conv_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))


def test_channels_last_gives_the_same_numbers_and_layout():
    from course_utils.layout import uses_channels_last

    results = []
    for cl in (False, True):
        g = seed_everything(2)
        model = _conv_model()
        train = DataLoader(_task(32), batch_size=8, shuffle=True, generator=g)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        hist = fit(
            model,
            train,
            nn.BCEWithLogitsLoss(),
            opt,
            epochs=2,
            device="cpu",
            channels_last=cl,
            show_progress=False,
            verbose=False,
        )
        assert uses_channels_last(model) == cl
        results.append((hist["train_loss"], [p.detach().clone() for p in model.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.allclose(a, b, atol=1e-5)


def test_ema_returns_the_running_average_of_the_weights():
    from course_utils.training import weight_ema

    # by hand: SGD steps, then w_ema = decay * w_ema + (1 - decay) * w after each step
    seed_everything(4)
    model = nn.Sequential(nn.Conv2d(1, 1, 1))
    loader = DataLoader(_task(32), batch_size=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    hist = fit(
        model,
        loader,
        nn.BCEWithLogitsLoss(),
        opt,
        epochs=2,
        device="cpu",
        ema_decay=0.5,
        show_progress=False,
        verbose=False,
    )
    seed_everything(4)
    live = nn.Sequential(nn.Conv2d(1, 1, 1))
    loader = DataLoader(_task(32), batch_size=8)
    opt = torch.optim.SGD(live.parameters(), lr=0.5)
    average = None
    for _ in range(2):
        for x, y in loader:
            loss = nn.functional.binary_cross_entropy_with_logits(live(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            w = torch.cat([p.detach().flatten() for p in live.parameters()])
            average = w.clone() if average is None else 0.5 * average + 0.5 * w
    got = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.allclose(got, average, atol=1e-6)
    assert not torch.allclose(got, w)  # the average, not the last weights
    assert len(hist) == 2
    with pytest.raises(ValueError, match="decay"):
        weight_ema(model, 1.0)


def test_a_best_checkpoint_without_validation_is_refused_before_training(tmp_path):
    """Issue #15, a further bad input: without val_loader the monitored value never exists, and the
    checkpoint used to be silently never written."""
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="checkpoint_path needs val_loader"):
        fit(
            model,
            DataLoader(_task(8), batch_size=8),
            nn.BCEWithLogitsLoss(),
            torch.optim.Adam(model.parameters()),
            epochs=2,
            checkpoint_path=tmp_path / "best.pt",
            device="cpu",
            show_progress=False,
        )
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())) and not (tmp_path / "best.pt").exists()
