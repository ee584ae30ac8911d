"""Mixed precision: which low-precision float a device computes fast, and the autocast context for it.

``amp`` values accepted everywhere in the course (``fit``, ``train_model``, inference):

* ``False`` / ``"off"``: float32 throughout.
* ``True`` / ``"auto"``: the device's fast type: float16 on CUDA (with gradient scaling),
  bfloat16 on a CPU with native bfloat16 instructions (AVX512-BF16 or AMX; about 1.7x faster
  convolutions on this course's CI machine), float32 on other CPUs (emulated bfloat16 is slower).
* ``"bf16"`` / ``"fp16"``: that type, on any device that supports it.

Only the model's forward pass runs in low precision; losses are computed in float32 on
``logits.float()`` and the weights stay float32 (autocast keeps master weights).
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache
from typing import ContextManager

import torch

from .errors import ConfigError

AMP_CHOICES = (False, True, "off", "auto", "bf16", "fp16")


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True where oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(device: torch.device | str, amp: bool | str) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or ``None`` for plain float32."""
    if amp not in AMP_CHOICES:
        raise ConfigError(f"amp={amp!r} is not understood; use one of {AMP_CHOICES}.")
    kind = torch.device(device).type
    if amp in (False, "off") or kind not in ("cuda", "cpu"):
        return None
    if amp in (True, "auto"):
        if kind == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if amp == "fp16":
        if kind != "cuda":
            raise ConfigError("amp='fp16' needs a CUDA GPU; on a CPU use amp='bf16' or amp='auto'.")
        return torch.float16
    return torch.bfloat16


def autocast(device: torch.device | str, amp: bool | str) -> ContextManager:
    """``torch.autocast`` for ``amp`` on ``device`` (a no-op context for float32)."""
    dtype = amp_dtype(device, amp)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def needs_grad_scaler(device: torch.device | str, amp: bool | str) -> bool:
    """float16 gradients underflow without loss scaling; bfloat16 has float32's range and needs none."""
    return amp_dtype(device, amp) == torch.float16


def describe_precision(device: torch.device | str, amp: bool | str) -> str:
    """``'float32'``, ``'bfloat16 autocast'`` or ``'float16 autocast'``."""
    dtype = amp_dtype(device, amp)
    return "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"
