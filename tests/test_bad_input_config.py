"""Issue #15, the configuration cases: every knob declares what it accepts, and a bad value fails in
``get_config`` (the first cell of a lesson, the start of a benchmark), before any data is read or trained on."""

import pytest

from course_utils.config import LESSONS, PROFILES, get_config, lesson_knobs, lesson_settings, parse_overrides
from course_utils.errors import ConfigError, ConfigTypeError
from course_utils.inference import TTA_CHOICES
from course_utils.knobs import COMMON, Knob


def test_every_knob_of_every_lesson_is_declared_and_every_profile_value_passes_its_declaration():
    for lesson in LESSONS:
        knobs = lesson_knobs(lesson)
        for profile in PROFILES:
            values = lesson_settings(lesson)[profile]
            assert set(knobs) == set(values), lesson
            for name, value in values.items():
                assert knobs[name].validate(name, value) == value, (lesson, profile, name)


def test_a_bad_profile_value_is_caught_too(monkeypatch):
    """The profiles themselves are checked: a typo in a settings file fails at the first get_config."""
    settings = lesson_settings("03_drive_vessels")
    monkeypatch.setitem(settings, "smoke", {**settings["smoke"], "tta": "flip"})
    with pytest.raises(ConfigError, match="Did you mean 'flips'"):
        get_config("03_drive_vessels", "smoke")


@pytest.mark.parametrize(
    "lesson, knob, value, message",
    [
        # case 2: a typo in a text choice used to fail only after the whole training budget
        ("03_drive_vessels", "tta", "flip", r"tta='flip' is not supported\. Did you mean 'flips'\?"),
        ("04_mri_lesions", "tta", "flip", r"Did you mean 'flips'\?"),
        ("04_mri_lesions", "threshold_criterion", "dicee", r"Did you mean 'dice'\?"),
        ("03_drive_vessels", "amp", "yes", r"amp='yes' is not supported.*'bf16', 'fp16'"),
        ("03_drive_vessels", "channel", "gren", r"Did you mean 'green'\?"),
        ("05_transfer_learning", "smp_input", "rgb-clahe", r"Did you mean 'rgb_clahe'\?"),
        ("05_transfer_learning", "weights", "imagnet", r"Did you mean 'imagenet'\?.*path of an existing weights file"),
        ("05_transfer_learning", "sizes", "2,five", r"sizes must be whole numbers"),
        ("06_activation_maximization", "checkpoint_profiles", "cpu,gpus", r"profiles must be among"),
        ("04_mri_lesions", "modalities", "FLAIR,T3", r"'modalities'.*\['T3'\] is not among.*FLAIR, T1, T2"),
        ("04_mri_lesions", "modalities", "T1,FLAIR", r"'modalities'.*list FLAIR first"),
        ("04_mri_lesions", "modalities", "FLAIR,T1,flair", r"'modalities'.*names an image twice"),
        # case 3: negative whole numbers for decimal knobs
        ("03_drive_vessels", "max_train_seconds", -5, r"'max_train_seconds' takes a finite number > 0, or None"),
        ("03_drive_vessels", "lr", -1, r"'lr' takes a finite number in \(0, 10\]; got -1\.0"),
        ("04_mri_lesions", "rim_mm", -1, r"'rim_mm' takes a finite number in \[0, 50\]; got -1\.0"),
        # case 13: zero or NaN used to fail deep inside torch
        ("03_drive_vessels", "epochs", 0, r"'epochs' takes a whole number >= 1; got 0"),
        ("03_drive_vessels", "batch_size", 0, r"'batch_size' takes a whole number >= 1; got 0"),
        ("03_drive_vessels", "lr", float("nan"), r"'lr' takes a finite number"),
        ("04_mri_lesions", "spacing", 0.0, r"'spacing' takes a finite number in \(0, 8\]"),
        ("04_mri_lesions", "overlap", 1.0, r"'overlap' takes a finite number in \[0, 1\)"),
        ("03_drive_vessels", "ema_decay", 1.0, r"'ema_decay'"),
        ("03_drive_vessels", "bce_weight", 1.5, r"'bce_weight' takes a finite number in \[0, 1\]"),
        ("03_drive_vessels", "patch_size", 4, r"'patch_size' takes a whole number >= 8"),
        ("06_activation_maximization", "fallback_epochs", 0, r"'fallback_epochs' takes a whole number >= 1"),
    ],
)
def test_a_bad_value_fails_in_get_config_naming_the_knob(lesson, knob, value, message):
    with pytest.raises(ConfigError, match=message):
        get_config(lesson, "smoke", **{knob: value})


def test_wrong_types_are_refused_not_converted():
    with pytest.raises(ConfigTypeError, match="'epochs' takes a whole number"):
        get_config("03_drive_vessels", "smoke", epochs=2.5)
    with pytest.raises(ConfigTypeError, match="'channels_last' takes True or False"):
        get_config("03_drive_vessels", "smoke", channels_last="ture")
    with pytest.raises(ConfigTypeError, match="'tta'"):
        get_config("03_drive_vessels", "smoke", tta=True)


def test_lessons_03_and_04_use_one_flip_vocabulary():
    for lesson in ("03_drive_vessels", "04_mri_lesions"):
        assert lesson_knobs(lesson)["tta"].choices == TTA_CHOICES
        for word in TTA_CHOICES:
            assert get_config(lesson, "smoke", tta=word).tta == word


def test_set_parses_as_the_knob_declares_case_11():
    assert parse_overrides("03_drive_vessels", "smoke", ["max_train_seconds=none"]) == {"max_train_seconds": None}
    assert parse_overrides("03_drive_vessels", "smoke", ["max_train_seconds=90"]) == {"max_train_seconds": 90.0}
    with pytest.raises(ConfigError, match="write one of true, yes, 1, false, no, 0"):
        parse_overrides("03_drive_vessels", "smoke", ["channels_last=ture"])
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        parse_overrides("03_drive_vessels", "smoke", ["epoch=5"])
    with pytest.raises(ConfigError, match="knob=value"):
        parse_overrides("03_drive_vessels", "smoke", ["epochs"])


def test_a_knob_without_a_declaration_is_a_course_bug_that_is_reported(monkeypatch):
    settings = lesson_settings("01_pytorch_basics")
    monkeypatch.setitem(settings, "smoke", {**settings["smoke"], "mystery_knob": 3})
    with pytest.raises(ConfigError, match=r"\['mystery_knob'\] have no declaration"):
        get_config("01_pytorch_basics", "smoke")


def test_knob_describe_and_ranges():
    assert Knob(int, low=1).describe() == "a whole number >= 1"
    assert COMMON["ema_decay"].describe() == "a finite number in [0, 1)"
    assert COMMON["max_train_seconds"].describe() == "a finite number > 0, or None"
    assert COMMON["max_train_seconds"].validate("max_train_seconds", None) is None
    assert COMMON["lr"].validate("lr", 1) == 1.0 and isinstance(COMMON["lr"].validate("lr", 1), float)


@pytest.mark.parametrize(
    "lesson, overrides, message",
    [
        ("03_drive_vessels", dict(patch_size=90), r"'patch_size' = 90 must be a multiple of 4.*try 88 or 92"),
        ("04_mri_lesions", dict(infer_patch_size=50), r"'infer_patch_size' = 50 must be a multiple of 4"),
        ("04_mri_lesions", dict(samples_per_epoch=2, batch_size=4), r"'samples_per_epoch' = 2 is smaller than"),
        ("03_drive_vessels", dict(samples_per_epoch=8, batch_size=16), r"no full batch"),
        ("05_transfer_learning", dict(patch_size=80), r"multiple of 32 \(the EfficientNet encoder"),
    ],
)
def test_knobs_that_depend_on_each_other_are_checked_together(lesson, overrides, message):
    """Further bad inputs: these used to fail after the data was prepared (patch_batches) or inside the U-Net."""
    with pytest.raises(ConfigError, match=message):
        get_config(lesson, "smoke", **overrides)


def test_fp16_without_a_gpu_fails_in_get_config(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="amp='fp16' needs a CUDA GPU"):
        get_config("03_drive_vessels", "smoke", amp="fp16")


def test_a_removed_knob_names_what_replaced_it():
    with pytest.raises(ConfigError, match=r"'train_seconds'.*removed.*use 'epochs' or 'max_train_seconds'"):
        get_config("03_drive_vessels", "cpu", train_seconds=585.0)
    with pytest.raises(ConfigError, match=r"use 'fallback_epochs'"):
        get_config("06_activation_maximization", "cpu", train_seconds=45.0)
    with pytest.raises(ConfigError, match=r"use 'synthesis_epochs'"):
        get_config("04_mri_lesions", "cpu", synthesis_seconds=60.0)


def test_a_text_knob_describes_itself_in_words_and_takes_a_number_from_the_runner():
    with pytest.raises(ConfigTypeError, match=r"'sizes' takes a text: Training-set sizes as a comma list"):
        get_config("05_transfer_learning", "smoke", sizes=[2, 5])
    assert get_config("05_transfer_learning", "smoke", sizes=20).sizes == "20"  # -p sizes=20 is JSON 20


def test_the_modalities_knob_is_normalised_and_read_as_a_tuple():
    from course_utils.lessons.lesson04.settings import modalities_of

    cfg = get_config("04_mri_lesions", "smoke", modalities=" flair, t1 ,T2")
    assert cfg.modalities == "FLAIR,T1,T2" and modalities_of(cfg) == ("FLAIR", "T1", "T2")
    assert modalities_of(get_config("04_mri_lesions", "cpu")) == ("FLAIR", "T1", "T2")
    assert modalities_of(get_config("04_mri_lesions", "smoke", modalities="FLAIR")) == ("FLAIR",)
