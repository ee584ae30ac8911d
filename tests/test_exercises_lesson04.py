import numpy as np
import pytest
import torch
from scipy import ndimage

from course_utils.lessons.lesson04 import exercises as ex
from course_utils.metrics.lesions import lesion_detection
from course_utils.selfcheck import CheckResult
from course_utils.training import training_step


def test_placeholders_are_pending_not_errors():
    stubs = (
        ex.check_toy_dice(...),
        ex.check_lesion_sensitivity(...),
        ex.check_lesion_sensitivity(lambda pred, truth: None),
        ex.check_window_count(...),
        ex.check_training_step(...),
        ex.check_training_step(lambda model, batch, optimizer, loss_fn: None),
        ex.check_connectivity_experiment({}, ..., ...),
        ex.check_connectivity_experiment({}, "no", ...),
    )
    for result in stubs:
        assert isinstance(result, CheckResult) and not result.ok and not result.attempted


def test_toy_dice_right_and_typical_mistakes():
    truth, pred = ex.toy_volumes()
    assert truth.sum() == 8 and pred.sum() == 12 and (truth & pred).sum() == 8
    assert ex.check_toy_dice(0.8)  # 2 * 8 / (12 + 8), by hand
    iou = ex.check_toy_dice(8 / 12)
    assert not iou.ok and "Jaccard" in iou.message
    assert "precision or sensitivity" in ex.check_toy_dice(1.0).message
    assert not ex.check_toy_dice("a lot").ok


def _labels(mask, structure=None):
    return ndimage.label(mask, structure)


def test_lesion_sensitivity_right_and_typical_mistakes():
    def right(pred, truth):
        labels, n = ndimage.label(truth, np.ones((3, 3, 3)))
        return sum(pred[labels == k].any() for k in range(1, n + 1)) / n

    def six_connected(pred, truth):
        labels, n = ndimage.label(truth)
        return sum(pred[labels == k].any() for k in range(1, n + 1)) / n

    def voxelwise(pred, truth):
        return (pred & truth).sum() / truth.sum()

    def precision(pred, truth):
        labels, n = ndimage.label(pred, np.ones((3, 3, 3)))
        return sum(truth[labels == k].any() for k in range(1, n + 1)) / n

    assert ex.check_lesion_sensitivity(right)
    assert "6-connected" in ex.check_lesion_sensitivity(six_connected).message
    assert "voxel-wise" in ex.check_lesion_sensitivity(voxelwise).message
    assert "precision" in ex.check_lesion_sensitivity(precision).message
    assert "failed" in ex.check_lesion_sensitivity(lambda p, t: 1 / 0).message
    assert "function itself" in ex.check_lesion_sensitivity(0.5).message


def test_lesion_toy_counts_by_hand():
    pred, truth = ex.lesion_toy()
    assert _labels(truth, np.ones((3, 3, 3)))[1] == 7 and _labels(truth)[1] == 8
    assert _labels(pred, np.ones((3, 3, 3)))[1] == 6


def test_window_count_right_and_typical_mistakes():
    # (91, 109, 91), patch 32, step 16: starts 0,16,32,48 + 59 -> 5; 0..64 + 77 -> 6; 5
    assert ex.check_window_count(5 * 6 * 5)
    assert "without overlap" in ex.check_window_count(3 * 4 * 3).message
    assert "Close" in ex.check_window_count(4 * 5 * 4).message
    assert "Multiply" in ex.check_window_count(16).message
    assert not ex.check_window_count(150.0).ok
    assert ex.check_window_count(1, shape=(20, 20, 20), patch=32)


# ----- exercise 1: the training step ---------------------------------------------------------------------
def _step(zero=True, step=True, backward=1, returned="item", eval_mode=False, step_first=False):
    """A training step with one of the common slips."""

    def fn(model, batch, optimizer, loss_fn):
        images, targets = batch
        if eval_mode:
            model.eval()
        loss = loss_fn(model(images), targets)
        if zero:
            optimizer.zero_grad()
        if step_first:
            optimizer.step()
        for i in range(backward):
            loss.backward(retain_graph=i < backward - 1)
        if step and not step_first:
            optimizer.step()
        return {"item": loss.item(), "tensor": loss, "detached": loss.detach(), "none": None}[returned]

    return fn


def test_the_course_step_and_a_right_step_pass():
    assert ex.check_training_step(training_step)
    result = ex.check_training_step(_step())
    assert result.ok and "same loss" in result.message


def test_the_check_leaves_the_global_random_state_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    ex.check_training_step(_step())
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "slip, message",
    [
        (dict(zero=False), "zero_grad() is missing"),
        (dict(step=False), "did not move"),
        (dict(step_first=True), "did not move"),  # zero_grad sets .grad to None: step() has nothing to apply
        (dict(zero=False, step_first=True), "before loss.backward() went back"),
        (dict(backward=2), "backward() ran twice"),
        (dict(backward=2, zero=False), "backward() ran twice"),
        (dict(returned="tensor"), "with its graph"),
        (dict(returned="detached"), "not as a tensor"),
        (dict(returned="none"), "returns nothing"),
        (dict(eval_mode=True), "eval mode"),
    ],
)
def test_each_common_slip_of_the_training_step_is_named(slip, message):
    result = ex.check_training_step(_step(**slip))
    assert not result.ok and result.attempted and message in result.message, result.message


def test_backward_twice_without_retain_graph_and_other_failures():
    def twice(model, batch, optimizer, loss_fn):
        loss = loss_fn(model(batch[0]), batch[1])
        optimizer.zero_grad()
        loss.backward()
        loss.backward()
        optimizer.step()
        return loss.item()

    def no_grad(model, batch, optimizer, loss_fn):
        with torch.no_grad():
            loss = loss_fn(model(batch[0]), batch[1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def loss_after_the_update(model, batch, optimizer, loss_fn):
        training_step(model, batch, optimizer, loss_fn)
        return loss_fn(model(batch[0]), batch[1]).item()

    def on_probabilities(model, batch, optimizer, loss_fn):
        return training_step(model, batch, optimizer, lambda logits, y: loss_fn(torch.sigmoid(logits), y))

    assert "ran twice on the same graph" in ex.check_training_step(twice).message
    assert "no graph" in ex.check_training_step(no_grad).message
    assert "not this batch's loss" in ex.check_training_step(loss_after_the_update).message
    assert "differ from the course's step" in ex.check_training_step(on_probabilities).message
    assert "failed" in ex.check_training_step(lambda model, batch, optimizer: 0.0).message
    assert "function itself" in ex.check_training_step(0.5).message


def test_forgetting_only_the_return_is_not_mistaken_for_the_stub():
    def forward_only(model, batch, optimizer, loss_fn):
        loss_fn(model(batch[0]), batch[1]).backward()  # gradients accumulate, no step, nothing returned

    result = ex.check_training_step(forward_only)
    assert result.attempted and not result.ok


# ----- exercise 3: the course's lesion sensitivity (used when the learner's does not pass) -------------------
def test_course_lesion_sensitivity_passes_its_own_check():
    assert ex.check_lesion_sensitivity(ex.course_lesion_sensitivity)
    pred, truth = ex.lesion_toy()
    assert ex.course_lesion_sensitivity(pred, truth) == lesion_detection(pred, truth)["sensitivity"]
    # precision is sensitivity with the roles swapped: predicted lesions that touch a true one
    assert ex.course_lesion_sensitivity(truth, pred) == lesion_detection(pred, truth)["precision"]


# ----- exercise 5: 6- against 26-connectivity ---------------------------------------------------------------
def _measured(pred, truth):
    return {26: lesion_detection(pred, truth), 6: lesion_detection(pred, truth, connectivity=6)}


def test_six_never_counts_fewer_lesions_than_26():
    """The property the experiment rests on, on random masks of every density."""
    rng = np.random.default_rng(0)
    for density in (0.02, 0.1, 0.3, 0.5):
        mask = rng.random((16, 16, 16)) < density
        assert ndimage.label(mask)[1] >= ndimage.label(mask, np.ones((3, 3, 3)))[1]


def test_the_connectivity_answers_are_judged_by_the_property():
    pred, truth = ex.lesion_toy()
    measured = _measured(pred, truth)
    assert measured[6]["n_true"] > measured[26]["n_true"]  # the toy has a lesion joined only at a corner
    result = ex.check_connectivity_experiment(measured, "no", "b")
    assert result.ok and f"{measured[6]['n_true']} true lesions against {measured[26]['n_true']}" in result.message
    assert ex.check_connectivity_experiment({"26": measured[26], "6": measured[6]}, False, "(B)").ok
    fewer = ex.check_connectivity_experiment(measured, "yes", "b")
    assert not fewer.ok and "cannot" in fewer.message
    assert "rise too" in ex.check_connectivity_experiment(measured, "no", "a").message
    assert "counts are not" in ex.check_connectivity_experiment(measured, "no", "c").message
    # masks where nothing splits: the right answer still passes, and the message says why nothing moved
    blob = np.zeros((8, 8, 8), bool)
    blob[2:5, 2:5, 2:5] = True
    same = ex.check_connectivity_experiment(_measured(blob, blob), "no", "b")
    assert same.ok and "nothing split" in same.message


def test_the_connectivity_check_refuses_bad_input():
    pred, truth = ex.lesion_toy()
    measured = _measured(pred, truth)
    assert "connectivity = 6" in ex.check_connectivity_experiment({26: measured[26]}, "no", "b").message
    swapped = ex.check_connectivity_experiment({26: measured[6], 6: measured[26]}, "no", "b")
    assert not swapped.ok and "swapped" in swapped.message
    assert "lesion_detection" in ex.check_connectivity_experiment([1, 2], "no", "b").message
    assert "'yes' or 'no'" in ex.check_connectivity_experiment(measured, "maybe", "b").message
    assert "'a', 'b' or 'c'" in ex.check_connectivity_experiment(measured, "no", "d").message
