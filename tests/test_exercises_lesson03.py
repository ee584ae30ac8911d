import numpy as np

from course_utils.data.drive import FundusCase
from course_utils.lessons.lesson03 import exercises as ex
from course_utils.selfcheck import CheckResult


def _case(seed=0, h=30, w=40):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    fov = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 2 - 1) ** 2
    vessels = (rng.random((h, w)) < 0.2) & fov
    return FundusCase(f"c{seed}", rng.random((h, w, 3)).astype(np.float32), vessels, fov)


def test_placeholders_are_pending_not_errors():
    for result in (
        ex.check_fov_metrics(...),
        ex.check_vessel_centre_fraction(...),
        ex.check_window_count(...),
        ex.check_empty_prediction_accuracy(..., [_case()]),
    ):
        assert isinstance(result, CheckResult) and not result.ok and not result.attempted
        assert "Not attempted" in str(result)


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
