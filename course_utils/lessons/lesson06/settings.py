"""The profiles of lesson 06_activation_maximization: knob -> value for ``smoke``, ``cpu`` and ``gpu``.

Every profile has the same knobs.

Read through :func:`course_utils.config.get_config` (``get_config("06_activation_maximization", profile, knob=value)``).
"""

from ...knobs import number, text, whole

LESSON = "06_activation_maximization"


def _profiles(value: str) -> str:
    """A comma list of profiles whose checkpoints may be used, e.g. ``"cpu,gpu,smoke"``."""
    from ...config import parse_profiles

    parse_profiles(value)
    return value


KNOBS = {
    "checkpoint_profiles": text(_profiles),
    "fallback_epochs": whole(1),
    "n_images": whole(1),
    "mri_size": whole(8),
    "encoder_size": whole(16),
    "mri_steps": whole(1),
    "n_filters": whole(1),
    "tv": number(0.0, 100.0),
    "l2": number(0.0, 100.0),
    "jitter": whole(0),
}

SETTINGS = {
    "smoke": dict(
        checkpoint_profiles="smoke",
        fallback_epochs=3,
        n_images=2,
        image_size=32,
        mri_size=16,
        encoder_size=64,
        steps=12,
        mri_steps=12,
        lr=0.05,
        n_filters=2,
        tv=2.0,
        l2=4.0,
        jitter=2,
        seed=0,
    ),
    "cpu": dict(
        checkpoint_profiles="cpu,gpu,smoke",
        fallback_epochs=60,
        n_images=6,
        image_size=96,
        mri_size=24,
        encoder_size=96,
        steps=160,
        mri_steps=80,
        lr=0.05,
        n_filters=4,
        tv=2.0,
        l2=4.0,
        jitter=4,
        seed=0,
    ),
    "gpu": dict(
        checkpoint_profiles="gpu,cpu,smoke",
        fallback_epochs=80,
        n_images=10,
        image_size=128,
        mri_size=48,
        encoder_size=224,
        steps=256,
        mri_steps=256,
        lr=0.05,
        n_filters=6,
        tv=2.0,
        l2=4.0,
        jitter=6,
        seed=0,
    ),
}
