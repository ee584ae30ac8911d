"""The course's own implementations, checked against the libraries that implement the same thing.

The lessons write these by hand because the implementation is what they teach; each test here
computes the same quantity with an established library under matching definitions and asserts
agreement. Where the definitions differ (empty masks, borders, clamping), the docstring says how,
and the test either compares where they coincide or pins the difference down exactly.

Libraries: segmentation-models-pytorch (losses), MONAI (Hausdorff distance, Gaussian window;
a test-only dependency), nibabel (resampling), torchvision.transforms.v2 (augmentation geometry),
scikit-image (block means).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from course_utils.data.augment import RandomAffine, RandomFlipRotate90
from course_utils.inference import blend_weights
from course_utils.losses import BCEDiceLoss, soft_dice_loss, soft_tversky_loss
from course_utils.metrics.lesions import hd95
from course_utils.mri.io import Volume, coarse_grid, resample_to_grid

smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")


# ---------------------------------------------------------------- losses vs segmentation-models-pytorch
def _logits_and_target(seed: int, shape=(4, 1, 16, 16), p_fg: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = 3.0 * torch.randn(shape, generator=g, dtype=torch.float64)
    target = (torch.rand(shape, generator=g, dtype=torch.float64) < p_fg).to(torch.float64)
    return logits, target


@pytest.mark.parametrize("eps", [1.0, 1e-3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_dice_loss_equals_smp_dice_loss(seed, eps):
    """smp ``DiceLoss(mode="binary")`` reshapes to ``(B, 1, N)`` and sums over dims ``(0, 2)``: one
    Dice over the whole batch, as the course. Its score is ``(I + s) / (I + (FP + FN) / 2 + s)``
    = ``(2I + 2s) / (|P| + |T| + 2s)``, the course's ``(2I + eps) / (|P| + |T| + eps)`` with
    ``s = eps / 2``. smp computes ``I`` as ``(|P| + |T| - |P - T|_1) / 2``, which is ``sum(P * T)``
    for binary targets only, so the targets are binary."""
    logits, target = _logits_and_target(seed)
    target[0] = 0.0  # an empty sample inside a non-empty batch: pooled over the batch by both
    ref = smp_losses.DiceLoss(mode="binary", from_logits=True, smooth=eps / 2)(logits, target)
    ours = soft_dice_loss(logits, target, eps=eps)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-5, rel=1e-5)
    # and the gradients the network trains with
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    soft_dice_loss(a, target, eps=eps).backward()
    smp_losses.DiceLoss(mode="binary", from_logits=True, smooth=eps / 2)(b, target).backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("fn_weight", [0.3, 0.5, 0.7, 0.9])
def test_soft_tversky_loss_equals_smp_tversky_loss(fn_weight):
    """smp ``TverskyLoss``: ``alpha`` weighs false positives, ``beta`` false negatives, smoothing
    ``s`` added to numerator and denominator. The course's index ``(TP + eps/2) / (TP + (1 - w) FP
    + w FN + eps/2)`` is smp's with ``alpha = 1 - w``, ``beta = w``, ``smooth = eps / 2`` (``gamma=1``)."""
    eps = 1.0
    logits, target = _logits_and_target(7, shape=(3, 1, 8, 12, 10))
    ref = smp_losses.TverskyLoss(
        mode="binary", from_logits=True, smooth=eps / 2, alpha=1 - fn_weight, beta=fn_weight, gamma=1.0
    )(logits, target)
    ours = soft_tversky_loss(logits, target, fn_weight=fn_weight, eps=eps)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-5, rel=1e-5)


@pytest.mark.parametrize(
    "bce_weight, pos_weight, fn_weight", [(0.5, None, 0.5), (0.3, 4.0, 0.5), (0.7, 2.0, 0.8), (0.0, None, 0.7)]
)
def test_bce_dice_loss_equals_smp_combination(bce_weight, pos_weight, fn_weight):
    """``BCEDiceLoss`` = ``bce_weight * BCE + (1 - bce_weight) * overlap`` with the course's default
    ``eps = 1`` (smp ``smooth = 0.5``); BCE from smp's ``SoftBCEWithLogitsLoss`` (mean, ``pos_weight``)."""
    logits, target = _logits_and_target(11, p_fg=0.1)
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    bce = smp_losses.SoftBCEWithLogitsLoss(pos_weight=pw)(logits, target)
    overlap = smp_losses.TverskyLoss(mode="binary", smooth=0.5, alpha=1 - fn_weight, beta=fn_weight)(logits, target)
    ref = bce_weight * bce + (1 - bce_weight) * overlap
    ours = BCEDiceLoss(bce_weight=bce_weight, pos_weight=pos_weight, fn_weight=fn_weight)(logits, target)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-5, rel=1e-5)


def test_dice_on_an_all_empty_batch_differs_by_definition():
    """Where the two *disagree*: a batch without any foreground voxel. smp sets the loss of a class
    with no true voxel to 0 ("undefined", masked out); the course keeps the smoothed formula, which
    gives ``1 - eps / (|P| + eps)``: it still penalises predicted foreground on empty patches (and is
    ~0 only when nothing is predicted). Pinned down here so that a change on either side is noticed."""
    eps = 1.0
    logits, _ = _logits_and_target(3)
    empty = torch.zeros_like(logits)
    assert smp_losses.DiceLoss(mode="binary", smooth=eps / 2)(logits, empty).item() == 0.0
    expected = 1.0 - eps / (torch.sigmoid(logits).sum().item() + eps)
    assert soft_dice_loss(logits, empty, eps=eps).item() == pytest.approx(expected, rel=1e-12)
    assert expected > 0.99  # sigmoid of random logits: far from an empty prediction
    assert soft_dice_loss(torch.full_like(logits, -30.0), empty, eps=eps).item() == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- HD95 vs MONAI
def _blobs(shape: tuple[int, ...], seed: int, threshold: float = 0.55) -> np.ndarray:
    """A few random smooth blobs (several connected components), bool."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape), 1.2) > threshold


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI-internal deprecation (always_return_as_numpy)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_hd95_equals_monai_symmetric_percentile_hausdorff(seed):
    """MONAI ``compute_hausdorff_distance(percentile=95, directed=False, spacing=...)`` takes the edge
    voxels as ``mask XOR binary_erosion(mask)`` (scipy's 6-neighbour cross, outside = background,
    after a crop with a 1-voxel margin) - the course's boundary with ``erosion="3d"``; the distances
    are Euclidean between voxel centres scaled by the spacing; the percentile is taken per direction
    (``torch.quantile``, linear, = ``np.percentile``) and the larger one reported - the course's
    "both ways, the larger of the two". MONAI's ``directed=True`` (prediction -> truth only) is a
    different quantity and is not compared (it is checked to be no larger)."""
    monai_metrics = pytest.importorskip("monai.metrics")
    shape, spacing = (24, 20, 14), (0.9, 1.1, 3.0)  # anisotropic, as MR volumes
    pred, truth = _blobs(shape, seed), _blobs(shape, seed + 100)
    assert pred.any() and truth.any()
    p = torch.from_numpy(pred)[None, None].float()
    t = torch.from_numpy(truth)[None, None].float()
    for percentile in (95.0, 100.0):
        kwargs = {"include_background": True, "spacing": spacing}
        if percentile < 100:
            kwargs["percentile"] = percentile  # percentile=None is MONAI's classic (maximum) Hausdorff
        ref = monai_metrics.compute_hausdorff_distance(p, t, **kwargs).item()
        ours = hd95(pred, truth, spacing=spacing, percentile=percentile)
        assert ours == pytest.approx(ref, rel=1e-5, abs=1e-5)
        directed = monai_metrics.compute_hausdorff_distance(p, t, directed=True, **kwargs).item()
        assert directed <= ours + 1e-5


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_hd95_blob_touching_the_volume_edge_equals_monai():
    """Voxels on the array's edge are boundary voxels for both (erosion with background outside)."""
    monai_metrics = pytest.importorskip("monai.metrics")
    pred = np.zeros((16, 16, 8), dtype=bool)
    truth = np.zeros_like(pred)
    pred[0:7, 3:12, 0:8] = True  # touches three faces of the volume
    truth[2:10, 5:15, 1:6] = True
    spacing = (1.0, 0.7, 2.5)
    ref = monai_metrics.compute_hausdorff_distance(
        torch.from_numpy(pred)[None, None].float(),
        torch.from_numpy(truth)[None, None].float(),
        include_background=True,
        percentile=95,
        spacing=spacing,
    ).item()
    assert hd95(pred, truth, spacing=spacing) == pytest.approx(ref, rel=1e-5)


# ---------------------------------------------------------------- resampling vs nibabel
def _smooth_volume(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (10.0 * ndimage.gaussian_filter(rng.random(shape), 1.5)).astype(np.float32)


def test_resample_to_grid_equals_nibabel_linear_in_the_interior():
    """``resample_to_grid(kind="image")`` onto a rotated, shifted, *finer* grid vs
    ``nibabel.processing.resample_from_to(order=1)``: both map target voxels through
    ``inv(source_affine) @ target_affine`` and interpolate trilinearly, so they must agree wherever
    the sample point lies inside the source's voxel centres. At the border they differ by design:
    nibabel uses ``mode="constant"`` (0 outside ``[0, n-1]``), the course takes the edge value up to
    half a voxel beyond the edge centres (its "inside the volume's extent") and 0 beyond. (On a
    *coarser* grid the course also smooths / block-averages, which nibabel does not; see the next test.)"""
    processing = pytest.importorskip("nibabel.processing")
    import nibabel as nib

    data = _smooth_volume((20, 18, 12))
    src_affine = np.array([[-1.0, 0, 0, 10], [0, 1.2, 0, -8], [0, 0, 2.5, -15], [0, 0, 0, 1]])  # LAS, anisotropic
    th = math.radians(12)
    rot = np.array([[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]])
    tgt_affine = np.eye(4)
    tgt_affine[:3, :3] = rot @ np.diag([-0.8, 0.9, 1.7])
    tgt_affine[:3, 3] = [9.3, -7.1, -14.2]
    shape = (24, 22, 16)

    ours = resample_to_grid(Volume(data, src_affine), shape, tgt_affine, kind="image").data
    ref = processing.resample_from_to(nib.Nifti1Image(data, src_affine), (shape, tgt_affine), order=1).get_fdata()

    m = np.linalg.solve(src_affine, tgt_affine)
    src = m[:3, :3] @ np.indices(shape).reshape(3, -1) + m[:3, 3:4]
    interior = np.all((src >= 0) & (src <= np.array(data.shape)[:, None] - 1), axis=0).reshape(shape)
    assert interior.mean() > 0.5  # most of the grid is compared
    np.testing.assert_allclose(ours[interior], ref[interior], atol=1e-5, rtol=1e-5)
    assert not np.allclose(ours[~interior], ref[~interior])  # the border rule really differs


def test_integer_downsampling_equals_skimage_block_mean():
    """A factor-2 coarse grid (:func:`coarse_grid`) averages 2x2x2 blocks exactly: compared with
    ``skimage.measure.block_reduce(np.mean)``, the library's block mean."""
    measure = pytest.importorskip("skimage.measure")
    data = _smooth_volume((16, 12, 10), seed=1)
    affine = np.diag([0.9, 1.1, 2.0, 1.0])
    affine[:3, 3] = [-5.0, 3.0, 1.0]
    shape, tgt_affine = coarse_grid(data.shape, affine, (1.8, 2.2, 4.0))
    ours = resample_to_grid(Volume(data, affine), shape, tgt_affine, kind="image").data
    np.testing.assert_allclose(ours, measure.block_reduce(data, (2, 2, 2), np.mean), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- augmentation geometry vs torchvision
TF = pytest.importorskip("torchvision.transforms.v2.functional")


def _mask(a: np.ndarray):
    from torchvision import tv_tensors

    return tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(a).astype(np.uint8)))


@pytest.mark.parametrize("shape", [(24, 24), (20, 28)], ids=["square", "non-square"])
@pytest.mark.parametrize("seed", range(8))
def test_flip_rotate90_equals_torchvision(seed, shape):
    """``RandomFlipRotate90`` draws ``rng.random() < p_flip`` for the horizontal flip (last axis),
    then for the vertical flip, then ``k = rng.integers(4)`` quarter turns (``2 * rng.integers(2)``
    for non-square patches) and turns with ``np.rot90(axes=(-2, -1))``: counter-clockwise on screen,
    torchvision's ``rotate(angle=90 * k)``. Replaying the same draws, torchvision's
    ``horizontal_flip`` / ``vertical_flip`` / ``rotate`` must give identical arrays."""
    from torchvision.transforms import InterpolationMode

    rng = np.random.default_rng(1000 + seed)
    image = rng.random((3, *shape)).astype(np.float32)
    target = rng.random(shape) < 0.3
    fov = rng.random(shape) < 0.9
    out = RandomFlipRotate90(p_flip=0.5)(image, target, fov, np.random.default_rng(seed))

    draws = np.random.default_rng(seed)
    hflip, vflip = draws.random() < 0.5, draws.random() < 0.5
    k = int(draws.integers(4)) if shape[0] == shape[1] else 2 * int(draws.integers(2))
    expected = []
    for x in (torch.from_numpy(image), _mask(target), _mask(fov)):
        if hflip:
            x = TF.horizontal_flip(x)
        if vflip:
            x = TF.vertical_flip(x)
        expected.append(TF.rotate(x, 90.0 * k, interpolation=InterpolationMode.NEAREST).numpy())
    assert out[0].shape == image.shape
    np.testing.assert_array_equal(out[0], expected[0])
    np.testing.assert_array_equal(out[1], expected[1].astype(bool))
    np.testing.assert_array_equal(out[2], expected[2].astype(bool))


@pytest.mark.parametrize("seed", range(6))
def test_random_affine_equals_torchvision_affine(seed):
    """``RandomAffine`` draws ``angle = uniform(-max_degrees, max_degrees)`` then
    ``zoom = uniform(*scale_range)`` and rotates/scales about the patch centre ``((H-1)/2, (W-1)/2)``,
    bilinear for the image, nearest for the masks, 0 outside. Sign convention: a positive course
    angle turns the content *clockwise* on screen, i.e. torchvision's ``affine(angle=-angle,
    scale=zoom)`` (torchvision: positive = counter-clockwise). Both directions are drawn equally
    often, so this is a convention, not an error.

    Compared where the bilinear sample has all four neighbours inside the patch (torchvision's
    ``grid_sample`` fades to the zero padding over the last pixel, scipy's ``mode="constant"`` does
    not): image to 1e-5; masks exactly, except pixels whose sample point is within 1e-3 px of a
    nearest-neighbour tie (float32 vs float64 rounding)."""
    from torchvision.transforms import InterpolationMode

    h, w = 40, 48
    rng = np.random.default_rng(2000 + seed)
    image = ndimage.gaussian_filter(rng.random((2, h, w)), (0, 1, 1)).astype(np.float32)
    target = ndimage.gaussian_filter(rng.random((h, w)), 2) > 0.5
    fov = np.ones((h, w), dtype=bool)
    fov[:, :4] = False
    out = RandomAffine(max_degrees=30.0, scale_range=(0.8, 1.25))(image, target, fov, np.random.default_rng(seed))

    draws = np.random.default_rng(seed)
    degrees, zoom = draws.uniform(-30.0, 30.0), draws.uniform(0.8, 1.25)
    geometry = {"angle": -degrees, "translate": [0, 0], "scale": zoom, "shear": [0.0, 0.0]}

    def warp(x: np.ndarray) -> np.ndarray:
        """torchvision's bilinear warp of a float array ``(C, H, W)``."""
        return TF.affine(
            torch.from_numpy(x.astype(np.float64)), interpolation=InterpolationMode.BILINEAR, **geometry
        ).numpy()

    # Where each output pixel samples the source, from torchvision itself: bilinear warps of the
    # coordinate maps (exact for linear functions where all four neighbours are inside).
    rows, cols = np.indices((h, w), dtype=np.float64)
    inside = np.abs(warp(np.ones((1, h, w)))[0] - 1.0) < 1e-9
    src_r, src_c = warp(rows[None])[0], warp(cols[None])[0]
    assert inside.mean() > 0.4

    expected_image = warp(image)
    np.testing.assert_allclose(out[0][:, inside], expected_image[:, inside], atol=1e-5)

    frac = np.stack([src_r - np.floor(src_r), src_c - np.floor(src_c)])
    no_tie = inside & np.all(np.abs(frac - 0.5) > 1e-3, axis=0)
    for ours, mask in ((out[1], target), (out[2], fov)):
        expected = TF.affine(_mask(mask), **geometry).numpy().astype(bool)  # masks: nearest
        assert ours.dtype == bool
        np.testing.assert_array_equal(ours[no_tie], expected[no_tie])


# ---------------------------------------------------------------- Gaussian window vs MONAI
@pytest.mark.parametrize("patch", [(16, 16), (15, 20), (8, 12, 10), (64, 64, 32)])
@pytest.mark.parametrize("sigma_scale", [0.125, 0.25])
def test_gaussian_blend_weights_equal_monai_importance_map(patch, sigma_scale):
    """MONAI ``compute_importance_map(mode="gaussian")``: product of 1-D Gaussians on
    ``arange(n) - (n - 1) / 2`` with ``sigma = sigma_scale * n``, not normalised (its maximum is < 1
    for even sizes) and clamped from below at ``max(min, 1e-3)``. The course normalises each axis to
    maximum 1 and clamps at ``min_weight = 1e-4``. After dividing MONAI's map by its maximum the two
    must agree wherever neither is clamped."""
    data_utils = pytest.importorskip("monai.data.utils")
    ours = blend_weights(patch, "gaussian", sigma_scale=sigma_scale)
    ref = data_utils.compute_importance_map(patch, mode="gaussian", sigma_scale=sigma_scale)
    assert ours.shape == ref.shape == patch
    ref = ref / ref.max()
    unclamped = (ours > 1e-4) & (ref > ref.min())
    assert unclamped.float().mean() > 0.4
    torch.testing.assert_close(ours[unclamped], ref[unclamped], atol=1e-6, rtol=1e-5)
    assert ours.max().item() == pytest.approx(1.0)
    assert ours.min().item() >= 1e-4 - 1e-9
