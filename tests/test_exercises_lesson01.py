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


# ----------------------------------------------------------------------------- the learner's pieces as stubs
def test_stubs_of_functions_and_classes_are_pending():
    def grad_stub(w, b, x, y): ...

    class FlipStub(Dataset):
        def __init__(self, base): ...

        def __len__(self): ...

        def __getitem__(self, i): ...

    base = ShapesDataset(4, 32)
    for result in (ex.check_mse_gradient(grad_stub), ex.check_dataset(FlipStub(base), base)):
        assert not result.ok and not result.attempted, result.message


def test_mse_gradient_of_the_wrong_shape():
    result = ex.check_mse_gradient(lambda w, b, x, y: (2 * (w * x + b - y) * x, 2 * (w * x + b - y)))
    assert not result.ok and ".mean()" in result.message
    assert "pair" in ex.check_mse_gradient(lambda w, b, x, y: 3.0).message


def test_line_fit_gradient_is_the_hand_formula():
    from course_utils.lessons.lesson01.pipeline import line_fit_gradient

    assert ex.check_mse_gradient(line_fit_gradient)
    x = torch.linspace(-1, 1, 40)
    y = 2 * x - 0.5
    w, b = torch.tensor(0.3), torch.tensor(0.1)
    r = w * x + b - y
    dw, db = line_fit_gradient(w, b, x, y)
    assert torch.allclose(dw, 2 * (r * x).mean()) and torch.allclose(db, 2 * r.mean())
    assert not w.requires_grad and w.grad is None  # the inputs are left alone


# ----------------------------------------------------------------------------- Exercise 3: the learning rate
def _descend(lr, steps):
    """The notebook's gradient descent on its line-fit data."""
    from course_utils.lessons.lesson01.pipeline import line_fit_gradient

    g = torch.Generator().manual_seed(0)
    xs = torch.linspace(-1, 1, 40)
    ys = 2.0 * xs - 0.5 + 0.2 * torch.randn(40, generator=g)
    w, b, losses = torch.tensor(0.0), torch.tensor(0.0), []
    for _ in range(steps):
        losses.append(((w * xs + b - ys) ** 2).mean().item())
        dw, db = line_fit_gradient(w, b, xs, ys)
        w, b = w - lr * dw, b - lr * db
    return xs, losses


def test_learning_rate_experiment_the_notebooks_run_diverges():
    xs, losses = _descend(0.1, 100)
    _, large = _descend(1.5, 21)
    assert large[-1] > 1e6 * large[0]  # the property the solution states: lr = 1.5 > 2 / 2 = 1 diverges
    result = ex.check_learning_rate_experiment("diverges", losses, large, 0.1, 1.5, xs)
    assert result.ok and "2 / 2.00 = 1.00" in result.message
    assert ex.check_learning_rate_experiment("Diverged", losses, large, 0.1, 1.5)
    assert "not always faster" in ex.check_learning_rate_experiment("faster", losses, large, 0.1, 1.5, xs).message
    assert not ex.check_learning_rate_experiment("slower", losses, large, 0.1, 1.5).ok


def test_learning_rate_experiment_judges_other_learning_rates_by_the_measurement():
    xs, losses = _descend(0.1, 100)
    _, medium = _descend(0.5, 21)
    assert ex.check_learning_rate_experiment("faster", losses, medium, 0.1, 0.5, xs)
    assert not ex.check_learning_rate_experiment("diverges", losses, medium, 0.1, 0.5, xs).ok
    _, small = _descend(0.01, 21)
    assert ex.check_learning_rate_experiment("slower", losses, small, 0.1, 0.01, xs)


def test_learning_rate_experiment_bad_inputs():
    xs, losses = _descend(0.1, 100)
    assert _pending_state(ex.check_learning_rate_experiment(..., losses, losses[:21], 0.1, 1.5))
    assert "one of" in ex.check_learning_rate_experiment("explodes!", losses, losses[:21], 0.1, 1.5).message
    assert "one of" in ex.check_learning_rate_experiment("same", losses, losses[:21], 0.1, 0.1).message
    assert "change it" in ex.check_learning_rate_experiment("faster", losses, losses[:21], 0.1, 0.1).message
    assert "Run the experiment" in ex.check_learning_rate_experiment("faster", losses, [1.0], 0.1, 1.5).message


def _pending_state(result):
    return not result.ok and not result.attempted
