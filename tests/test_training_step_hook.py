"""``step_fn``: a lesson's own training step inside the course's one loop (``fit`` / ``train_model``).

The default (``step_fn=None``) is the loop as it was; :func:`course_utils.training.training_step` as ``step_fn``
trains the same network under every option of ``fit`` (mixed precision, channels-last, EMA, gradient clipping,
gradient scaling, a schedule).
"""

import inspect

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.recipe import train_model
from course_utils.seeding import seed_everything
from course_utils.training import fit, train_one_epoch, training_step


def _task(n=32, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, size, size, size, generator=g)
    y = (x[:, :1] > 0.6).float()
    return TensorDataset(x, y)


def _model():
    return nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(), nn.Conv3d(4, 1, 3, padding=1))


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()] + [b.flatten() for b in model.buffers()])


def _fit(step_fn=None, optimizer="adamw", **kw):
    g = seed_everything(3)
    model = _model()
    loader = DataLoader(_task(), batch_size=8, shuffle=True, generator=g)
    opt = (torch.optim.AdamW if optimizer == "adamw" else torch.optim.SGD)(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (1 + s))
    hist = fit(
        model,
        loader,
        nn.BCEWithLogitsLoss(),
        opt,
        epochs=2,
        device="cpu",
        scheduler=sched,
        show_progress=False,
        verbose=False,
        step_fn=step_fn,
        **kw,
    )
    return hist["train_loss"], hist["lr"], _weights(model)


def test_the_default_is_no_hook_and_is_lesson_01s_loop():
    for fn in (fit, train_one_epoch, train_model):
        assert inspect.signature(fn).parameters["step_fn"].default is None
    # by hand: forward, loss, zero_grad, backward, step, as in lesson 01
    seed_everything(3)
    model = _model()
    loader = DataLoader(_task(), batch_size=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(2):
        for x, y in loader:
            loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    seed_everything(3)
    fitted = _model()
    loader = DataLoader(_task(), batch_size=8)
    fit(
        fitted,
        loader,
        nn.BCEWithLogitsLoss(),
        torch.optim.SGD(fitted.parameters(), lr=0.05),
        epochs=2,
        device="cpu",
        show_progress=False,
        verbose=False,
    )
    assert torch.equal(_weights(fitted), _weights(model))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"optimizer": "sgd"},
        {"channels_last": True, "ema_decay": 0.5},
        {"amp": "bf16"},
        {"amp": "bf16", "channels_last": True, "ema_decay": 0.9, "grad_clip": 0.05},
        {"grad_clip": 0.01},
    ],
    ids=["plain", "sgd", "channels-last+ema", "bf16", "bf16+channels-last+ema+clip", "clip"],
)
def test_training_step_as_step_fn_trains_the_same_network_under_every_option(options):
    default_loss, default_lr, default_w = _fit(None, **options)
    hook_loss, hook_lr, hook_w = _fit(training_step, **options)
    assert hook_loss == pytest.approx(default_loss, rel=1e-6)
    assert hook_lr == default_lr  # the scheduler stepped once per batch in both
    assert torch.allclose(hook_w, default_w, rtol=1e-6, atol=1e-7)


def test_a_gradient_scaler_and_clipping_act_around_the_step_fn():
    """float16 on CUDA scales the loss; a step written for float32 still trains as the default one does."""
    if not hasattr(torch.amp, "GradScaler"):
        pytest.skip("this torch has no device-generic GradScaler")
    try:
        torch.amp.GradScaler("cpu", init_scale=2.0**10)
    except Exception as err:  # pragma: no cover - old torch
        pytest.skip(f"no GradScaler on the CPU here: {err}")
    results = []
    for step_fn in (None, training_step):
        seed_everything(5)
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        loss = train_one_epoch(
            model,
            DataLoader(_task(), batch_size=8),
            nn.BCEWithLogitsLoss(),
            opt,
            torch.device("cpu"),
            scaler=scaler,
            grad_clip=0.05,
            show_progress=False,
            step_fn=step_fn,
        )
        results.append((loss, _weights(model)))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-6), "the recorded loss is the unscaled one"
    assert torch.allclose(results[1][1], results[0][1], rtol=1e-6, atol=1e-7)


def test_the_step_fn_sees_the_batch_on_the_device_in_the_models_layout():
    seen = []

    def spy(model, batch, optimizer, loss_fn):
        x, y = batch
        seen.append((tuple(x.shape), x.is_contiguous(memory_format=torch.channels_last_3d), model.training))
        return training_step(model, batch, optimizer, loss_fn)

    _fit(spy, channels_last=True)
    assert len(seen) == 2 * 4  # two epochs of four batches
    assert all(shape == (8, 2, 8, 8, 8) and channels_last and training for shape, channels_last, training in seen)


def test_train_model_passes_the_step_fn_on():
    results = []
    for step_fn in (None, training_step):
        g = seed_everything(1)
        model = _model()
        history = train_model(
            model,
            DataLoader(_task(), batch_size=8, shuffle=True, generator=g),
            lr=1e-2,
            epochs=2,
            device="cpu",
            ema_decay=0.9,
            show_progress=False,
            verbose=False,
            step_fn=step_fn,
        )
        results.append((history["train_loss"], _weights(model)))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-6)
    assert torch.allclose(results[1][1], results[0][1], rtol=1e-6, atol=1e-7)


def test_a_broken_step_fn_is_reported():
    with pytest.raises(TypeError, match="returned nothing"):
        _fit(lambda model, batch, optimizer, loss_fn: None)
    with pytest.raises(TypeError, match="step_fn must be a function"):
        _fit("training_step")

    def nan_loss(model, batch, optimizer, loss_fn):
        return training_step(model, (batch[0] * float("nan"), batch[1]), optimizer, loss_fn)

    with pytest.raises(FloatingPointError, match="learning rate"):
        _fit(nan_loss)

    def returns_the_tensor(model, batch, optimizer, loss_fn):
        loss = loss_fn(model(batch[0]), batch[1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    # a tensor is accepted and its graph let go of (the lesson's check asks the learner for loss.item())
    assert _fit(returns_the_tensor)[0] == pytest.approx(_fit(None)[0], rel=1e-6)
