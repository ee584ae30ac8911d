"""course_utils.lessons.lesson05.pipeline: the plumbing of lesson 05's comparison.

Tiny models and images, CPU, seconds.
"""

import copy

import numpy as np
import pytest
import torch

from course_utils.checkpoint import checkpoint_path, find_checkpoint, load_checkpoint, load_model, save_checkpoint
from course_utils.config import get_config
from course_utils.data.synthetic_fundus import synthetic_drive
from course_utils.errors import ConfigError
from course_utils.lessons.lesson05.pipeline import (
    CHECKPOINT_KIND,
    LESSON,
    build_variant,
    evaluate_variant,
    make_optimizer,
    model_record,
    parse_sizes,
    prepare_inputs,
    select_training_images,
    train_variant,
)
from course_utils.models.pretrained import NormalizedInput, pretrained_unet
from course_utils.schedules import WarmupCosine

SMALL_ENCODER = "tu-mobilenetv3_small_050"  # a small timm encoder: the same code path as EfficientNet-Lite1


@pytest.fixture(scope="module")
def pretrained():
    torch.manual_seed(123)
    return pretrained_unet(None, encoder_name=SMALL_ENCODER)  # stands in for the ImageNet model


@pytest.fixture(scope="module")
def cases():
    return synthetic_drive(3, 1, size=(64, 64), seed=0)


def _encoder_state(net):
    return {k: v.clone() for k, v in net.encoder.state_dict().items()}


def test_parse_sizes():
    assert parse_sizes("20, 2,5") == [2, 5, 20]
    assert parse_sizes([5, 2, 2]) == [2, 5]
    for bad in ("", "0,2", "two"):
        with pytest.raises(ConfigError, match="sizes"):
            parse_sizes(bad)


def test_training_subsets_are_nested_and_repeatable():
    items = list(range(20))
    two, five, again = (select_training_images(items, n, seed=3) for n in (2, 5, 2))
    assert two == again and two == five[:2] and len(set(five)) == 5
    assert select_training_images(items, 50) == select_training_images(items, 20)
    with pytest.raises(ConfigError):
        select_training_images(items, 0)


def test_inputs_have_the_channels_each_network_expects(cases):
    train, _ = cases
    green, rgb = prepare_inputs(train, "green_clahe"), prepare_inputs(train, "rgb")
    assert green[0].image.shape == (64, 64, 1) and rgb[0].image.shape == (64, 64, 3)
    assert np.all(rgb[0].image[~train[0].fov] == 0), "outside the FOV is 0"
    np.testing.assert_allclose(rgb[0].image[train[0].fov], train[0].image[train[0].fov])  # no CLAHE
    assert green[0].vessels is train[0].vessels
    with pytest.raises(ConfigError):
        prepare_inputs(train, "lab")


def test_normalized_input_applies_the_encoder_normalisation():
    net = torch.nn.Identity()
    model = NormalizedInput(net, (0.5, 0.25, 0.0), (0.5, 0.25, 2.0))
    x = torch.ones(1, 3, 2, 2)
    assert torch.allclose(model(x)[0, :, 0, 0], torch.tensor([1.0, 3.0, 0.5]))
    assert list(model.state_dict()) == [], "mean and std are not saved: the checkpoint is the inner network's"


def _two_groups():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([{"params": [a], "lr": 1e-4}, {"params": [b], "lr": 1e-3}], lr=1e-3)


def test_schedule_keeps_the_ratio_between_groups():
    opt = _two_groups()
    schedule = WarmupCosine(opt, total_steps=20)
    for _ in range(7):
        opt.step()
        schedule.step()
        enc, dec = (g["lr"] for g in opt.param_groups)
        assert enc == pytest.approx(dec / 10)
        assert schedule.get_last_lr() == pytest.approx([enc, dec])
    assert 0 < dec < 1e-3
    assert schedule.base_lrs == pytest.approx([1e-4, 1e-3]), "each group's initial lr is its peak"
    for p in (0.0, 0.3, 1.0):
        assert schedule.lr_at(p, group=0) == pytest.approx(schedule.lr_at(p, group=1) / 10)
        assert schedule.lr_at(p, group=1) == pytest.approx(1e-3 * schedule.factor_at(p))


def test_schedule_state_dict_round_trip():
    opt = _two_groups()
    schedule = WarmupCosine(opt, total_steps=20, warmup=0.1, final_ratio=0.05)
    for _ in range(6):
        opt.step()
        schedule.step()
    state = schedule.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 6
    fresh_opt = _two_groups()
    fresh = WarmupCosine(fresh_opt, total_steps=5)  # other settings: the state brings them back
    fresh.load_state_dict(state)
    assert fresh.total_steps == 20 and fresh.warmup == 0.1 and fresh.final_ratio == 0.05
    assert fresh.progress() == pytest.approx(schedule.progress()) == pytest.approx(6 / 20)
    opt.step()
    schedule.step()
    fresh_opt.step()
    fresh.step()
    assert fresh.get_last_lr() == pytest.approx(schedule.get_last_lr())
    assert [g["lr"] for g in fresh_opt.param_groups] == pytest.approx([g["lr"] for g in opt.param_groups])
    assert schedule.get_last_lr()[1] == pytest.approx(schedule.lr_at(7 / 20, group=1))


def test_variants_differ_only_where_they_should(pretrained):
    reference = _encoder_state(pretrained)
    frozen = build_variant("frozen_pretrained", pretrained, seed=1)
    tuned = build_variant("finetuned_pretrained", pretrained, seed=1)
    random = build_variant("random_encoder", pretrained, seed=1)
    scratch = build_variant("scratch_unet", pretrained, base_width=4, depth=2, seed=1)
    assert frozen.net is not pretrained and tuned.net is not pretrained
    for key, value in reference.items():
        assert torch.equal(tuned.net.encoder.state_dict()[key], value)
    assert any(
        not torch.equal(random.net.encoder.state_dict()[k], v)
        for k, v in reference.items()
        if v.dtype.is_floating_point
    )
    # same seed: the three smp variants start with the same decoder and head
    for other in (frozen, random):
        for (k, v), w in zip(tuned.net.decoder.state_dict().items(), other.net.decoder.state_dict().values()):
            assert torch.equal(v, w), k
        assert torch.equal(tuned.net.segmentation_head[0].weight, other.net.segmentation_head[0].weight)
    encoder_params = sum(p.numel() for p in pretrained.encoder.parameters())
    assert frozen.counts()["trainable"] == frozen.counts()["total"] - encoder_params
    assert tuned.counts()["trainable"] == tuned.counts()["total"]
    assert scratch.input_kind == "green_clahe" and tuned.input_kind == "rgb" and scratch.encoder_weights == "none"
    assert tuned.encoder_weights == pretrained.encoder_info.weights
    with pytest.raises(ConfigError, match="pretrained"):
        build_variant("frozen_pretrained", None)
    with pytest.raises(ConfigError, match="Did you mean .finetuned_pretrained."):
        build_variant("fine_tuned", pretrained)


def test_optimizers_give_each_variant_its_learning_rates(pretrained):
    tuned = make_optimizer(build_variant("finetuned_pretrained", pretrained), lr=1e-3, encoder_lr_ratio=0.1)
    assert {g["name"]: g["lr"] for g in tuned.param_groups} == pytest.approx({"encoder": 1e-4, "decoder": 1e-3})
    frozen = make_optimizer(build_variant("frozen_pretrained", pretrained), lr=1e-3)
    assert [g["name"] for g in frozen.param_groups] == ["decoder"]
    random = make_optimizer(build_variant("random_encoder", pretrained), lr=1e-3, encoder_lr_ratio=0.1)
    assert all(g["lr"] == 1e-3 for g in random.param_groups), "a random encoder has nothing to protect"
    assert len(make_optimizer(build_variant("scratch_unet", base_width=4, depth=2), lr=1e-3).param_groups) == 1


def test_an_optimizer_function_builds_the_groups_and_trains_as_the_course_one_does(pretrained, cases):
    """The hook lesson 05's learner fills: their own parameter groups, trained with the same recipe."""
    calls = []

    def groups_by_hand(model, lr, encoder_lr):
        calls.append((lr, encoder_lr))
        encoder = list(model.encoder.parameters())
        ids = {id(p) for p in encoder}
        rest = [p for p in model.parameters() if id(p) not in ids]
        return torch.optim.AdamW([{"params": rest, "lr": lr}, {"params": encoder, "lr": encoder_lr}])

    variant = build_variant("finetuned_pretrained", pretrained)
    optimizer = make_optimizer(variant, lr=1e-3, encoder_lr_ratio=0.1, weight_decay=3e-4, optimizer_fn=groups_by_hand)
    assert calls == [(1e-3, pytest.approx(1e-4))] and all(g["weight_decay"] == 3e-4 for g in optimizer.param_groups)
    with pytest.raises(TypeError, match="torch.optim"):
        make_optimizer(variant, lr=1e-3, optimizer_fn=lambda m, lr, e: None)
    train, _ = cases
    rgb = prepare_inputs(train, "rgb")
    kwargs = dict(steps=2, patch_size=32, batch_size=2, log_every=2, lr=1e-2)
    for name in ("finetuned_pretrained", "frozen_pretrained"):
        course = build_variant(name, pretrained)
        mine = build_variant(name, pretrained)
        train_variant(course, rgb, **kwargs)
        train_variant(mine, rgb, optimizer_fn=groups_by_hand, **kwargs)
        for (key, a), b in zip(course.net.state_dict().items(), mine.net.state_dict().values()):
            torch.testing.assert_close(a, b, msg=f"{name}: {key}")


def test_frozen_encoder_stays_fixed_while_finetuned_one_learns_and_scores_are_valid(pretrained, cases):
    train, test = cases
    rgb_train, rgb_test = prepare_inputs(train, "rgb"), prepare_inputs(test, "rgb")
    kwargs = dict(steps=3, patch_size=32, batch_size=2, log_every=2, lr=1e-2)
    frozen = build_variant("frozen_pretrained", pretrained)
    before = _encoder_state(frozen.net)
    decoder_before = copy.deepcopy(frozen.net.decoder.state_dict())
    result = train_variant(frozen, rgb_train, **kwargs)
    assert result.steps == 4 and len(result.history) == 2 and result.history.records[-1]["step"] == 4
    for key, value in frozen.net.encoder.state_dict().items():
        assert torch.equal(value, before[key]), f"frozen encoder changed: {key}"
    assert any(not torch.equal(v, decoder_before[k]) for k, v in frozen.net.decoder.state_dict().items())
    tuned = build_variant("finetuned_pretrained", pretrained)
    train_variant(tuned, rgb_train, **kwargs)
    assert any(not torch.equal(v, before[k]) for k, v in tuned.net.encoder.state_dict().items() if "running" in k), (
        "fine-tuning updates the encoder's BatchNorm statistics too"
    )
    scores = evaluate_variant(tuned, rgb_train[:1], rgb_test)
    assert 0 <= scores["f1"] <= 1 and 0 <= scores["auc"] <= 1 and 0 <= scores["threshold"] <= 1


def test_finetuned_checkpoint_rebuilds_for_lesson_06(pretrained):
    """The contract with lesson 06: a ModelRecord at checkpoint_path, rebuilt by load_model from the file alone."""
    variant = build_variant("finetuned_pretrained", pretrained, seed=2)
    info = variant.net.encoder_info
    cfg = get_config(LESSON, "smoke")
    record = model_record(
        variant.net,
        cfg,
        threshold=0.4,
        threshold_source="1 training image, pooled F1",
        n_train_images=2,
        steps=4,
        seconds=1.5,
        data_source="synthetic",
    )
    assert (record.lesson, record.kind, record.profile, record.builder) == (
        LESSON,
        CHECKPOINT_KIND,
        "smoke",
        "pretrained_unet",
    )
    assert record.model_config["encoder_name"] == info.encoder_name and record.inputs == ["red", "green", "blue"]
    assert record.normalisation["mean"] == list(info.mean) and record.normalisation["std"] == list(info.std)
    path = save_checkpoint(
        checkpoint_path(LESSON, CHECKPOINT_KIND, "smoke"),
        variant.net,
        history=[{"step": 1, "train_loss": 0.5}],
        record=record,
        on_exists="rename",
    )
    assert path.name == "finetuned-smoke.pt" and find_checkpoint(LESSON, CHECKPOINT_KIND, "cpu,smoke") == path
    ckpt = load_checkpoint(path)
    assert ckpt["model_config"] == record.model_config and ckpt["history"] == [{"step": 1, "train_loss": 0.5}]
    rebuilt, loaded = load_model(path)
    assert loaded == record and not rebuilt.training
    x = torch.rand(1, 3, 64, 64)
    wrapped = NormalizedInput(rebuilt, loaded.normalisation["mean"], loaded.normalisation["std"])
    with torch.no_grad():
        assert torch.allclose(wrapped(x), variant.model.eval()(x), atol=1e-6)
    assert loaded.threshold == 0.4 and loaded.training["data"] == "synthetic"
    # the rebuilt network says where its weights came from, not the random start it was built from
    assert rebuilt.encoder_info.weights == "file" and str(path) in rebuilt.encoder_info.source
