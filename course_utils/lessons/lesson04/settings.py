"""The profiles of lesson 04_mri_lesions: knob -> value for ``smoke``, ``cpu`` and ``gpu``.

Every profile has the same knobs. A profile fixes the work (``epochs`` of ``samples_per_epoch`` patches,
``synthesis_epochs`` for the synthesis exercise), never the clock: ``max_train_seconds`` is an optional
cap, off (``None``) in every profile. The knobs this lesson alone has are declared in ``KNOBS``; the
others in :data:`course_utils.knobs.COMMON`. ``modalities`` names the network's input images (``"FLAIR,T1,T2"`` in
every profile, chosen on the benchmark's three patients: ``benchmarks/RESULTS.md``, 2026-12-02 12:31; ``"FLAIR,T1"``
for archives without T2, such as the WMH 2017 challenge, ``"FLAIR"`` for FLAIR alone); read it with
:func:`modalities_of`.

Read through :func:`course_utils.config.get_config` (``get_config("04_mri_lesions", profile, knob=value)``).
"""

from ...errors import ConfigError
from ...knobs import check_at_least, check_divisible, choice, number, positive, text, whole
from ...metrics.threshold import PER_CASE_CRITERIA

LESSON = "04_mri_lesions"
MODALITIES = ("FLAIR", "T1", "T2")
"""The images lesson 04 can feed its network: the ones both open_ms_data and the synthetic volumes have."""


def _modalities(value: str) -> str:
    """The network's input images, FLAIR first, comma-separated: FLAIR, FLAIR,T1 or FLAIR,T1,T2.

    Returns the normalised text (``" flair, t1"`` -> ``"FLAIR,T1"``); read it as a tuple with
    :func:`modalities_of`.
    """
    names = [w.strip().upper() for w in value.split(",") if w.strip()]
    unknown = [n for n in names if n not in MODALITIES]
    if unknown:
        raise ConfigError(f"{unknown} is not among the images this lesson has, {', '.join(MODALITIES)}.")
    if not names or names[0] != "FLAIR":
        raise ConfigError(f"{value!r}: list FLAIR first (lesions are drawn on FLAIR), e.g. 'FLAIR' or 'FLAIR,T1'.")
    if len(set(names)) != len(names):
        raise ConfigError(f"{value!r} names an image twice.")
    return ",".join(names)


def modalities_of(cfg) -> tuple[str, ...]:
    """The ``modalities`` knob of a lesson 04 configuration as a tuple, ``("FLAIR", "T1")``."""
    return tuple(cfg.modalities.split(","))


KNOBS = {
    "modalities": text(_modalities),
    "spacing": positive(8.0),
    "n_synthetic": whole(0),
    "n_synthetic_cases": whole(1),
    "lesion_fraction": number(0.0, 1.0),
    "per_lesion": number(0.0, 1.0),
    "intensity_jitter": number(0.0, 1.0, high_open=True),
    "infer_patch_size": whole(8),
    "overlap": number(0.0, 1.0, high_open=True),
    "synthesis_epochs": whole(1),
    "threshold_criterion": choice(*PER_CASE_CRITERIA),
    "rim_mm": number(0.0, 50.0),
    "threshold_tolerance": number(0.0, 1.0, high_open=True),
}

SETTINGS = {
    "smoke": dict(
        modalities="FLAIR,T1,T2",
        spacing=4.0,
        n_synthetic=0,
        n_synthetic_cases=3,
        patch_size=16,
        lesion_fraction=0.5,
        per_lesion=0.0,
        intensity_jitter=0.1,
        batch_size=4,
        samples_per_epoch=32,
        epochs=2,
        max_train_seconds=None,
        lr=3e-3,
        bce_weight=0.5,
        fn_weight=0.5,
        base_width=4,
        depth=3,
        infer_patch_size=32,
        overlap=0.25,
        tta="lr",
        synthesis_epochs=2,
        amp="auto",
        channels_last=True,
        ema_decay=0.9,
        threshold_criterion="dice",
        rim_mm=3.0,
        threshold_tolerance=0.0,
        seed=0,
    ),
    "cpu": dict(
        modalities="FLAIR,T1,T2",
        spacing=1.0,
        n_synthetic=6,
        n_synthetic_cases=4,
        patch_size=32,
        lesion_fraction=0.6,
        per_lesion=0.3,
        intensity_jitter=0.1,
        batch_size=4,
        samples_per_epoch=128,
        epochs=80,
        max_train_seconds=None,
        lr=3e-3,
        bce_weight=0.5,
        fn_weight=0.5,
        base_width=8,
        depth=3,
        infer_patch_size=64,
        overlap=0.25,
        tta="lr",
        synthesis_epochs=12,
        amp="auto",
        channels_last=True,
        ema_decay=0.998,
        threshold_criterion="dice",
        rim_mm=3.0,
        threshold_tolerance=0.0,
        seed=0,
    ),
    "gpu": dict(
        modalities="FLAIR,T1,T2",
        spacing=1.0,
        n_synthetic=8,
        n_synthetic_cases=6,
        patch_size=64,
        lesion_fraction=0.6,
        per_lesion=0.3,
        intensity_jitter=0.1,
        batch_size=4,
        samples_per_epoch=512,
        epochs=150,
        max_train_seconds=None,
        lr=3e-3,
        bce_weight=0.5,
        fn_weight=0.5,
        base_width=16,
        depth=4,
        infer_patch_size=128,
        overlap=0.25,
        tta="lr",
        synthesis_epochs=40,
        amp="auto",
        channels_last=True,
        ema_decay=0.999,
        threshold_criterion="dice",
        rim_mm=3.0,
        threshold_tolerance=0.0,
        seed=0,
    ),
}


def check(values: dict) -> None:
    """Knobs that depend on each other: the U-Net divides both patch sizes ``depth - 1`` times; an epoch
    holds a batch."""
    why = f"the U-Net of depth {values['depth']} halves it"
    check_divisible(values, ("patch_size", "infer_patch_size"), 2 ** (values["depth"] - 1), why)
    check_at_least(values, "samples_per_epoch", "batch_size")
