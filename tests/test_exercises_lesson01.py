import torch
from torch.utils.data import Dataset

from course_utils.data import ShapesDataset
from course_utils.lessons.lesson01 import exercises as ex
from course_utils.selfcheck import CheckResult


def test_placeholders_are_pending_not_errors():
    for check in (ex.check_broadcast_shape, ex.check_mse_gradient, ex.check_dataset, ex.check_conv_parameters):
        result = check(...)
        assert isinstance(result, CheckResult) and not result.ok and not result.attempted
        assert "Not attempted" in str(result)


def test_broadcast_shape():
    assert ex.check_broadcast_shape((3, 4, 5))
    assert ex.check_broadcast_shape(torch.Size([3, 4, 5]))
    assert "as many axes" in ex.check_broadcast_shape((4, 5)).message
    assert "Align the shapes" in ex.check_broadcast_shape((3, 1, 5)).message
    assert "tuple of ints" in ex.check_broadcast_shape("3,4,5").message


def test_mse_gradient_right_and_typical_mistakes():
    def right(w, b, x, y):
        r = w * x + b - y
        return 2 * (r * x).mean(), 2 * r.mean()

    assert ex.check_mse_gradient(right)
    half = ex.check_mse_gradient(lambda w, b, x, y: tuple(g / 2 for g in right(w, b, x, y)))
    assert not half.ok and "factor 2" in half.message
    neg = ex.check_mse_gradient(lambda w, b, x, y: tuple(-g for g in right(w, b, x, y)))
    assert not neg.ok and "sign" in neg.message
    summed = ex.check_mse_gradient(lambda w, b, x, y: tuple(g * len(x) for g in right(w, b, x, y)))
    assert not summed.ok and "mean" in summed.message
    crash = ex.check_mse_gradient(lambda w, b, x, y: 1 / 0)
    assert not crash.ok and "ZeroDivisionError" in crash.message


def test_dataset_check():
    assert ex.check_dataset(ShapesDataset(4, 32))
    assert "instance" in ex.check_dataset(ShapesDataset).message

    class Bad(Dataset):
        def __init__(self, dtype=torch.float32, shape=(1, 8, 8), mask_value=1.0):
            self.dtype, self.shape, self.mask_value = dtype, shape, mask_value

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return torch.zeros(self.shape, dtype=self.dtype), torch.full((1, 8, 8), self.mask_value)

    assert "float32" in ex.check_dataset(Bad(dtype=torch.float64)).message
    assert "channels first" in ex.check_dataset(Bad(shape=(8, 8))).message
    assert "only 0 and 1" in ex.check_dataset(Bad(mask_value=255.0)).message


def test_conv_parameters():
    assert ex.check_conv_parameters(448)
    assert "bias" in ex.check_conv_parameters(432).message
    assert "all 3 input channels" in ex.check_conv_parameters(160).message
    assert not ex.check_conv_parameters(True).ok


def test_training_improved():
    assert ex.check_training_improved([{"val_dice": 0.1}, {"val_dice": 0.8}])
    assert not ex.check_training_improved([{"val_dice": 0.5}, {"val_dice": 0.5}])
    assert not ex.check_training_improved([{"loss": 1.0}])


class _Flips(Dataset):
    """Wraps ``base``; ``image_only``/``up_down``/``always``/``never`` make the common mistakes."""

    def __init__(self, base, mode="right"):
        self.base, self.mode = base, mode

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        coin = bool(torch.rand(()) < 0.5)
        if self.mode == "never" or (self.mode != "always" and not coin):
            return x, y
        if self.mode == "image_only":
            return x.flip(-1), y
        if self.mode == "up_down":
            return x.flip(-2), y.flip(-2)
        return x.flip(-1), y.flip(-1)


def test_dataset_check_needs_image_and_mask_flipped_together():
    """Issue #16: the unchanged data set used to pass the flip exercise."""
    base = ShapesDataset(6, 32)
    assert ex.check_dataset(_Flips(base), base).ok
    unchanged = ex.check_dataset(base, base)
    assert not unchanged.ok and "None of" in unchanged.message
    assert "only one of image and mask" in ex.check_dataset(_Flips(base, "image_only"), base).message
    assert "up-down" in ex.check_dataset(_Flips(base, "up_down"), base).message
    assert "All" in ex.check_dataset(_Flips(base, "always"), base).message
    assert "serve the 6 pairs" in ex.check_dataset(ShapesDataset(4, 32), base).message


def test_pending_message_names_the_notebooks_variable():
    assert "n_params_conv" in ex.check_conv_parameters(...).message
