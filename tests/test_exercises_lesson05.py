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
    def stub(*args):  # what the student edition's functions are: a body of `...`
        ...

    for result in (
        ex.check_trainable_after_freezing(..., model),
        ex.check_freeze_function(...),
        ex.check_freeze_function(stub),
        ex.check_discriminative_optimizer(..., model),
        ex.check_discriminative_optimizer(stub, model),
        ex.check_frozen_training(..., 0.0, 0.1),
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

    def attribute_only(m):
        m.encoder.requires_grad = False  # a plain attribute: reaches no parameter

    assert "with the underscore" in ex.check_freeze_function(attribute_only).message
    assert "function itself" in ex.check_freeze_function(3).message
    assert "ZeroDivisionError" in ex.check_freeze_function(lambda m: 1 / 0).message
    assert "Exercise 4" in ex.check_freeze_function(right).message


def test_discriminative_optimizer(model):
    def build(groups_of, optimizer=torch.optim.AdamW):
        def fn(m, lr, encoder_lr):
            enc = list(m.encoder.parameters())
            ids = {id(p) for p in enc}
            rest = [p for p in m.parameters() if id(p) not in ids]
            return optimizer(groups_of(enc, rest, list(m.decoder.parameters()), lr, encoder_lr, m), lr=lr)

        return fn

    right = build(lambda enc, rest, dec, lr, elr, m: [{"params": enc, "lr": elr}, {"params": rest, "lr": lr}])
    assert ex.check_discriminative_optimizer(right, model, lr=1e-3, encoder_lr=1e-4)
    assert ex.check_discriminative_optimizer(right, model)  # the notebook's defaults
    swapped = build(lambda enc, rest, dec, lr, elr, m: [{"params": enc, "lr": lr}, {"params": rest, "lr": elr}])
    assert "Swapped" in ex.check_discriminative_optimizer(swapped, model).message
    one = build(lambda enc, rest, dec, lr, elr, m: m.parameters())
    assert "One parameter group" in ex.check_discriminative_optimizer(one, model).message
    no_head = build(lambda enc, rest, dec, lr, elr, m: [{"params": enc, "lr": elr}, {"params": dec, "lr": lr}])
    assert "segmentation head" in ex.check_discriminative_optimizer(no_head, model).message
    wrong_lr = build(lambda enc, rest, dec, lr, elr, m: [{"params": enc, "lr": elr / 10}, {"params": rest, "lr": lr}])
    result = ex.check_discriminative_optimizer(wrong_lr, model)
    assert not result and "expected" in result.message
    adam = build(
        lambda enc, rest, dec, lr, elr, m: [{"params": enc, "lr": elr}, {"params": rest, "lr": lr}], torch.optim.Adam
    )
    assert "AdamW" in ex.check_discriminative_optimizer(adam, model).message
    assert "optimiser" in ex.check_discriminative_optimizer(lambda m, lr, e: [lr, e], model).message
    assert "failed" in ex.check_discriminative_optimizer(lambda m: None, model).message
    assert "function itself" in ex.check_discriminative_optimizer(right(model, 1e-3, 1e-4), model).message
    # the course's version passes too, and the check never changes the model it is given
    from course_utils.lessons.lesson05.pipeline import encoder_decoder_adamw

    before = [p.clone() for p in model.parameters()]
    assert ex.check_discriminative_optimizer(encoder_decoder_adamw, model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_frozen_training_experiment_is_judged_by_the_measured_changes():
    only_statistics = ex.check_frozen_training("statistics", 0.0, 0.02)
    assert only_statistics and "model.train()" in only_statistics.message and "pre-hook" in only_statistics.message
    assert ex.check_frozen_training("running statistics", 0.0, 0.02)
    assert ex.check_frozen_training("BatchNorm", 0.0, 0.02)
    said_neither = ex.check_frozen_training("neither", 0.0, 0.02)
    assert not said_neither and "'statistics'" in said_neither.message
    course_freeze = ex.check_frozen_training("neither", 0.0, 0.0)
    assert course_freeze and "survives model.train()" in course_freeze.message
    assert not ex.check_frozen_training("statistics", 0.0, 0.0)
    assert "requires_grad=True" in ex.check_frozen_training("both", 0.1, 0.02).message
    assert "one of" in ex.check_frozen_training("bias", 0.0, 0.02).message
    assert "numbers" in ex.check_frozen_training("statistics", None, "x").message
