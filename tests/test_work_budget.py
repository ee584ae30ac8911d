"""Issue #15: profiles fix the work, not the clock.

Lesson 03's recipe (the smoke profile's knobs on small synthetic fundus images) must give the same
network and the same test metrics on a machine that is a thousand times slower, and the optional time cap,
when set and hit, must stop training with a loud warning that says how much of the work was done.
"""

import time

import numpy as np
import pytest
import torch

from course_utils.config import get_config, lesson_settings
from course_utils.data.fundus import input_channels, preprocess_cases
from course_utils.data.patches import patch_loader
from course_utils.data.vessels import load_vessel_data
from course_utils.errors import TimeCapWarning
from course_utils.lessons.lesson03.pipeline import build_vessel_model, evaluate_vessels, predict_cases
from course_utils.metrics import choose_threshold
from course_utils.recipe import train_model
from course_utils.seeding import seed_everything


class SlowClock:
    """A stand-in for ``time.perf_counter``/``monotonic``/``time``: every reading advances by ``step`` seconds."""

    def __init__(self, step: float):
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _lesson03_run(tmp_path, monkeypatch, clock_step: float | None, **train_kw):
    """The lesson 03 recipe, end to end: data, patches, U-Net, training, threshold, test metrics."""
    if clock_step is not None:
        clock = SlowClock(clock_step)
        for name in ("perf_counter", "monotonic", "time"):
            monkeypatch.setattr(time, name, clock)
    cfg = get_config("03_drive_vessels", "smoke", epochs=3, patch_size=32, samples_per_epoch=16, batch_size=4)
    data = load_vessel_data(tmp_path, n_val=0, max_train=2, max_test=1, synthetic_size=(64, 64), seed=cfg.seed)
    train, test = preprocess_cases(data.train, cfg.channel), preprocess_cases(data.test, cfg.channel)
    seed_everything(cfg.seed)
    model = build_vessel_model(input_channels(cfg.channel), cfg.base_width, cfg.depth)
    loader = patch_loader(
        train,
        patch_size=cfg.patch_size,
        batch_size=cfg.batch_size,
        samples_per_epoch=cfg.samples_per_epoch,
        vessel_bias=cfg.vessel_bias,
        augment_strength=cfg.augment,
        seed=cfg.seed,
    )
    history = train_model(
        model,
        loader,
        lr=cfg.lr,
        epochs=cfg.epochs,
        bce_weight=cfg.bce_weight,
        device="cpu",
        amp="off",
        channels_last=cfg.channels_last,
        ema_decay=cfg.ema_decay,
        show_progress=False,
        verbose=False,
        **train_kw,
    )
    monkeypatch.undo()
    probs, _ = predict_cases(model, train, tta=cfg.tta, amp="off")
    threshold = choose_threshold(probs, [c.vessels for c in train], [c.fov for c in train], criterion="f1")
    test_probs, _ = predict_cases(model, test, tta=cfg.tta, amp="off")
    return model, history, evaluate_vessels(test_probs, data.test, threshold)


def test_no_profile_stops_on_the_clock():
    for lesson in ("03_drive_vessels", "04_mri_lesions"):
        for profile, values in lesson_settings(lesson).items():
            assert values["max_train_seconds"] is None, f"{lesson} {profile}: the time cap must be off by default"
            assert not any(k.endswith("_seconds") and k != "max_train_seconds" for k in values), (lesson, profile)


def test_a_slow_machine_trains_the_same_network_and_measures_the_same(tmp_path, monkeypatch):
    fast_model, fast_history, fast = _lesson03_run(tmp_path, monkeypatch, clock_step=None)
    slow_model, slow_history, slow = _lesson03_run(tmp_path, monkeypatch, clock_step=1000.0)  # 1000 s per reading
    assert len(fast_history) == len(slow_history) == 3 and not slow_history.time_capped
    assert fast_history["lr"] == slow_history["lr"] and fast_history["train_loss"] == slow_history["train_loss"]
    for a, b in zip(fast_model.state_dict().values(), slow_model.state_dict().values()):
        assert torch.equal(a, b)
    assert fast == slow, "same work, same seed: the same test metrics, however slow the machine"
    assert np.isfinite(fast["auc"])


def test_the_time_cap_when_hit_warns_and_says_how_much_work_was_done(tmp_path, monkeypatch):
    with pytest.warns(TimeCapWarning, match=r"1 of 3 planned epochs.*STOPPED BY THE TIME CAP.*fall short"):
        _, history, _ = _lesson03_run(tmp_path, monkeypatch, clock_step=1000.0, max_seconds=60.0)
    assert history.time_capped and len(history) == 1 and history.planned_epochs == 3
    assert "STOPPED BY THE TIME CAP" in history.describe()


def test_a_cap_that_is_not_hit_changes_nothing(tmp_path, monkeypatch, recwarn):
    _, plain_history, plain = _lesson03_run(tmp_path, monkeypatch, clock_step=None)
    _, capped_history, capped = _lesson03_run(tmp_path, monkeypatch, clock_step=None, max_seconds=3600.0)
    assert not capped_history.time_capped and len(capped_history) == 3
    assert plain == capped and not [w for w in recwarn if issubclass(w.category, TimeCapWarning)]
    assert capped_history.describe().startswith("3 of 3 planned epochs")


def test_a_checkpoint_says_whether_a_time_cap_cut_its_training(tmp_path):
    from course_utils.checkpoint import load_checkpoint, save_checkpoint
    from course_utils.training import History

    net = torch.nn.Conv2d(1, 1, 1)
    history = History([{"epoch": 1, "train_loss": 0.5, "seconds": 2.0}], planned_epochs=40, time_capped=True)
    meta = load_checkpoint(save_checkpoint(tmp_path / "capped.pt", net, history=history))["meta"]
    assert meta["planned_epochs"] == 40 and meta["time_capped"] is True
