import numpy as np
import pytest
import torch

from course_utils.data.augment import RandomFlipRotate90
from course_utils.data.drive import FundusCase
from course_utils.lessons.lesson03 import exercises as ex
from course_utils.losses import soft_dice_loss
from course_utils.metrics import binary_metrics, choose_threshold
from course_utils.selfcheck import CheckResult


def _case(seed=0, h=30, w=40):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    fov = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 2 - 1) ** 2
    vessels = (rng.random((h, w)) < 0.2) & fov
    return FundusCase(f"c{seed}", rng.random((h, w, 3)).astype(np.float32), vessels, fov)


def _stub(*args, **kwargs):
    """A student's function whose body is still `...`: it returns None."""


def _pending(result):
    return isinstance(result, CheckResult) and not result.ok and not result.attempted and "Not attempted" in str(result)


def test_placeholders_and_stubs_are_pending_not_errors():
    cases = [_case()]
    probs = [np.random.default_rng(0).random(cases[0].fov.shape).astype(np.float32)]
    for result in (
        ex.check_fov_metrics(...),
        ex.check_fov_metrics(_stub),
        ex.check_vessel_centre_fraction(...),
        ex.check_window_count(...),
        ex.check_empty_prediction_accuracy(..., cases),
        ex.check_flip_rotate(...),
        ex.check_flip_rotate(_stub),
        ex.check_soft_dice_loss(...),
        ex.check_soft_dice_loss(_stub),
        ex.check_threshold_experiment(..., ..., ..., 0.5, probs, cases),
        ex.check_threshold_experiment(False, "validation", ..., 0.5, probs, cases),
        ex.check_threshold_experiment(..., ..., 0.4, 0.5, probs, cases),
    ):
        assert _pending(result), result


# --------------------------------------------------------------------------- Exercise 7
def test_fov_metrics_right_and_typical_mistakes():
    def right(pred, truth, fov):
        p, t = pred[fov], truth[fov]
        return (p & t).sum() / t.sum(), (~p & ~t).sum() / (~t).sum()

    def whole_image(pred, truth, fov):
        return (pred & truth).sum() / truth.sum(), (~pred & ~truth).sum() / (~truth).sum()

    assert ex.check_fov_metrics(right)
    assert ex.check_fov_metrics(lambda p, t, f: dict(zip(("sensitivity", "specificity"), right(p, t, f))))
    outside = ex.check_fov_metrics(whole_image)
    assert not outside.ok and "outside the FOV" in outside.message
    swapped = ex.check_fov_metrics(lambda p, t, f: right(p, t, f)[::-1])
    assert not swapped.ok and "Swapped" in swapped.message
    crash = ex.check_fov_metrics(lambda p, t, f: 1 / 0)
    assert not crash.ok and "ZeroDivisionError" in crash.message
    assert "function itself" in ex.check_fov_metrics(0.5).message
    course = ex.check_fov_metrics(
        lambda p, t, f: tuple(binary_metrics(p, t, f)[k] for k in ("sensitivity", "specificity"))
    )
    assert course.ok


# --------------------------------------------------------------------------- Exercises 3, 5, 1
def test_vessel_centre_fraction():
    assert ex.check_vessel_centre_fraction(0.56)  # 0.5 + 0.5 * 0.12, by hand
    assert ex.check_vessel_centre_fraction(0.3 + 0.7 * 0.1, vessel_bias=0.3, vessel_fraction=0.1)
    assert "Almost" in ex.check_vessel_centre_fraction(0.5).message
    assert "uniform" in ex.check_vessel_centre_fraction(0.12).message
    assert not ex.check_vessel_centre_fraction(0.9)
    assert not ex.check_vessel_centre_fraction("half")


def test_window_count_by_hand():
    # 584 rows: starts 0, 48, ..., 480 (11) + 488 = 12; 565 columns: 0, ..., 432 (10) + 469 = 11.
    assert ex.check_window_count(132)
    assert ex.check_window_count(np.int64(132))
    assert "without overlap" in ex.check_window_count(7 * 6).message
    assert "last window" in ex.check_window_count(11 * 10).message
    assert not ex.check_window_count(131)
    assert not ex.check_window_count(132.0)
    assert ex.check_window_count(4, size=(64, 64), patch=32, overlap=0.0)  # 2 x 2 tiles


def test_empty_prediction_accuracy():
    cases = [_case(0), _case(1)]
    vessels = sum((c.vessels & c.fov).sum() for c in cases)
    fov = sum(c.fov.sum() for c in cases)
    assert ex.check_empty_prediction_accuracy(1 - vessels / fov, cases)
    whole = 1 - vessels / sum(c.vessels.size for c in cases)
    result = ex.check_empty_prediction_accuracy(whole, cases)
    assert not result.ok and "outside the FOV" in result.message
    assert not ex.check_empty_prediction_accuracy(0.5, cases)
    assert not ex.check_empty_prediction_accuracy([0.9], cases).ok


# --------------------------------------------------------------------------- Exercise 2: flips and turns
def _flip_rotate(image, target, fov, rng):
    """The notebook's solution."""
    arrays = [image, target, fov]
    for axis in (-1, -2):
        if rng.random() < 0.5:
            arrays = [np.flip(a, axis=axis) for a in arrays]
    k = int(rng.integers(4))
    return tuple(np.rot90(a, k, axes=(-2, -1)) for a in arrays)


def _with(flip_axes=(-1, -2), turns=4, image=(None, (-2, -1)), masks=(None, (-2, -1))):
    """A flip-and-turn with a slip: which flips, how many turns, and for the image and for the masks the flip
    axis (None: the right one) and the axes of the turn."""

    def fn(im, target, fov, rng):
        flips = [a for a in flip_axes if rng.random() < 0.5]
        k = int(rng.integers(turns))
        out = []
        for a, (flip_axis, turn_axes) in ((im, image), (target, masks), (fov, masks)):
            for axis in flips:
                a = np.flip(a, axis=axis if flip_axis is None else flip_axis)
            out.append(np.rot90(a, k, axes=turn_axes))
        return tuple(out)

    return fn


def test_flip_rotate_right_answers_pass():
    assert ex.check_flip_rotate(_flip_rotate)
    assert ex.check_flip_rotate(RandomFlipRotate90())  # the course version
    assert ex.check_flip_rotate(_with(flip_axes=(-1,)))  # one mirror and the four turns reach all 8 too


def test_flip_rotate_typical_mistakes():
    def image_only(image, target, fov, rng):
        return _flip_rotate(image, target, fov, rng)[0], target, fov

    def separate_draws(image, target, fov, rng):
        return _flip_rotate(image, target, fov, rng)[0], *_flip_rotate(image, target, fov, rng)[1:]

    def fov_left_behind(image, target, fov, rng):
        return (*_flip_rotate(image, target, fov, rng)[:2], fov)

    def global_rng(image, target, fov, rng):
        return _flip_rotate(image, target, fov, np.random.default_rng())

    def floats(image, target, fov, rng):
        return tuple(a.astype(np.float32) for a in _flip_rotate(image, target, fov, rng))

    def brighter(image, target, fov, rng):
        image, target, fov = _flip_rotate(image, target, fov, rng)
        return image * 0.9, target, fov

    expected = {
        image_only: "target stayed where it was",
        separate_draws: "moved differently",
        fov_left_behind: "fov stayed where it was",
        _with(turns=1): "Only flips",
        _with(flip_axes=()): "Only turns",
        _with(flip_axes=(-1,), turns=2): "never: turned 180 degrees",
        _with(flip_axes=(), image=(None, (0, 1)), masks=(None, (0, 1))): "last two axes|channels were swapped",
        _with(image=(0, (-2, -1)), masks=(0, (-2, -1))): "channels were swapped",
        global_rng: "same state",
        floats: "Bool masks",
        brighter: "values changed",
        (lambda image, target, fov, rng: (image, target)): "three arrays",
        (lambda image, target, fov, rng: 1 / 0): "ZeroDivisionError",
        (lambda image, target, fov, rng: (image, target, fov)): "never moved",
    }
    for fn, message in expected.items():
        result = ex.check_flip_rotate(fn)
        assert not result.ok and result.attempted, (message, result.message)
        assert any(m in result.message for m in message.split("|")), (message, result.message)
    assert "function itself" in ex.check_flip_rotate("flip").message


# --------------------------------------------------------------------------- Exercise 4: soft Dice
def _dice(logits, target, eps=1.0):
    """The notebook's solution."""
    prob = torch.sigmoid(logits)
    target = target.to(prob.dtype)
    inter = (prob * target).sum()
    return 1 - (2 * inter + eps) / (prob.sum() + target.sum() + eps)


def _generic(dims=None, sigmoid=True, eps_num=1.0, eps_den=1.0, one_minus=True, squares=False, mean=True):
    def fn(logits, target):
        p = torch.sigmoid(logits) if sigmoid else logits
        axes = dims or tuple(range(logits.ndim))
        inter = (p * target).sum(dim=axes)
        total = (p * p).sum(dim=axes) + (target * target).sum(dim=axes) if squares else p.sum(axes) + target.sum(axes)
        dice = (2 * inter + eps_num) / (total + eps_den)
        dice = dice.mean() if mean else dice
        return 1 - dice if one_minus else dice

    return fn


def test_soft_dice_right_answers_pass():
    assert ex.check_soft_dice_loss(_dice)
    assert ex.check_soft_dice_loss(soft_dice_loss)  # the course version
    assert ex.check_soft_dice_loss(_generic(dims=(0, 2, 3)))  # one channel: the same pool


def test_soft_dice_typical_mistakes():
    def per_pixel(logits, target):
        p = torch.sigmoid(logits)
        return 1 - ((2 * p * target + 1) / (p + target + 1)).mean()

    def nan_when_empty(logits, target):
        return soft_dice_loss(logits, target) if target.sum() > 0 else torch.tensor(float("nan"))

    expected = {
        _generic(sigmoid=False): "sigmoid is missing",
        _generic(one_minus=False): "1 - Dice",
        _generic(dims=(1, 2, 3)): "average the Dice of each image",
        per_pixel: "Dice of each pixel",
        _generic(eps_num=0.0, eps_den=0.0): "without eps",
        _generic(eps_num=0.0): "only in the denominator",
        _generic(squares=True): "V-Net",
        _generic(dims=(1, 2, 3), mean=False): "one number for the whole batch",
        (lambda logits, target: soft_dice_loss(logits, target).item()): "torch tensor",
        (lambda logits, target: soft_dice_loss(logits.detach(), target)): "no gradient",
        (lambda logits, target: soft_dice_loss(logits, target) + 0 * logits.detach().sum()): None,
        nan_when_empty: "empty mask",
        (lambda logits, target: torch.tensor(0.3)): "Expected",
        (lambda logits: logits): "TypeError",
    }
    for fn, message in expected.items():
        result = ex.check_soft_dice_loss(fn)
        if message is None:
            assert result.ok, result.message
            continue
        assert not result.ok and result.attempted and message in result.message, (message, result.message)
    assert (
        "function itself"
        in ex.check_soft_dice_loss(soft_dice_loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2))).message
    )


def test_soft_dice_without_eps_gives_nan_on_an_empty_mask_which_the_check_names():
    no_eps = _generic(eps_num=0.0, eps_den=0.0)
    assert torch.isnan(no_eps(torch.full((1, 1, 4, 4), -1e4), torch.zeros(1, 1, 4, 4)))
    assert soft_dice_loss(torch.full((1, 1, 4, 4), -1e4), torch.zeros(1, 1, 4, 4)).item() == 0.0
    assert "0 / 0" in ex.check_soft_dice_loss(no_eps).message


# --------------------------------------------------------------------------- Exercise 6: the threshold experiment
@pytest.fixture(scope="module")
def experiment():
    """Test cases and probabilities, and a threshold chosen on other (validation) images."""
    cases = [_case(s, 40, 50) for s in range(3)]
    rng = np.random.default_rng(5)
    probs = [np.clip(0.35 * c.vessels + 0.65 * rng.random(c.fov.shape), 0, 1).astype(np.float32) for c in cases]
    val = [_case(s, 40, 50) for s in (7, 8)]
    val_probs = [np.clip(0.5 * c.vessels + 0.5 * rng.random(c.fov.shape) ** 2, 0, 1) for c in val]
    honest = choose_threshold(val_probs, [c.vessels for c in val], [c.fov for c in val], criterion="f1")
    on_test = choose_threshold(probs, [c.vessels for c in cases], [c.fov for c in cases], criterion="f1")
    return cases, probs, honest, on_test


def _f1(probs, cases, t):
    return binary_metrics(
        [p.astype(np.float64) > t for p in probs], [c.vessels for c in cases], [c.fov for c in cases]
    )["f1"]


def test_threshold_experiment_by_construction(experiment):
    cases, probs, honest, on_test = experiment
    assert _f1(probs, cases, on_test) > _f1(probs, cases, honest)  # this data: a strict gain, never a loss
    result = ex.check_threshold_experiment(False, "validation", on_test, honest, probs, cases)
    assert result.ok and "never lower" in result.message and f"{_f1(probs, cases, on_test):.4f}" in result.message
    assert ex.check_threshold_experiment(np.bool_(False), "Validation-chosen", on_test, honest, probs, cases)
    assert ex.check_threshold_experiment(False, "training", on_test, honest, probs, cases, chosen_on="training")


def test_threshold_experiment_wrong_answers(experiment):
    cases, probs, honest, on_test = experiment
    lower = ex.check_threshold_experiment(True, "validation", on_test, honest, probs, cases)
    assert not lower.ok and "Can it ever be lower?" in lower.message
    report_test = ex.check_threshold_experiment(False, "test", on_test, honest, probs, cases)
    assert not report_test.ok and "fitted to the test labels" in report_test.message
    not_best = ex.check_threshold_experiment(False, "validation", honest, honest, probs, cases)
    assert not not_best.ok and "choose it with choose_threshold" in not_best.message
    assert "True or False" in ex.check_threshold_experiment("no", "validation", on_test, honest, probs, cases).message
    assert "answer 'test' or" in ex.check_threshold_experiment(False, "both", on_test, honest, probs, cases).message
    assert "one number" in ex.check_threshold_experiment(False, "validation", [0.4], honest, probs, cases).message


def test_threshold_experiment_a_tie_is_named(experiment):
    cases, probs, _, on_test = experiment
    result = ex.check_threshold_experiment(False, "validation", on_test, on_test, probs, cases)
    assert result.ok and "a tie here" in result.message
