import math

import numpy as np
import pytest
import torch
from conftest import real_data_root
from torch import nn

from course_utils.data.drive import FundusCase
from course_utils.data.fundus import preprocess_cases
from course_utils.data.patches import EpochPatches, patch_loader
from course_utils.data.vessels import load_vessel_data
from course_utils.errors import ConfigError, DataError
from course_utils.inference import predict_image
from course_utils.lessons.lesson03.pipeline import build_vessel_model, evaluate_vessels, observer_metrics, predict_cases
from course_utils.metrics import choose_threshold
from course_utils.recipe import train_model
from course_utils.schedules import WarmupCosine


def _cases(n=3, h=48, w=56, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    fov = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 2 - 1) ** 2
    out = []
    for i in range(n):
        vessels = np.zeros((h, w), bool)
        vessels[rng.integers(h, size=4), :] = True  # horizontal "vessels"
        vessels &= fov
        image = np.repeat((0.6 - 0.4 * vessels + 0.05 * rng.random((h, w)))[..., None], 3, axis=-1)
        out.append(FundusCase(f"case{i}", image.astype(np.float32), vessels, fov))
    return out


# ----------------------------------------------------------------------------- schedule
def _opt(lr=1.0):
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


def _stepped_lrs(opt, schedule, steps: int) -> list[float]:
    """The learning rate after each of ``steps`` optimiser + schedule steps."""
    out = []
    for _ in range(steps):
        opt.step()
        schedule.step()
        out.append(schedule.get_last_lr()[0])
    return out


def test_warmup_cosine_by_hand():
    s = WarmupCosine(_opt(1.0), total_steps=100, warmup=0.1, final_ratio=0.0)
    assert s.lr_at(0.05) == pytest.approx(0.5)  # half way through the warm-up
    assert s.lr_at(0.1) == pytest.approx(1.0)  # peak
    assert s.lr_at(0.55) == pytest.approx(0.5)  # cos(pi / 2) = 0: half way down
    assert s.lr_at(1.0) == pytest.approx(0.0, abs=1e-12)
    opt = _opt(2.0)
    s2 = WarmupCosine(opt, total_steps=10, warmup=0.0, final_ratio=0.1)
    lrs = _stepped_lrs(opt, s2, 10)
    assert all(a >= b for a, b in zip(lrs, lrs[1:])), "monotone decay after the warm-up"
    assert lrs[-1] == pytest.approx(0.2) and s2.progress() == 1.0
    opt.step()
    s2.step()
    assert s2.get_last_lr()[0] == pytest.approx(0.2), "stays at the floor past the budget"


def test_warmup_cosine_counts_steps_not_seconds(monkeypatch):
    """A slow machine (a clock that jumps an hour per step) follows exactly the same learning rates."""
    import time

    def lrs(clock_step: float) -> list[float]:
        now = [0.0]

        def clock() -> float:
            now[0] += clock_step
            return now[0]

        monkeypatch.setattr(time, "perf_counter", clock)
        monkeypatch.setattr(time, "monotonic", clock)
        opt = _opt(1.0)
        return _stepped_lrs(opt, WarmupCosine(opt, total_steps=20, warmup=0.1, final_ratio=0.01), 20)

    assert lrs(1e-3) == lrs(3600.0)


def test_warmup_cosine_errors():
    with pytest.raises(TypeError):
        WarmupCosine(_opt())  # the budget (total_steps) is required
    with pytest.raises(ValueError, match="total_steps"):
        WarmupCosine(_opt(), total_steps=0)
    with pytest.raises(ValueError):
        WarmupCosine(_opt(), total_steps=10, warmup=1.0)


def test_warmup_cosine_factor_and_lr_at_agree():
    s = WarmupCosine(_opt(0.5), total_steps=50, warmup=0.2, final_ratio=0.1)
    for p in (0.0, 0.1, 0.2, 0.5, 0.9, 1.0):
        assert s.lr_at(p) == pytest.approx(0.5 * s.factor_at(p))
    assert s.factor_at(0.2) == pytest.approx(1.0) and s.factor_at(1.0) == pytest.approx(0.1)
    assert s.factor_at(-1.0) == s.factor_at(0.0) and s.factor_at(2.0) == s.factor_at(1.0), "progress is clipped"


# ----------------------------------------------------------------------------- patches
def test_epoch_patches_fresh_each_epoch_fixed_for_validation():
    cases = preprocess_cases(_cases())
    loader = patch_loader(cases, patch_size=16, batch_size=4, samples_per_epoch=8, seed=1)
    assert isinstance(loader, EpochPatches) and len(loader) == 2
    first = torch.cat([b[0] for b in loader])
    second = torch.cat([b[0] for b in loader])
    assert first.shape == (8, 1, 16, 16) and not torch.equal(first, second)
    again = patch_loader(cases, patch_size=16, batch_size=4, samples_per_epoch=8, seed=1)
    assert torch.equal(torch.cat([b[0] for b in again]), first), "same seed, same patches"
    fixed = patch_loader(cases, patch_size=16, batch_size=4, samples_per_epoch=8, seed=1, fixed=True)
    a, b = (torch.cat([batch[1] for batch in fixed]) for _ in range(2))
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- inference
class _Asymmetric(nn.Module):
    """A 1x3 convolution with an uneven kernel: not flip-equivariant."""

    def __init__(self, c=1):
        super().__init__()
        self.conv = nn.Conv2d(c, 1, (1, 3), padding=(0, 1))
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -2.0, 4.0]).view(1, 1, 1, 3).repeat(1, c, 1, 1))
            self.conv.bias.fill_(-0.5)

    def forward(self, x):
        return self.conv(x)


def _full_fov_case(image):
    h, w = image.shape[:2]
    return FundusCase("whole", image, np.zeros((h, w), bool), np.ones((h, w), bool))


def test_predict_whole_image_tta_and_tiles():
    rng = np.random.default_rng(0)
    image = rng.random((13, 17, 1)).astype(np.float32)
    model = _Asymmetric()
    x = torch.from_numpy(image).permute(2, 0, 1)  # (C, H, W)
    out = predict_image(model, x)
    assert out.shape == (1, 13, 17) and out.dtype == torch.float32
    plain = out[0].numpy()
    np.testing.assert_allclose(plain, torch.sigmoid(model(x[None]))[0, 0].detach().numpy(), atol=1e-6)
    flipped = torch.sigmoid(model(x[None].flip(-1))).flip(-1)[0, 0].detach().numpy()
    np.testing.assert_allclose(predict_image(model, x, tta="lr")[0].numpy(), (plain + flipped) / 2, atol=1e-6)
    assert not np.allclose(flipped, plain), "the test model must not be flip-equivariant"
    # predict_cases: the same probabilities, whole image in one pass or tiled
    case = _full_fov_case(image)
    (whole,), _ = predict_cases(model, [case], tta="lr")
    assert whole.shape == (13, 17) and whole.dtype == np.float32
    np.testing.assert_allclose(whole, (plain + flipped) / 2, atol=1e-6)
    # a pointwise (1x1) model gives the same probabilities tiled as in one pass
    pointwise = nn.Conv2d(1, 1, 1)
    (tiled,), _ = predict_cases(pointwise, [case], tile=8)
    (one_pass,), _ = predict_cases(pointwise, [case])
    np.testing.assert_allclose(tiled, one_pass, atol=1e-6)
    np.testing.assert_allclose(one_pass, predict_image(pointwise, x)[0].numpy(), atol=1e-6)
    with pytest.raises(ConfigError, match="tta='rotate' is not supported"):
        predict_image(model, x, tta="rotate")
    with pytest.raises(ValueError, match="tta"):
        predict_cases(model, [case], tta="hflip")  # the old name: now "lr"
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        predict_image(model, x[0])
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        predict_cases(model, [FundusCase("flat", image[..., 0], case.vessels, case.fov)])


def test_predict_unet_odd_size_restores_mode():
    torch.manual_seed(0)
    model = build_vessel_model(1, base_width=4, depth=3)
    model.train()
    image = torch.from_numpy(np.random.default_rng(0).random((1, 21, 30)).astype(np.float32))
    prob = predict_image(model, image, tta="flips")
    assert prob.shape == (1, 21, 30) and ((prob >= 0) & (prob <= 1)).all()
    assert model.training, "training mode restored"
    cases = preprocess_cases(_cases(2))
    probs, seconds = predict_cases(model, cases)
    assert len(probs) == 2 and seconds > 0
    assert all((p[~c.fov] == 0).all() for p, c in zip(probs, cases))
    assert model.training, "training mode restored"


# ----------------------------------------------------------------------------- evaluation
def test_evaluate_against_sklearn_inside_fov():
    from sklearn.metrics import f1_score, roc_auc_score

    cases = _cases(3, seed=4)
    rng = np.random.default_rng(5)
    probs = [np.clip(c.vessels * 0.5 + rng.random(c.vessels.shape) * 0.7, 0, 1) for c in cases]
    out = evaluate_vessels(probs, cases, threshold=0.6)
    p = np.concatenate([pr[c.fov] for pr, c in zip(probs, cases)])
    t = np.concatenate([c.vessels[c.fov] for c in cases])
    assert out["auc"] == pytest.approx(roc_auc_score(t, p))
    assert out["f1"] == pytest.approx(f1_score(t, p > 0.6))
    thr = choose_threshold(probs, [c.vessels for c in cases], [c.fov for c in cases], criterion="f1")
    best = evaluate_vessels(probs, cases, thr)["f1"]
    assert all(best >= evaluate_vessels(probs, cases, u)["f1"] - 1e-12 for u in np.linspace(0.05, 0.95, 19))
    perfect = evaluate_vessels([c.vessels.astype(float) for c in cases], cases, 0.5)
    assert perfect["auc"] == 1.0 and perfect["f1"] == 1.0
    with pytest.raises(ValueError, match="one probability map per case"):
        evaluate_vessels(probs[:2], cases, 0.5)


def test_observer_metrics():
    ref = _cases(2, seed=7)
    same = observer_metrics(ref, ref)
    assert same["f1"] == 1.0 and same["accuracy"] == 1.0
    other = [FundusCase(c.name, c.image, np.zeros_like(c.vessels), c.fov) for c in ref]
    assert observer_metrics(ref, other)["sensitivity"] == 0.0
    with pytest.raises(DataError, match="do not match"):
        observer_metrics(ref, ref[::-1])


# ----------------------------------------------------------------------------- data and training
def test_load_vessel_data_synthetic_and_missing(tmp_path):
    data = load_vessel_data(tmp_path, n_val=1, max_train=3, max_test=2, synthetic_size=(64, 64))
    assert data.source == "synthetic" and "SYNTHETIC" in data.note and "drive.grand-challenge.org" in data.note
    assert (len(data.train), len(data.val), len(data.test), data.test_observer2) == (2, 1, 2, [])
    assert data.train[0].image.shape == (64, 64, 3)
    no_val = load_vessel_data(tmp_path, n_val=0, max_train=2, max_test=1, synthetic_size=(48, 48))
    assert no_val.val == [] and len(no_val.train) == 2
    with pytest.raises(DataError, match="grand-challenge"):
        load_vessel_data(tmp_path, synthetic=False)


def _fake_drive(root, second=True, h=40, w=36):
    """A tiny DRIVE tree: 3 training and 2 test cases, with or without 2nd_manual."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, numbers in (("training", ("21", "22", "23")), ("test", ("01", "02"))):
        folders = ["images", "1st_manual", "mask"] + (["2nd_manual"] if second and split == "test" else [])
        for sub in folders:
            (root / "DRIVE" / split / sub).mkdir(parents=True, exist_ok=True)
        for n in numbers:
            d = root / "DRIVE" / split
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / "images" / f"{n}_{split}.tif")
            for sub, name in (("1st_manual", f"{n}_manual1"), ("2nd_manual", f"{n}_manual2")):
                if sub in folders:
                    label = np.where(rng.random((h, w)) < 0.2, 255, 0).astype(np.uint8)
                    Image.fromarray(label, mode="L").save(d / sub / f"{name}.gif")
            fov = np.zeros((h, w), np.uint8)
            fov[3:-3, 3:-3] = 255
            Image.fromarray(fov, mode="L").save(d / "mask" / f"{n}_{split}_mask.gif")


def test_load_vessel_data_from_a_drive_tree(tmp_path):
    _fake_drive(tmp_path)
    data = load_vessel_data(tmp_path, n_val=1, seed=0)
    assert data.source == "real" and str(tmp_path) in data.note
    assert (len(data.train), len(data.val), len(data.test), len(data.test_observer2)) == (2, 1, 2, 2)
    assert sorted(c.name for c in data.train + data.val) == ["21_training", "22_training", "23_training"]
    assert data.train[0].image.shape == (40, 36, 3)
    forced = load_vessel_data(tmp_path, n_val=1, synthetic=True, max_train=2, max_test=1, synthetic_size=(48, 48))
    assert forced.source == "synthetic"


def test_load_vessel_data_without_second_observer(tmp_path):
    _fake_drive(tmp_path, second=False)
    data = load_vessel_data(tmp_path, n_val=1)
    assert data.source == "real" and data.test_observer2 == [] and len(data.test) == 2
    assert "No second observer" in data.note and "2nd_manual" in data.note


@pytest.mark.skipif(real_data_root() is None, reason="DRIVE not available (set COURSE_DATA_DIR)")
def test_load_vessel_data_real_drive():
    data = load_vessel_data(real_data_root(), n_val=2, seed=0)
    assert data.source == "real"
    assert (len(data.train), len(data.val), len(data.test), len(data.test_observer2)) == (18, 2, 20, 20)
    assert [c.name for c in data.test] == [c.name.replace("manual2", "test") for c in data.test_observer2]
    human = observer_metrics(data.test, data.test_observer2)
    assert 0.77 < human["f1"] < 0.82  # the second observer agrees with F1 of about 0.79-0.81


def test_train_model_learns_a_trivial_vessel_task():
    torch.manual_seed(0)
    cases = preprocess_cases(_cases(3, seed=1), clahe=False)
    loader = patch_loader(cases, patch_size=16, batch_size=8, samples_per_epoch=64, seed=0, augment_strength=0)
    val = patch_loader(cases, patch_size=16, batch_size=8, samples_per_epoch=16, seed=1, augment_strength=0, fixed=True)
    model = build_vessel_model(1, base_width=4, depth=2)
    history = train_model(model, loader, val_loader=val, lr=1e-2, epochs=6, show_progress=False, verbose=False)
    assert len(history) == 6 and all(math.isfinite(v) for v in history["train_loss"])
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["lr"][-1] < history["lr"][1], "the learning rate decays"
    probs, _ = predict_cases(model, cases)
    assert evaluate_vessels(probs, cases, 0.5)["auc"] > 0.9
    assert "val_dice" in history.records[-1]
    with pytest.raises(ValueError, match="epochs"):
        train_model(model, loader, lr=1e-2, epochs=0)
    with pytest.raises(ValueError, match="lr"):
        train_model(model, loader, lr=0.0, epochs=1)


def test_channels_last_model_predicts_the_same():
    from course_utils.layout import memory_layout, to_channels_last

    torch.manual_seed(3)
    model = build_vessel_model(1, base_width=4, depth=3).eval()
    image = torch.from_numpy(np.random.default_rng(1).random((1, 40, 36)).astype(np.float32))
    plain = predict_image(model, image, tta="flips")
    assert memory_layout(model) is None
    to_channels_last(model)
    assert memory_layout(model) == torch.channels_last
    torch.testing.assert_close(predict_image(model, image, tta="flips"), plain, atol=1e-5, rtol=0)
