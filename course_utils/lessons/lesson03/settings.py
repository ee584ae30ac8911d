"""The profiles of lesson 03_drive_vessels: knob -> value for ``smoke``, ``cpu`` and ``gpu``.

Every profile has the same knobs. A profile fixes the work (``epochs`` of ``samples_per_epoch`` patches),
never the clock: ``max_train_seconds`` is an optional cap, off (``None``) in every profile. The knobs
this lesson alone has are declared in ``KNOBS``; the others in :data:`course_utils.knobs.COMMON`.

Read through :func:`course_utils.config.get_config` (``get_config("03_drive_vessels", profile, knob=value)``).
"""

from ...data.fundus import CHANNELS
from ...knobs import check_at_least, check_divisible, choice, whole

LESSON = "03_drive_vessels"

KNOBS = {
    "max_train": whole(1),
    "max_test": whole(1),
    "channel": choice(*CHANNELS),
}

SETTINGS = {
    "smoke": dict(
        max_train=6,
        max_test=4,
        n_val=2,
        channel="green",
        patch_size=64,
        vessel_bias=0.5,
        augment=1.0,
        num_workers=0,
        batch_size=8,
        samples_per_epoch=96,
        epochs=5,
        max_train_seconds=None,
        lr=3e-3,
        bce_weight=0.5,
        base_width=4,
        depth=3,
        tta="none",
        amp="auto",
        channels_last=True,
        ema_decay=0.9,
        seed=0,
    ),
    "cpu": dict(
        max_train=20,
        max_test=20,
        n_val=2,
        channel="green",
        patch_size=96,
        vessel_bias=0.5,
        augment=1.0,
        num_workers=0,
        batch_size=16,
        samples_per_epoch=2048,
        epochs=42,
        max_train_seconds=None,
        lr=4e-3,
        bce_weight=1.0,
        base_width=8,
        depth=4,
        tta="flips",
        amp="auto",
        channels_last=True,
        ema_decay=0.998,
        seed=0,
    ),
    "gpu": dict(
        max_train=20,
        max_test=20,
        n_val=2,
        channel="green",
        patch_size=128,
        vessel_bias=0.5,
        augment=1.0,
        num_workers=4,
        batch_size=32,
        samples_per_epoch=4096,
        epochs=150,
        max_train_seconds=None,
        lr=3e-3,
        bce_weight=1.0,
        base_width=16,
        depth=4,
        tta="flips",
        amp="auto",
        channels_last=True,
        ema_decay=0.999,
        seed=0,
    ),
}


def check(values: dict) -> None:
    """Knobs that depend on each other: the U-Net divides the patch ``depth - 1`` times; an epoch holds a batch."""
    why = f"the U-Net of depth {values['depth']} halves it"
    check_divisible(values, ("patch_size",), 2 ** (values["depth"] - 1), why)
    check_at_least(values, "samples_per_epoch", "batch_size")
