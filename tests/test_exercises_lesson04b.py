"""Self-checks of lesson 04b: the shell contrast (exercise 1) and the in-sample experiment (exercise 2)."""

import numpy as np
import pytest
from scipy import ndimage

from course_utils.lessons.lesson04b import exercises as ex


def _contrast(width=2, others=True, in_brain=True, itself=False, sign=1.0):
    def shell_contrast(image, labels, k, brain):
        inside = labels == k
        shell = ndimage.binary_dilation(inside, np.ones((3, 3, 3)), iterations=width)
        if not itself:
            shell &= ~inside
        if others:
            shell &= (labels == 0) | (inside & itself)
        if in_brain:
            shell &= brain
        return sign * (image[inside].mean() - image[shell].mean())

    return shell_contrast


def test_the_right_shell_contrast_passes():
    result = ex.check_shell_contrast(_contrast())
    assert result.ok and "candidate_features" in result.message


@pytest.mark.parametrize(
    "slip, message",
    [
        (dict(width=1), "one voxel wide"),
        (dict(others=False), "other candidates"),
        (dict(in_brain=False), "outside the brain"),
        (dict(itself=True), "candidate itself"),
        (dict(sign=-1.0), "sign is reversed"),
    ],
)
def test_each_common_slip_is_named(slip, message):
    result = ex.check_shell_contrast(_contrast(**slip))
    assert not result.ok and message in result.message


def test_the_toy_makes_every_rule_matter():
    """Each slip changes at least one candidate's contrast, so the check can tell them apart."""
    image, labels, brain = ex.contrast_toy()
    right = [_contrast()(image, labels, k, brain) for k in (1, 2, 3)]
    for slip in (dict(width=1), dict(others=False), dict(in_brain=False), dict(itself=True)):
        values = [_contrast(**slip)(image, labels, k, brain) for k in (1, 2, 3)]
        assert not np.allclose(values, right, atol=1e-3), slip


def test_shell_contrast_not_attempted_and_not_callable():
    assert not ex.check_shell_contrast(...).attempted
    assert "function itself" in ex.check_shell_contrast(3.0).message
    assert "failed" in ex.check_shell_contrast(lambda image, labels, k: 0.0).message


def test_the_stub_is_pending_and_the_course_contrast_passes():
    assert not ex.check_shell_contrast(lambda image, labels, k, brain: None).attempted
    assert ex.check_shell_contrast(ex.course_shell_contrast).ok
    image, labels, brain = ex.contrast_toy()
    assert [ex.course_shell_contrast(image, labels, k, brain) for k in (1, 2, 3)] == pytest.approx(
        [_contrast()(image, labels, k, brain) for k in (1, 2, 3)], abs=1e-5
    )
    with pytest.raises(ValueError, match="no candidate 9"):
        ex.course_shell_contrast(image, labels, 9, brain)


def _metrics(f1, n_pred=10, precision=0.5, sensitivity=0.4):
    return dict(lesion_f1=f1, n_pred_lesions=n_pred, lesion_precision=precision, lesion_sensitivity=sensitivity)


@pytest.mark.parametrize("in_sample_f1", [0.3, 0.5, 0.7], ids=["out-of-fold wins", "a tie", "in-sample wins"])
def test_the_right_answers_pass_whatever_the_run_measured(in_sample_f1):
    """The answers are properties: the instructor's fixed answers pass in every profile, on any data."""
    result = ex.check_in_sample_experiment(_metrics(in_sample_f1, n_pred=20, precision=0.2), _metrics(0.5), "yes", "b")
    assert result.ok
    assert "16 false lesions left" in result.message, "the numbers of the run are in the message"
    assert ("same lesion F1" in result.message) == (in_sample_f1 == 0.5)
    assert ex.check_in_sample_experiment(_metrics(in_sample_f1), _metrics(0.5), True, "(B)").ok


def test_the_wrong_answers_are_explained():
    in_sample, oof = _metrics(0.3), _metrics(0.5)
    never = ex.check_in_sample_experiment(in_sample, oof, "no", "b")
    assert not never.ok and "noisy judge" in never.message and "out-of-fold filter gave the higher" in never.message
    assert "Not on every patient" in ex.check_in_sample_experiment(in_sample, oof, "yes", "a").message
    assert "enters neither" in ex.check_in_sample_experiment(in_sample, oof, "yes", "c").message


def test_the_experiment_refuses_bad_input():
    oof = _metrics(0.5)
    assert not ex.check_in_sample_experiment(..., oof, "yes", "b").attempted
    assert not ex.check_in_sample_experiment(_metrics(0.1), oof, ..., ...).attempted
    assert "'yes' or 'no'" in ex.check_in_sample_experiment(_metrics(0.1), oof, "both", "b").message
    assert "'a', 'b' or 'c'" in ex.check_in_sample_experiment(_metrics(0.1), oof, "yes", "d").message
    assert "metrics dict" in ex.check_in_sample_experiment(0.3, oof, "yes", "b").message
    assert "itself" in ex.check_in_sample_experiment(oof, oof, "yes", "b").message
    assert ex.false_lesions(_metrics(0.1, n_pred=7, precision=3 / 7)) == 4
