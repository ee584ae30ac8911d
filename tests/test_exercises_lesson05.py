import numpy as np
import pytest
import torch
from torch import nn

from course_utils.lessons.lesson05 import exercises as ex
from course_utils.models.pretrained import pretrained_unet
from course_utils.selfcheck import CheckResult


@pytest.fixture(scope="module")
def model():
    return pretrained_unet(None, encoder_name="tu-mobilenetv3_small_050")


def test_placeholders_are_pending_not_errors(model):
    for result in (
        ex.check_trainable_after_freezing(..., model),
        ex.check_freeze_function(...),
        ex.check_discriminative_optimizer(..., model, 1e-3, 1e-4),
    ):
        assert isinstance(result, CheckResult) and not result.ok and not result.attempted


def test_trainable_after_freezing(model):
    encoder = sum(p.numel() for p in model.encoder.parameters())
    decoder = sum(p.numel() for p in model.decoder.parameters())
    head = sum(p.numel() for p in model.segmentation_head.parameters())
    assert ex.check_trainable_after_freezing(decoder + head, model)
    assert ex.check_trainable_after_freezing(np.int64(decoder + head), model)
    assert "every parameter" in ex.check_trainable_after_freezing(encoder + decoder + head, model).message
    assert "encoder" in ex.check_trainable_after_freezing(encoder, model).message
    assert "segmentation head" in ex.check_trainable_after_freezing(decoder, model).message
    assert not ex.check_trainable_after_freezing(float(decoder + head), model)
    assert not ex.check_trainable_after_freezing(True, model)


def test_freeze_function_right_and_typical_mistakes():
    def right(m):
        for p in m.encoder.parameters():
            p.requires_grad_(False)
        for layer in m.encoder.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.eval()

    def grads_only(m):
        for p in m.encoder.parameters():
            p.requires_grad_(False)

    def whole_model_eval(m):
        grads_only(m)
        m.eval()

    def everything(m):
        for p in m.parameters():
            p.requires_grad_(False)

    def forgot_grads(m):
        m.encoder.eval()

    assert ex.check_freeze_function(right)
    assert "running mean" in ex.check_freeze_function(grads_only).message
    assert "not the whole model" in ex.check_freeze_function(whole_model_eval).message
    assert "Nothing trains" in ex.check_freeze_function(everything).message
    assert "requires_grad=True" in ex.check_freeze_function(forgot_grads).message
    assert "function itself" in ex.check_freeze_function(3).message
    assert "ZeroDivisionError" in ex.check_freeze_function(lambda m: 1 / 0).message


def test_discriminative_optimizer(model):
    enc = list(model.encoder.parameters())
    ids = {id(p) for p in enc}
    rest = [p for p in model.parameters() if id(p) not in ids]
    decoder_only = list(model.decoder.parameters())

    def adam(groups):
        return torch.optim.AdamW(groups, lr=1e-3)

    assert ex.check_discriminative_optimizer(
        adam([{"params": enc, "lr": 1e-4}, {"params": rest, "lr": 1e-3}]), model, lr=1e-3, encoder_lr=1e-4
    )
    swapped = ex.check_discriminative_optimizer(
        adam([{"params": enc, "lr": 1e-3}, {"params": rest, "lr": 1e-4}]), model, lr=1e-3, encoder_lr=1e-4
    )
    assert "Swapped" in swapped.message
    one = ex.check_discriminative_optimizer(adam(model.parameters()), model, lr=1e-3, encoder_lr=1e-4)
    assert "One parameter group" in one.message
    no_head = ex.check_discriminative_optimizer(
        adam([{"params": enc, "lr": 1e-4}, {"params": decoder_only, "lr": 1e-3}]), model, lr=1e-3, encoder_lr=1e-4
    )
    assert "segmentation head" in no_head.message
    wrong_lr = ex.check_discriminative_optimizer(
        adam([{"params": enc, "lr": 1e-5}, {"params": rest, "lr": 1e-3}]), model, lr=1e-3, encoder_lr=1e-4
    )
    assert not wrong_lr and "expected" in wrong_lr.message
    assert not ex.check_discriminative_optimizer([1e-3, 1e-4], model, lr=1e-3, encoder_lr=1e-4)
