"""Finding and loading the networks of lessons 03-05 through their checkpoint contracts, and the fallbacks."""
import os
import time

import pytest
import torch

from course_utils.checkpoint import save_checkpoint
from course_utils.errors import ConfigError
from course_utils.featurevis import trained_models as tm
from course_utils.models import UNet
from course_utils.paths import output_dir

torch.set_num_threads(1)


def _touch(path, age_s):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_find_checkpoint_takes_the_newest_copy_of_the_first_profile_that_has_one():
    folder = output_dir("03_drive_vessels")
    assert tm.find_checkpoint("03_drive_vessels", "unet", "smoke") is None
    _touch(folder / "unet-smoke.pt", 300)
    newest = _touch(folder / "unet-smoke-001.pt", 100)
    _touch(folder / "unet-smoke-002.pt", 200)
    _touch(folder / "unet3d-smoke.pt", 0)        # another stem
    _touch(folder / "unet-smoke-old.pt", 0)      # not a numbered copy
    cpu = _touch(folder / "unet-cpu.pt", 500)
    assert tm.find_checkpoint("03_drive_vessels", "unet", "smoke") == newest
    assert tm.find_checkpoint("03_drive_vessels", "unet", "cpu,smoke") == cpu
    assert tm.find_checkpoint("03_drive_vessels", "unet", ["gpu", "smoke"]) == newest
    assert tm.find_checkpoint("03_drive_vessels", "unet", "gpu") is None
    assert tm.find_checkpoint("04_mri_lesions", "unet3d", "smoke") is None  # folder absent
    with pytest.raises(ConfigError, match="checkpoint profiles"):
        tm.find_checkpoint("03_drive_vessels", "unet", "laptop")


def test_drive_unet_loads_the_lesson03_checkpoint():
    torch.manual_seed(0)
    model = UNet(in_channels=3, out_channels=1, depth=2, base_width=2)
    path = save_checkpoint(output_dir("03_drive_vessels") / "unet-smoke.pt", model,
                           meta={"channel": "rgb", "threshold": 0.4}, on_exists="rename")
    net = tm.drive_unet("smoke")
    assert net.loaded and net.origin == "loaded" and net.path == path
    assert net.in_channels == 3 and net.dims == 2 and net.meta["threshold"] == 0.4
    assert "loaded" in net.note and str(path) in net.note
    x = torch.rand(1, 3, 8, 8)
    model.eval()
    assert torch.allclose(net.model(x), model(x))
    assert not net.model.training


def test_mri_unet_loads_the_lesson04_checkpoint():
    torch.manual_seed(1)
    model = UNet(in_channels=2, out_channels=1, dims=3, depth=2, base_width=2)
    save_checkpoint(output_dir("04_mri_lesions") / "unet3d-cpu.pt", model,
                    meta={"modalities": ["FLAIR", "T1"], "spacing_mm": [2.0, 2.0, 2.0], "patch_size": 16,
                          "threshold": 0.5})
    net = tm.mri_unet("smoke,cpu")
    assert net.loaded and net.dims == 3 and net.in_channels == 2
    assert net.meta["modalities"] == ["FLAIR", "T1"] and net.meta["spacing_mm"] == 2.0
    x = torch.randn(1, 2, 4, 4, 4)
    model.eval()
    assert torch.allclose(net.model(x), model(x))


@pytest.mark.parametrize("wrapped", [False, True])
def test_imagenet_unet_loads_the_lesson05_checkpoint(wrapped):
    from course_utils.models.pretrained import pretrained_unet

    torch.manual_seed(2)
    model = pretrained_unet(None, encoder_name="resnet18", in_channels=1)
    saved = torch.nn.Module()
    saved.net = model  # lesson 05 may save the model inside its normalisation wrapper
    save_checkpoint(output_dir("05_transfer_learning") / "finetuned-smoke.pt", saved if wrapped else model,
                    model_config={"builder": "pretrained_unet", "encoder_name": "resnet18", "in_channels": 1,
                                  "classes": 1},
                    meta={"encoder_weights": "imagenet-lite1", "mean": [0.5], "std": [0.25], "threshold": 0.5})
    net = tm.imagenet_unet("smoke")
    assert net.loaded and net.in_channels == 1
    assert net.normalize == ((0.5,), (0.25,))
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
        return (UNet(in_channels=2, dims=3, depth=2, base_width=2).eval(),
                {"modalities": ["FLAIR", "T1"], "data": "synthetic"}, 3.0)

    monkeypatch.setattr(tm, "train_drive_fallback", fake_drive)
    monkeypatch.setattr(tm, "train_mri_fallback", fake_mri)
    drive = tm.drive_unet("smoke", train_seconds=2.0)
    mri = tm.mri_unet("smoke", train_seconds=3.0)
    assert drive.origin == mri.origin == "trained here" and not drive.loaded and drive.path is None
    assert "TRAINED HERE" in drive.note and "lesson 03" in drive.note
    assert "TRAINED HERE" in mri.note and "lesson 04" in mri.note
    assert calls["drive"]["train_seconds"] == 2.0 and calls["mri"]["train_seconds"] == 3.0


def test_mri_fallback_trains_a_3d_unet_on_given_cases():
    from course_utils.mri import MRICase
    import numpy as np

    rng = np.random.default_rng(0)
    brain = np.zeros((12, 12, 12), bool)
    brain[2:10, 2:10, 2:10] = True
    label = np.zeros((12, 12, 12), np.uint8)
    label[5:7, 5:7, 5:7] = 1
    images = {m: (rng.standard_normal((12, 12, 12)) + 3 * label).astype(np.float32) for m in ("FLAIR", "T1")}
    case = MRICase("tiny", images, label, brain, np.eye(4))
    model, meta, seconds = tm.train_mri_fallback(train_seconds=0.5, cases=[case], patch_size=8, base_width=2,
                                                 depth=2, verbose=False)
    assert model.dims == 3 and model.in_channels == 2 and not model.training
    assert meta["modalities"] == ["FLAIR", "T1"] and meta["patch_size"] == 8
    with pytest.raises(ValueError, match="train_seconds"):
        tm.train_mri_fallback(train_seconds=0, cases=[case])


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
