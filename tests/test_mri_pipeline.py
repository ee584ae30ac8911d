import numpy as np
import pytest
import torch
from scipy import ndimage

from course_utils.errors import ConfigError
from course_utils.lessons.lesson04.pipeline import (
    SynthesisPatches,
    build_lesion_model,
    choose_case_threshold,
    evaluate_case,
    lesion_patches,
    mean_metrics,
    patch_batches,
    predict_case,
    predict_working,
    prepare_case,
    to_native,
    to_working_grid,
)
from course_utils.metrics.lesions import dice
from course_utils.mri import MRICase
from course_utils.recipe import train_model


def _native(seed=0, n=16):
    rng = np.random.default_rng(seed)
    idx = np.indices((n, n, n)) - (n - 1) / 2
    brain = (idx**2).sum(0) < (n / 2 - 1) ** 2
    label = np.zeros((n, n, n), np.uint8)
    label[6:10, 6:10, 6:10] = 1  # 4^3: exactly 2^3 voxels at 2 mm
    label[3, 8, 8] = 1  # one voxel: below half a 2 mm voxel
    flair = np.where(brain, 1.0 + 2.0 * label + 0.1 * rng.standard_normal(brain.shape), 0).astype(np.float32)
    t1 = np.where(brain, 2.0 - label + 0.1 * rng.standard_normal(brain.shape), 0).astype(np.float32)
    return MRICase(
        name=f"toy{seed}",
        images={"FLAIR": flair, "T1": t1},
        label=label,
        brain_mask=brain,
        affine=np.diag([1.0, 1.0, 1.0, 1.0]),
    )


def test_working_grid_halves_and_normalises():
    work = to_working_grid(_native(), 2.0)
    assert work.shape == (8, 8, 8) and np.allclose(work.spacing, 2.0)
    assert work.label.sum() == 8  # the cube survives, the single voxel does not
    for img in work.images.values():
        assert np.all(img[~work.brain_mask] == 0)
        assert abs(float(img[work.brain_mask].mean())) < 1e-4
        assert abs(float(img[work.brain_mask].std()) - 1.0) < 1e-3


def test_prepare_keeps_native_label_for_metrics():
    pc = prepare_case(_native(), 2.0)
    assert pc.native_shape == (16, 16, 16) and pc.native_label.sum() == 65
    assert pc.native_spacing == (1.0, 1.0, 1.0)


class Constant(torch.nn.Module):
    """Logit ``value`` everywhere (keeps the input's spatial size)."""

    def __init__(self, value):
        super().__init__()
        self.value = value
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.full((x.shape[0], 1, *x.shape[2:]), float(self.value)) + 0 * self.w


def test_prediction_is_zero_outside_brain_and_finite():
    pc = prepare_case(_native(), 2.0)
    prob = predict_working(Constant(0.0), pc.case, patch_size=4)
    assert np.isfinite(prob).all()
    assert np.allclose(prob[pc.case.brain_mask], 0.5) and np.all(prob[~pc.case.brain_mask] == 0)
    native, seconds = predict_case(Constant(0.0), pc, patch_size=4)
    assert native.shape == (16, 16, 16) and seconds >= 0
    assert np.all(native[~pc.native_mask] == 0) and np.isfinite(native).all()
    deep = ndimage.binary_erosion(pc.native_mask, iterations=3)
    assert deep.sum() > 100
    assert np.allclose(native[deep], 0.5, atol=1e-5)  # constant inside the brain stays constant


def _big_case(seed=0):
    """A 24^3 volume whose brain (a ball) fills only the middle, so cropping to it saves windows."""
    rng = np.random.default_rng(seed)
    idx = np.indices((24, 24, 24)) - np.array([9.0, 12.0, 13.0])[:, None, None, None]
    brain = (idx**2).sum(0) < 6.5**2
    images = {m: np.where(brain, rng.standard_normal(brain.shape), 0).astype(np.float32) for m in ("FLAIR", "T1")}
    return MRICase(
        name="ball", images=images, label=np.zeros(brain.shape, np.uint8), brain_mask=brain, affine=np.eye(4)
    )


def test_cropping_to_the_brain_changes_nothing_for_a_voxelwise_network():
    torch.manual_seed(0)
    case = _big_case()
    net = torch.nn.Conv3d(2, 1, 1)  # voxel by voxel: the window positions cannot matter
    full = predict_working(net, case, patch_size=8, crop_to_brain=False)
    crop = predict_working(net, case, patch_size=8, crop_to_brain=True)
    assert np.allclose(full, crop, atol=1e-6)
    assert np.all(crop[~case.brain_mask] == 0) and (crop[case.brain_mask] > 0).all()
    mirrored = predict_working(net, case, patch_size=8, tta="lr")  # a 1x1x1 convolution is mirror-symmetric
    assert np.allclose(mirrored, crop, atol=1e-6)
    with pytest.raises(ValueError, match="'lr'"):
        predict_working(net, case, patch_size=8, tta="mirror")


def test_left_right_tta_averages_the_mirrored_prediction():
    class LeftRamp(torch.nn.Module):
        """Logit = position along the first axis inside the window: not mirror-symmetric."""

        def forward(self, x):
            ramp = torch.arange(x.shape[2], dtype=torch.float32).reshape(1, 1, -1, 1, 1)
            return (ramp.expand(x.shape[0], 1, *x.shape[2:]) - (x.shape[2] - 1) / 2) / 4

    case = _big_case()
    one = predict_working(LeftRamp(), case, patch_size=24, crop_to_brain=False)
    two = predict_working(LeftRamp(), case, patch_size=24, crop_to_brain=False, tta="lr")
    brain = case.brain_mask
    assert one[brain].std() > 0.1  # plain: a ramp from left to right
    # mirrored and flipped back: sigmoid(r) and sigmoid(-r) average to exactly 0.5 everywhere in the brain
    assert np.allclose(two[brain], 0.5, atol=1e-6)


def test_to_native_brings_back_a_block_by_linear_interpolation():
    pc = prepare_case(_native(), 2.0)
    work = pc.case.label.astype(np.float32)  # the 2 mm cube (coarse voxels 3, 4) as a "probability"
    native = to_native(work, pc)
    # by hand: native voxels 6..9 sit at coarse coordinates 2.75, 3.25, 3.75, 4.25 -> 0.75, 1, 1, 0.75 per
    # axis; trilinear values are products, so the 8 corners (0.75^3 = 0.42) fall below 0.5, the rest not.
    expected = np.zeros((16, 16, 16), bool)
    expected[6:10, 6:10, 6:10] = True
    for c in np.ndindex(2, 2, 2):
        expected[tuple(6 + 3 * np.array(c))] = False
    assert np.array_equal(native >= 0.5, expected)
    assert native[6, 6, 6] == pytest.approx(0.75**3, abs=1e-5)
    assert dice(native >= 0.5, pc.native_label == 1) == pytest.approx(2 * 56 / (56 + 65))


def test_threshold_and_metrics_on_native_grid():
    pcs = [prepare_case(_native(s), 2.0) for s in (0, 1)]
    probs = []
    for pc in pcs:
        p = np.where(pc.native_label > 0, 0.62, 0.0).astype(np.float32)
        p[pc.native_mask & (pc.native_label == 0)] = 0.3  # every background voxel in the brain at 0.3
        probs.append(p)
    thr = choose_case_threshold(probs, pcs)
    assert 0.3 < thr <= 0.62
    m = evaluate_case(probs[0], pcs[0], thr)
    assert m["dice"] == 1.0 and m["lesion_sensitivity"] == 1.0 and m["n_true_lesions"] == 2
    low = evaluate_case(probs[0], pcs[0], 0.25)
    assert low["lesion_precision"] == 1.0 and low["dice"] < 0.1
    with pytest.raises(ValueError, match="native"):
        evaluate_case(pcs[0].case.label.astype(np.float32), pcs[0], 0.5)


def test_mean_metrics_skips_nan():
    rows = [{"dice": 0.5, "hd95_mm": float("nan")}, {"dice": 0.7, "hd95_mm": 4.0}]
    with pytest.warns(UserWarning, match="1 of 2 values"):
        out = mean_metrics(rows, ("dice", "hd95_mm"))
    assert out["dice"] == pytest.approx(0.6) and out["hd95_mm"] == 4.0


def test_tiny_training_run_and_synthesis_patches():
    torch.manual_seed(0)
    pcs = [prepare_case(_native(s), 2.0) for s in (0, 1)]
    data = lesion_patches(pcs, patch_size=8, samples_per_epoch=4, lesion_fraction=0.5, seed=0)
    model = build_lesion_model(2, base_width=2, depth=2)
    history = train_model(
        model, patch_batches(data, batch_size=2), epochs=2, lr=1e-3, show_progress=False, verbose=False
    )
    assert len(history) == 2 and np.isfinite(history["train_loss"]).all()
    synth = SynthesisPatches(data, "T1", "FLAIR")
    x, y, valid = synth[0]
    assert x.shape == y.shape == valid.shape == (1, 8, 8, 8)
    image, _, _ = data[0]
    assert torch.equal(x[0], image[1]) and torch.equal(y[0], image[0])
    with pytest.raises(ValueError, match="T2"):
        SynthesisPatches(data, "T2", "FLAIR")


def test_patch_batches_keep_the_dataset_order_and_refuse_too_few_samples():
    pcs = [prepare_case(_native(s), 2.0) for s in (0, 1)]
    data = lesion_patches(pcs, patch_size=8, samples_per_epoch=5, lesion_fraction=0.5, seed=0)
    loader = patch_batches(data, batch_size=2)
    assert len(loader) == 2  # 5 samples: the incomplete batch is dropped
    first = next(iter(loader))
    assert first[0].shape == (2, 2, 8, 8, 8)
    assert torch.equal(first[0][0], data[0][0]) and torch.equal(first[0][1], data[1][0]), "no shuffling"
    with pytest.raises(ValueError, match=r"samples_per_epoch \(5\) is smaller than batch_size \(6\)"):
        patch_batches(data, batch_size=6)


def test_native_image_of_an_in_memory_case():
    from course_utils.lessons.lesson04.pipeline import native_image

    native = _native()
    pc = prepare_case(native, None)
    assert native_image(pc, "FLAIR").shape == (16, 16, 16)
    with pytest.raises(Exception, match="working grid"):
        native_image(prepare_case(native, 2.0), "FLAIR")


def test_threshold_maximises_the_mean_dice_over_cases_not_the_pooled_one():
    a, b = prepare_case(_native(0), 2.0), prepare_case(_native(1), 2.0)
    big = b.native_label.copy()
    big[2:14, 4:12, 4:12] = 1  # b: a large lesion load
    b.native_label = big & b.native_mask
    pa = np.where(a.native_label > 0, 0.3, 0.0).astype(np.float32)  # a: lesions at 0.3 only
    pb = np.where(b.native_label > 0, 0.9, 0.0).astype(np.float32)  # b: lesions at 0.9
    pb[b.native_mask & (b.native_label == 0)] = 0.35  # b: background at 0.35
    # by hand: thresholds <= 0.3 give Dice 1 on a but flood b (Dice < 1); 0.4..0.9 give b Dice 1 and a Dice 0.
    # mean Dice: (1 + Dice_b(0.3)) / 2 at 0.3 against 0.5 above 0.35, so the mean prefers 0.3 when Dice_b(0.3) > 0.
    thr = choose_case_threshold([pa, pb], [a, b], candidates=[0.3, 0.6])
    dice_b = dice(pb >= 0.3, b.native_label > 0)
    assert dice_b > 0 and thr == 0.3
    from course_utils.lessons.lesson04.pipeline import pooled_dice

    assert pooled_dice([pa, pb], [a, b], 0.6) > pooled_dice([pa, pb], [a, b], 0.3)  # pooled would pick 0.6


def test_lesion_aware_threshold_keeps_a_small_lesion_that_dice_gives_up():
    pc = prepare_case(_native(0), 2.0)
    prob = np.zeros(pc.native_shape, np.float32)
    prob[6:10, 6:10, 6:10] = 0.9  # the 4^3 cube, confidently
    prob[5, 6:10, 6:10] = 0.3  # a false halo on one face of it (16 voxels, joined to the cube)
    prob[3, 8, 8] = 0.3  # the one-voxel lesion, faintly
    # by hand: at 0.6 Dice = 2*64/(64+65) = 0.992, lesion F1 = 2/3 (1 of 2 lesions);
    #          at 0.3 Dice = 2*65/(81+65) = 0.890, lesion F1 = 1 (both found, no false lesion)
    assert choose_case_threshold([prob], [pc], candidates=[0.3, 0.6]) == 0.6
    assert choose_case_threshold([prob], [pc], candidates=[0.3, 0.6], criterion="dice+lesion_f1") == 0.3
    assert choose_case_threshold([prob], [pc], candidates=[0.3, 0.6], criterion="f1") == 0.6  # f1 is Dice
    with pytest.raises(ConfigError, match="criterion"):
        choose_case_threshold([prob], [pc], criterion="youden")
    with pytest.raises(ValueError, match="native grid"):
        choose_case_threshold([prob[:8]], [pc])
    with pytest.raises(ValueError, match="one probability map per case"):
        choose_case_threshold([prob, prob], [pc])


def test_brain_depth_is_the_distance_in_mm_to_the_outside():
    from course_utils.lessons.lesson04.pipeline import brain_depth_mm

    mask = np.zeros((9, 9, 9), bool)
    mask[1:8, 1:8, 1:8] = True  # a 7^3 cube: its centre is 4 voxels from the outside
    depth = brain_depth_mm(mask, (1.0, 1.0, 1.0))
    assert depth[4, 4, 4] == pytest.approx(4.0) and depth[1, 4, 4] == pytest.approx(1.0)
    assert np.all(depth[~mask] == 0)
    assert brain_depth_mm(mask, (2.0, 2.0, 2.0))[4, 4, 4] == pytest.approx(8.0)  # voxel size in mm
    assert brain_depth_mm(mask, (1.0, 1.0, 3.0))[4, 4, 4] == pytest.approx(4.0)  # nearest side: 4 x 1 mm
    full = brain_depth_mm(np.ones((5, 5, 5), bool), (1.0, 1.0, 1.0))  # no outside voxel: the array's border
    assert full[2, 2, 2] == pytest.approx(3.0) and full[0, 2, 2] == pytest.approx(1.0)


def test_rim_exclusion_clears_the_edge_of_the_brain_only():
    pc = prepare_case(_native(), 2.0)
    flat = np.full(pc.case.shape, 0.8, np.float32)
    plain = to_native(flat, pc)
    rim = to_native(flat, pc, rim_mm=2.0)
    depth = pc.native_depth_mm()
    assert depth is pc.native_depth_mm()  # cached
    edge = pc.native_mask & (depth <= 2.0)
    assert edge.any() and (pc.native_mask & (depth > 2.0)).any()
    assert np.all(rim[edge] == 0) and np.all(rim[~pc.native_mask] == 0)
    assert np.array_equal(rim[depth > 2.0], plain[depth > 2.0])  # deeper voxels untouched
    native, _ = predict_case(Constant(0.0), pc, patch_size=4, rim_mm=2.0)
    assert np.all(native[edge] == 0) and np.allclose(native[ndimage.binary_erosion(pc.native_mask, iterations=3)], 0.5)
    with pytest.raises(ValueError, match="rim_mm"):
        to_native(flat, pc, rim_mm=-1.0)


def test_threshold_tolerance_takes_the_lowest_near_best_threshold():
    pc = prepare_case(_native(0), 2.0)
    truth = pc.native_label > 0  # 65 voxels: a 4^3 cube and one voxel
    prob = np.where(truth, 0.9, 0.0).astype(np.float32)
    prob[3, 8, 8] = 0.25  # the single-voxel lesion: faint
    halo = ndimage.binary_dilation(truth, iterations=1) & ~truth & pc.native_mask
    prob[halo] = 0.15  # a faint halo around the lesions
    # by hand: 0.3 and up find the cube only: Dice 2*64/(64+65) = 0.992; 0.2 also the voxel: Dice 1;
    # 0.1 adds the halo: Dice 2*65/(65 + 65 + |halo|), far lower.
    candidates = [0.1, 0.2, 0.3, 0.5]
    assert choose_case_threshold([prob], [pc], candidates=candidates) == 0.2
    prob[3, 8, 8] = 0.4  # now 0.3 is as good as 0.2: ties go low
    assert choose_case_threshold([prob], [pc], candidates=candidates) == 0.2
    prob[3, 8, 8] = 0.0  # the voxel is lost at every threshold:
    best = 2 * 64 / (64 + 65)  # 0.2, 0.3 and 0.5 tie at 0.992 -> 0.2
    assert choose_case_threshold([prob], [pc], candidates=[0.3, 0.5]) == 0.3
    halo_dice = 2 * 64 / (64 + 65 + halo.sum())
    assert choose_case_threshold([prob], [pc], candidates=[0.1, 0.3], tolerance=best - halo_dice - 1e-3) == 0.3
    assert choose_case_threshold([prob], [pc], candidates=[0.1, 0.3], tolerance=best - halo_dice + 1e-3) == 0.1
    with pytest.raises(ValueError, match="tolerance"):
        choose_case_threshold([prob], [pc], tolerance=-0.1)
