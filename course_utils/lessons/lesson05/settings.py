"""The profiles of lesson 05_transfer_learning: knob -> value for ``smoke``, ``cpu`` and ``gpu``.

Every profile has the same knobs.

Read through :func:`course_utils.config.get_config` (``get_config("05_transfer_learning", profile, knob=value)``).
"""

LESSON = "05_transfer_learning"

SETTINGS = {
    "smoke": dict(
        weights="auto",
        sizes="1,2",
        max_test=1,
        steps=4,
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
