"""Mixed precision choices (course_utils.precision) and their use in the training loop."""

import pytest
import torch
from torch import nn

from course_utils.errors import ConfigError
from course_utils.precision import amp_dtype, autocast, cpu_has_native_bf16, describe_precision, needs_grad_scaler
from course_utils.training import fit


def test_off_is_float32_everywhere():
    for amp in (False, "off"):
        assert amp_dtype("cpu", amp) is None
        assert amp_dtype("cuda", amp) is None
    assert describe_precision("cpu", "off") == "float32"


def test_auto_picks_the_devices_fast_type():
    assert amp_dtype("cuda", "auto") is torch.float16 and amp_dtype("cuda", True) is torch.float16
    expected = torch.bfloat16 if cpu_has_native_bf16() else None
    assert amp_dtype("cpu", "auto") is expected and amp_dtype("cpu", True) is expected


def test_explicit_types_and_their_limits():
    assert amp_dtype("cpu", "bf16") is torch.bfloat16
    assert amp_dtype("cuda", "fp16") is torch.float16
    with pytest.raises(ConfigError, match="CUDA"):
        amp_dtype("cpu", "fp16")
    with pytest.raises(ConfigError, match="not understood"):
        amp_dtype("cpu", "half")


def test_only_float16_needs_gradient_scaling():
    assert needs_grad_scaler("cuda", "fp16") and needs_grad_scaler("cuda", True)
    assert not needs_grad_scaler("cpu", "bf16") and not needs_grad_scaler("cuda", "bf16")
    assert not needs_grad_scaler("cuda", "off")


def test_autocast_runs_convolutions_in_bfloat16_on_cpu():
    conv = nn.Conv2d(1, 2, 3)
    x = torch.randn(1, 1, 8, 8)
    with autocast("cpu", "bf16"):
        assert conv(x).dtype is torch.bfloat16
    with autocast("cpu", "off"):
        assert conv(x).dtype is torch.float32


def test_fit_in_bfloat16_learns_and_keeps_float32_weights():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 8, 8)
    y = (x > 0).float()
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))
    loader = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = fit(
        model,
        loader,
        nn.BCEWithLogitsLoss(),
        opt,
        epochs=15,
        val_loader=loader,
        device="cpu",
        amp="bf16",
        show_progress=False,
        verbose=False,
    )
    losses = history["train_loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.dtype is torch.float32 for p in model.parameters())
    assert "val_loss" in history.records[-1]
