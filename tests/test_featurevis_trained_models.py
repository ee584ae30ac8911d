"""Lesson 06 (course_utils.lessons.lesson06.pipeline): loading the networks of lessons 03-05 through their
checkpoint contracts (ModelRecord + load_model), and the fallbacks."""

import numpy as np
import pytest
import torch

from course_utils.checkpoint import ModelRecord, checkpoint_path, save_checkpoint
from course_utils.config import get_config
from course_utils.data.drive import FundusCase
from course_utils.errors import ConfigError
from course_utils.lessons.lesson03 import pipeline as lesson03_pipeline
from course_utils.lessons.lesson04 import pipeline as lesson04_pipeline
from course_utils.lessons.lesson05 import pipeline as lesson05_pipeline
from course_utils.lessons.lesson06 import pipeline as tm
from course_utils.models import UNet

torch.set_num_threads(1)


def _fundus_case(h=24, w=20):
    yy, xx = np.mgrid[:h, :w]
    fov = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 2) ** 2
    return FundusCase("21_training", np.zeros((h, w, 3), np.float32), np.zeros((h, w), bool), fov)


def test_drive_unet_loads_the_lesson03_checkpoint():
    torch.manual_seed(0)
    model = UNet(in_channels=3, out_channels=1, depth=2, base_width=2)
    cfg = get_config("03_drive_vessels", "smoke", channel="rgb")
    record = lesson03_pipeline.model_record(
        model,
        cfg,
        threshold=0.4,
        threshold_source="validation, pooled F1",
        train_cases=[_fundus_case()],
        data_source="synthetic",
        seconds=2.0,
        epochs=1,
    )
    assert record.inputs == ["red", "green", "blue"] and record.kind == lesson03_pipeline.CHECKPOINT_KIND == "unet"
    path = save_checkpoint(
        checkpoint_path(lesson03_pipeline.LESSON, "unet", "smoke"), model, record=record, on_exists="rename"
    )
    net = tm.drive_unet("smoke")
    assert net.loaded and net.origin == "loaded" and net.path == path
    assert net.in_channels == 3 and net.dims == 2 and net.meta["threshold"] == 0.4
    assert "loaded" in net.note and str(path) in net.note
    x = torch.rand(1, 3, 8, 8)
    model.eval()
    assert torch.allclose(net.model(x), model(x))
    assert not net.model.training


def test_lesson06_refuses_a_checkpoint_without_a_record():
    torch.manual_seed(0)
    model = UNet(in_channels=1, out_channels=1, depth=2, base_width=2)
    save_checkpoint(
        checkpoint_path("03_drive_vessels", "unet", "smoke"), model, meta={"channel": "green", "threshold": 0.4}
    )  # the old way: meta only
    with pytest.raises(ConfigError, match="no model record"):
        tm.drive_unet("smoke")


def test_mri_unet_loads_the_lesson04_checkpoint():
    torch.manual_seed(1)
    model = UNet(in_channels=3, out_channels=1, dims=3, depth=2, base_width=2)
    cfg = get_config("04_mri_lesions", "cpu")
    with pytest.raises(ConfigError, match=r"modalities='FLAIR,T1' names 2 input image\(s\), but the model has 3"):
        lesson04_pipeline.model_record(
            model,
            get_config("04_mri_lesions", "cpu", modalities="FLAIR,T1"),
            spacing_mm=[2.0] * 3,
            threshold=0.5,
            threshold_source="-",
            train_cases=[],
            data_source="synthetic",
            seconds=1.0,
            epochs=1,
        )
    record = lesson04_pipeline.model_record(
        model,
        cfg,
        spacing_mm=[2.0, 2.0, 2.0],
        threshold=0.5,
        threshold_source="training cases, mean Dice",
        train_cases=["patient01"],
        data_source="synthetic",
        seconds=3.0,
        epochs=2,
    )
    assert record.kind == lesson04_pipeline.CHECKPOINT_KIND == "unet3d" and record.spacing_mm == [2.0, 2.0, 2.0]
    save_checkpoint(checkpoint_path(lesson04_pipeline.LESSON, "unet3d", "cpu"), model, record=record)
    net = tm.mri_unet("smoke,cpu")
    assert net.loaded and net.dims == 3 and net.in_channels == 3
    assert net.meta["modalities"] == ["FLAIR", "T1", "T2"] and net.meta["spacing_mm"] == 2.0
    x = torch.randn(1, 3, 4, 4, 4)
    model.eval()
    assert torch.allclose(net.model(x), model(x))


@pytest.mark.parametrize("wrapped", [False, True])
def test_imagenet_unet_loads_the_lesson05_checkpoint(wrapped):
    from course_utils.models.pretrained import pretrained_unet

    torch.manual_seed(2)
    model = pretrained_unet(None, encoder_name="resnet18", in_channels=1)
    saved = torch.nn.Module()
    saved.net = model  # lesson 05 may save the model inside its normalisation wrapper
    record = ModelRecord(
        lesson=lesson05_pipeline.LESSON,
        kind=lesson05_pipeline.CHECKPOINT_KIND,
        profile="smoke",
        builder="pretrained_unet",
        model_config={"builder": "pretrained_unet", "encoder_name": "resnet18", "in_channels": 1, "classes": 1},
        inputs=["green"],
        normalisation={"method": "mean_std", "mean": [0.5], "std": [0.25], "encoder_weights": "imagenet-lite1"},
        spacing_mm=None,
        inference={"mode": "whole image", "tta": "none"},
        threshold=0.5,
        threshold_source="test",
        training={"data": "synthetic", "encoder_weights": "imagenet-lite1"},
    )
    save_checkpoint(
        checkpoint_path("05_transfer_learning", "finetuned", "smoke"), saved if wrapped else model, record=record
    )
    net = tm.imagenet_unet("smoke")
    assert net.loaded and net.in_channels == 1
    assert net.normalize == ((0.5,), (0.25,))
    assert net.meta["encoder_weights"] == "imagenet-lite1" and "imagenet-lite1" in net.note
    x = torch.rand(1, 1, 32, 32)
    model.eval()
    assert torch.allclose(net.model(x), model(x))


def test_missing_checkpoints_fall_back_and_say_so(monkeypatch):
    calls = {}

    def fake_drive(**kwargs):
        calls["drive"] = kwargs
        return UNet(in_channels=1, depth=2, base_width=2).eval(), {"channel": "green", "data": "synthetic"}, 2.0

    def fake_mri(**kwargs):
        calls["mri"] = kwargs
        return (
            UNet(in_channels=2, dims=3, depth=2, base_width=2).eval(),
            {"modalities": ["FLAIR", "T1"], "data": "synthetic"},
            3.0,
        )

    monkeypatch.setattr(tm, "train_drive_fallback", fake_drive)
    monkeypatch.setattr(tm, "train_mri_fallback", fake_mri)
    drive = tm.drive_unet("smoke", epochs=2)
    mri = tm.mri_unet("smoke", epochs=3)
    assert drive.origin == mri.origin == "trained here" and not drive.loaded and drive.path is None
    assert "TRAINED HERE" in drive.note and "lesson 03" in drive.note
    assert "TRAINED HERE" in mri.note and "lesson 04" in mri.note
    assert calls["drive"]["epochs"] == 2 and calls["mri"]["epochs"] == 3


def test_mri_fallback_trains_a_3d_unet_on_given_cases():
    import numpy as np

    from course_utils.mri import MRICase

    rng = np.random.default_rng(0)
    brain = np.zeros((12, 12, 12), bool)
    brain[2:10, 2:10, 2:10] = True
    label = np.zeros((12, 12, 12), np.uint8)
    label[5:7, 5:7, 5:7] = 1
    images = {m: (rng.standard_normal((12, 12, 12)) + 3 * label).astype(np.float32) for m in ("FLAIR", "T1")}
    case = MRICase("tiny", images, label, brain, np.eye(4))
    model, meta, seconds = tm.train_mri_fallback(
        epochs=2, cases=[case], patch_size=8, base_width=2, depth=2, verbose=False
    )
    assert model.dims == 3 and model.in_channels == 2 and not model.training
    assert meta["modalities"] == ["FLAIR", "T1"] and meta["patch_size"] == 8
    with pytest.raises(ValueError, match="epochs"):
        tm.train_mri_fallback(epochs=0, cases=[case])


def test_encoder_stage_names_are_shallow_to_deep_and_exist():
    from course_utils.models.pretrained import pretrained_unet

    encoder = pretrained_unet(None, encoder_name="resnet18").encoder
    names = tm.encoder_stage_names(encoder)
    assert names == ["layer1", "layer2", "layer3", "layer4"]
    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 3))
    assert tm.encoder_stage_names(plain) == ["0", "2"]


def test_voxel_spacing():
    assert tm.voxel_spacing(2) == 2.0
    assert tm.voxel_spacing([1.0, 1.0, 3.0]) == 3.0
    with pytest.raises(ValueError, match="spacing_mm"):
        tm.voxel_spacing([0.0, 1.0])


def test_parse_profiles():
    assert tm.parse_profiles("cpu, smoke,cpu") == ["cpu", "smoke"]
    assert tm.parse_profiles(["gpu"]) == ["gpu"]
    for bad in ("", "laptop", ["cpu", "tpu"]):
        with pytest.raises(ConfigError, match="profiles must be among"):
            tm.parse_profiles(bad)
