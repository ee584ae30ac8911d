"""The profiles of lesson 05_transfer_learning: knob -> value for ``smoke``, ``cpu`` and ``gpu``.

Every profile has the same knobs. ``steps`` is the budget of every run of the comparison (equal steps);
``scratch_steps_equal_seconds`` the steps of one more run of the course U-Net that took as long as the
fine-tuned smp U-Net's ``steps`` on the course's 2-core machine (equal seconds, fixed as work so that it
repeats exactly; calibrated in the lesson's cpu run of 2026-12-02, ``benchmarks/RESULTS.md``: 330 steps of the
course U-Net took 32.1 s, the fine-tuned U-Net's 100 steps 42.7 s, so 440 steps).

Read through :func:`course_utils.config.get_config` (``get_config("05_transfer_learning", profile, knob=value)``).
"""

from ...knobs import check_divisible, choice, positive, text, whole

LESSON = "05_transfer_learning"


def _weights(value: str) -> str:
    """``"imagenet"``, ``"lite"``, ``"auto"`` or the path of an existing weights file."""
    from pathlib import Path

    from ...errors import ConfigError
    from ...models.pretrained import WEIGHT_CHOICES

    names = [w for w in WEIGHT_CHOICES if w is not None]
    if value not in names and not Path(value).expanduser().is_file():
        from ...validate import check_choice

        try:
            check_choice("weights", value, names)
        except ConfigError as err:
            raise ConfigError(f"{err} Or give the path of an existing weights file.") from None
    return value


def _sizes(value: str) -> str:
    """Training-set sizes as a comma list of whole numbers, e.g. ``"2,5,20"``."""
    from .pipeline import parse_sizes

    parse_sizes(value)
    return value


KNOBS = {
    "weights": text(_weights),
    "sizes": text(_sizes),
    "max_test": whole(1),
    "log_every": whole(1),
    "scratch_steps_equal_seconds": whole(1),
    "encoder_lr_ratio": positive(1.0),
    "threshold_images": whole(1),
    "smp_input": choice("rgb", "rgb_clahe"),
}

SETTINGS = {
    "smoke": dict(
        weights="auto",
        sizes="1,2",
        max_test=1,
        steps=4,
        scratch_steps_equal_seconds=8,
        log_every=2,
        patch_size=64,
        batch_size=4,
        lr=3e-3,
        encoder_lr_ratio=0.1,
        bce_weight=1.0,
        vessel_bias=0.5,
        augment=1.0,
        base_width=8,
        depth=4,
        threshold_images=1,
        smp_input="rgb",
        seed=0,
    ),
    "cpu": dict(
        weights="auto",
        sizes="2,5,20",
        max_test=20,
        steps=100,
        scratch_steps_equal_seconds=440,
        log_every=10,
        patch_size=96,
        batch_size=8,
        lr=3e-3,
        encoder_lr_ratio=0.1,
        bce_weight=1.0,
        vessel_bias=0.5,
        augment=1.0,
        base_width=8,
        depth=4,
        threshold_images=5,
        smp_input="rgb",
        seed=0,
    ),
    "gpu": dict(
        weights="auto",
        sizes="2,5,20",
        max_test=20,
        steps=1000,
        scratch_steps_equal_seconds=4400,  # the cpu ratio; not measured on a GPU
        log_every=50,
        patch_size=128,
        batch_size=16,
        lr=3e-3,
        encoder_lr_ratio=0.1,
        bce_weight=1.0,
        vessel_bias=0.5,
        augment=1.0,
        base_width=16,
        depth=4,
        threshold_images=20,
        smp_input="rgb",
        seed=0,
    ),
}


def check(values: dict) -> None:
    """Knobs that depend on each other: the EfficientNet encoder halves the patch five times."""
    check_divisible(values, ("patch_size",), 32, "the EfficientNet encoder halves it five times")
