"""3D patches: lesion/background balance, ignore voxels, determinism, padding; blending with no NaN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from course_utils.errors import DataError
from course_utils.inference import sliding_window_inference
from course_utils.mri.cases import MRICase
from course_utils.mri.patches import LesionPatchDataset, extract_patch


def small_case(seed=0, shape=(20, 24, 16), with_ignore=True) -> MRICase:
    rng = np.random.default_rng(seed)
    brain = np.zeros(shape, bool)
    brain[2:-2, 2:-2, 2:-2] = True
    label = np.zeros(shape, np.uint8)
    label[5:8, 6:9, 4:6] = 1
    label[14, 15, 10] = 1
    ignore = np.zeros(shape, bool)
    if with_ignore:
        ignore[10:13, 10:13, 8:10] = True
    flair = np.where(brain, rng.normal(0, 1, shape), 0).astype(np.float32)
    return MRICase(
        name=f"s{seed}",
        images={"FLAIR": flair, "T1": label.astype(np.float32)},
        label=label,
        brain_mask=brain,
        affine=np.eye(4),
        ignore=ignore if with_ignore else None,
    )


def test_lesion_fraction_controls_the_centres():
    cases = [small_case(0), small_case(1)]
    all_lesion = LesionPatchDataset(cases, 8, samples_per_epoch=60, lesion_fraction=1.0)
    never = LesionPatchDataset(cases, 8, samples_per_epoch=60, lesion_fraction=0.0)
    for i in range(60):
        c, centre, on = all_lesion.locate(i)
        assert on and cases[c].label[centre] == 1
        c, centre, on = never.locate(i)
        assert not on and cases[c].label[centre] == 0 and cases[c].brain_mask[centre]
        assert not cases[c].ignore[centre]
    half = LesionPatchDataset(cases, 8, samples_per_epoch=400, lesion_fraction=0.3)
    share = np.mean([half.locate(i)[2] for i in range(400)])
    assert 0.3 - 0.08 < share < 0.3 + 0.08  # binomial sd ~0.023


def test_patch_contents_line_up():
    case = small_case(0)
    ds = LesionPatchDataset([case], (8, 6, 4), samples_per_epoch=20, lesion_fraction=0.5, modalities=["T1", "FLAIR"])
    for i in range(20):
        image, target, valid = ds[i]
        assert image.shape == (2, 8, 6, 4) and target.shape == valid.shape == (1, 8, 6, 4)
        assert image.dtype == torch.float32
        torch.testing.assert_close(image[0], target[0])  # channel T1 was made equal to the label
        _, centre, on = ds.locate(i)
        assert target[0, 4, 3, 2].item() == float(on)  # the centre voxel sits at size // 2
        assert valid.max() <= 1 and (target <= valid).all()


def test_flips_keep_image_and_target_together():
    ds = LesionPatchDataset(
        [small_case(0)], 8, samples_per_epoch=30, lesion_fraction=1.0, modalities=["T1"], flip_axes=(0, 1, 2)
    )
    flipped_any = False
    plain = LesionPatchDataset([small_case(0)], 8, samples_per_epoch=30, lesion_fraction=1.0, modalities=["T1"])
    for i in range(30):
        image, target, _ = ds[i]
        torch.testing.assert_close(image[0], target[0])
        flipped_any |= not torch.equal(image, plain[i][0])
    assert flipped_any


def test_intensity_jitter_rescales_each_channel_inside_the_brain_only():
    case = small_case(0, with_ignore=False)  # valid == brain here; T1 channel == label
    kw = dict(samples_per_epoch=40, lesion_fraction=0.5, modalities=["T1", "FLAIR"], flip_axes=(0, 1, 2))
    jitter = LesionPatchDataset([case], 10, intensity_jitter=0.2, **kw)
    plain = LesionPatchDataset([case], 10, **kw)
    offsets = set()
    for i in range(40):
        image, target, valid = jitter[i]
        ref_image, ref_target, _ = plain[i]
        torch.testing.assert_close(target, ref_target)  # same patch, same flips
        brain = valid[0] > 0
        assert torch.all(image[:, ~brain] == 0)  # outside the brain stays 0
        t1 = image[0][brain]  # = label * (1 + a) + b inside the brain
        lesion, rest = t1[target[0][brain] > 0], t1[target[0][brain] == 0]
        b = rest[0].item()
        assert -0.2 <= b <= 0.2 and torch.allclose(rest, torch.full_like(rest, b))
        if lesion.numel():
            a = lesion[0].item() - b - 1
            assert -0.2 - 1e-6 <= a <= 0.2 + 1e-6 and torch.allclose(lesion, torch.full_like(lesion, 1 + a + b))
        flair, ref_flair = image[1][brain], ref_image[1][brain]  # FLAIR: its own (a, b), affine in the original
        slope = np.polyfit(ref_flair.numpy(), flair.numpy(), 1)[0]
        assert 0.8 - 1e-4 <= slope <= 1.2 + 1e-4
        offsets.add(round(b, 6))
    assert len(offsets) > 30  # a new draw for every patch
    with pytest.raises(ValueError, match="intensity_jitter"):
        LesionPatchDataset([case], 10, intensity_jitter=1.5)


def test_deterministic_and_new_patches_each_epoch():
    a = LesionPatchDataset([small_case(0)], 8, samples_per_epoch=10, seed=5)
    b = LesionPatchDataset([small_case(0)], 8, samples_per_epoch=10, seed=5)
    centres = [a.locate(i) for i in range(10)]
    assert centres == [b.locate(i) for i in range(10)]
    a.set_epoch(1)
    assert [a.locate(i) for i in range(10)] != centres
    batch = next(iter(DataLoader(b, batch_size=4)))
    assert batch[0].shape == (4, 2, 8, 8, 8)


def test_extract_patch_pads_with_zeros_at_the_border():
    volume = np.arange(4 * 5 * 6, dtype=np.float32).reshape(1, 4, 5, 6) + 1
    patch = extract_patch(volume, (0, 0, 0), (4, 4, 4))
    assert patch.shape == (1, 4, 4, 4)
    assert (patch[:, :2] == 0).all() and (patch[:, :, :2] == 0).all() and (patch[:, :, :, :2] == 0).all()
    np.testing.assert_array_equal(patch[0, 2:, 2:, 2:], volume[0, :2, :2, :2])


def test_errors():
    with pytest.raises(DataError, match="no cases"):
        LesionPatchDataset([], 8)
    unlabelled = small_case(0)
    unlabelled.label = None
    with pytest.raises(DataError, match="has no label"):
        LesionPatchDataset([unlabelled], 8)
    with pytest.raises(ValueError, match="lesion_fraction"):
        LesionPatchDataset([small_case(0)], 8, lesion_fraction=1.5)
    with pytest.raises(ValueError, match="flip_axes"):
        LesionPatchDataset([small_case(0)], 8, flip_axes=(3,))


def test_whole_volume_inference_has_no_nan_outside_the_brain():
    """Sliding windows over a volume whose size is no multiple of the patch: every voxel finite and exact."""
    case = small_case(0)
    volume = torch.from_numpy(case.stack(["FLAIR", "T1"]))  # (2, 20, 24, 16), zeros outside the brain
    out = sliding_window_inference(lambda x: x[:, 1:2] * 2.0, volume, patch_size=(12, 12, 12), overlap=0.5)
    assert out.shape == (1, 20, 24, 16) and torch.isfinite(out).all()
    torch.testing.assert_close(out[0], volume[1] * 2.0)


def test_per_lesion_sampling_visits_small_lesions_as_often_as_large_ones():
    from course_utils.metrics.lesions import label_lesions

    shape = (24, 24, 24)
    label = np.zeros(shape, np.uint8)
    label[2:12, 2:12, 2:12] = 1  # one big lesion: 1000 voxels
    label[18, 18, 18] = 1  # two single-voxel lesions
    label[20, 4, 20] = 1
    brain = np.ones(shape, bool)
    case = MRICase(
        name="big-and-small",
        images={"FLAIR": label.astype(np.float32)},
        label=label,
        brain_mask=brain,
        affine=np.eye(4),
    )
    lesions, n = label_lesions(label > 0)
    assert n == 3

    def small_share(per_lesion):
        ds = LesionPatchDataset([case], 8, samples_per_epoch=600, lesion_fraction=1.0, per_lesion=per_lesion)
        centres = [ds.locate(i)[1] for i in range(600)]
        assert all(label[c] == 1 for c in centres)
        return np.mean([lesions[c] != lesions[5, 5, 5] for c in centres])

    assert small_share(0.0) < 0.02  # 2 of 1002 voxels
    assert 2 / 3 - 0.08 < small_share(1.0) < 2 / 3 + 0.08  # 2 of 3 lesions (binomial sd ~0.02)
    assert 1 / 3 - 0.08 < small_share(0.5) < 1 / 3 + 0.08
    with pytest.raises(ValueError, match="per_lesion"):
        LesionPatchDataset([case], 8, per_lesion=2.0)
