"""Lesson 06 self-checks: a right answer passes, typical mistakes fail with a helpful message."""

import torch

from course_utils.featurevis import total_variation
from course_utils.lessons.lesson06 import exercises as ex
from course_utils.selfcheck import CheckResult


def test_placeholders_are_pending_not_errors():
    for result in (ex.check_total_variation(...), ex.check_call_counter(...), ex.check_noise_regulariser(...)):
        assert isinstance(result, CheckResult) and not result.ok and not result.attempted


def test_total_variation_by_hand():
    # hand computation of TV_IMAGE: horizontal |1-0| + |1-1| + |3-0| + |1-3| + |2-2| + |1-2| = 7,
    # vertical |0-0| + |2-0| + |3-1| + |2-3| + |1-1| + |1-1| = 5
    assert ex.check_total_variation(12)
    assert ex.check_total_variation(12.0)
    assert float(total_variation(torch.tensor(ex.TV_IMAGE)[None, None])) == 12.0  # the package agrees
    assert "one direction" in ex.check_total_variation(7).message
    assert "one direction" in ex.check_total_variation(5).message
    assert "squared" in ex.check_total_variation(24).message
    assert "absolute" in ex.check_total_variation(4).message
    assert not ex.check_total_variation(11)
    assert "one number" in ex.check_total_variation("twelve").message


def _right(model, layer, x):
    calls = 0

    def hook(module, inputs, output):
        nonlocal calls
        calls += 1

    handle = dict(model.named_modules())[layer].register_forward_hook(hook)
    try:
        model(x)
    finally:
        handle.remove()
    return calls


def test_call_counter_right_and_typical_mistakes():
    assert ex.check_call_counter(_right)

    def leaves_hook(model, layer, x):
        calls = []
        dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: calls.append(1))
        model(x)
        return len(calls)

    assert "still registered" in ex.check_call_counter(leaves_hook).message

    def ran_or_not(model, layer, x):
        return min(_right(model, layer, x), 1)

    assert "twice" in ex.check_call_counter(ran_or_not).message

    def no_finally(model, layer, x):
        calls = []
        handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: calls.append(1))
        model(x)
        handle.remove()
        return len(calls)

    assert "raises" in ex.check_call_counter(no_finally).message
    assert "function itself" in ex.check_call_counter(3).message
    assert "failed" in ex.check_call_counter(lambda m, layer, x: 1 / 0).message


def test_noise_regulariser():
    assert ex.check_noise_regulariser("tv")
    assert ex.check_noise_regulariser("Total variation")
    assert not ex.check_noise_regulariser("l2") and "smaller" in ex.check_noise_regulariser("l2").message
    assert not ex.check_noise_regulariser("jitter") and "not a term" in ex.check_noise_regulariser("jitter").message
    assert not ex.check_noise_regulariser("none")
    assert "one of" in ex.check_noise_regulariser("dropout").message
