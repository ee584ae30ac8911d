import pytest

from course_utils.config import LESSONS, PROFILES, get_config, lesson_number, lesson_settings, resolve_profile
from course_utils.errors import ConfigError, ConfigTypeError

LESSON_SETTINGS = {lesson: lesson_settings(lesson) for lesson in LESSONS}


def test_every_lesson_has_every_profile_with_the_same_knobs():
    for lesson, profiles in LESSON_SETTINGS.items():
        assert set(profiles) == set(PROFILES), lesson
        knobs = [set(v) for v in profiles.values()]
        assert all(k == knobs[0] for k in knobs), f"{lesson}: profiles differ in knobs"
        for values in profiles.values():
            for name, value in values.items():
                assert type(value) is type(profiles["cpu"][name]), (lesson, name)


def test_smoke_is_smaller_than_cpu_which_is_not_larger_than_gpu():
    for lesson, profiles in LESSON_SETTINGS.items():
        for knob in ("n_train", "epochs"):
            if knob in profiles["cpu"]:
                assert profiles["smoke"][knob] < profiles["cpu"][knob] <= profiles["gpu"][knob], (lesson, knob)


def test_profile_values_and_override():
    cfg = get_config("01_pytorch_basics", "smoke")
    assert cfg.profile == "smoke" and cfg.epochs == LESSON_SETTINGS["01_pytorch_basics"]["smoke"]["epochs"]
    cfg = get_config("01_pytorch_basics", "cpu", epochs=3, lr=None)
    assert cfg.epochs == 3
    assert cfg.lr == LESSON_SETTINGS["01_pytorch_basics"]["cpu"]["lr"]  # None keeps the default
    assert cfg["batch_size"] == cfg.batch_size


def test_int_accepted_for_float_knob_but_not_the_reverse():
    assert get_config("01_pytorch_basics", "cpu", lr=1).lr == 1.0
    with pytest.raises(ConfigTypeError, match="'epochs' takes a whole number >= 1; got 2.5 of type float"):
        get_config("01_pytorch_basics", "cpu", epochs=2.5)
    with pytest.raises(ConfigTypeError):
        get_config("01_pytorch_basics", "cpu", epochs="10")
    with pytest.raises(ConfigTypeError):
        get_config("01_pytorch_basics", "cpu", epochs=True)


def test_unknown_profile_knob_and_lesson_are_explained():
    with pytest.raises(ConfigError, match="Unknown profile 'fast'.*smoke, cpu, gpu, auto"):
        get_config("01_pytorch_basics", "fast")
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        get_config("01_pytorch_basics", "cpu", epoch=3)
    with pytest.raises(ConfigError, match="Unknown lesson"):
        get_config("99_nothing", "cpu")
    with pytest.raises(ConfigError, match="'epochs' takes a whole number >= 1; got -1"):
        get_config("01_pytorch_basics", "cpu", epochs=-1)


def test_auto_profile_resolves_to_cpu_without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_profile("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_profile("AUTO") == "gpu"


def test_config_is_read_only():
    cfg = get_config("01_pytorch_basics", "smoke")
    with pytest.raises(AttributeError, match="read-only"):
        cfg.epochs = 100
    with pytest.raises(AttributeError, match="Unknown knob"):
        cfg.epochz  # noqa: B018 - the attribute access itself is what raises


def test_parse_overrides_types_values_like_the_profile_defaults():
    from course_utils.config import parse_overrides

    got = parse_overrides("03_drive_vessels", "cpu", ["patch_size=64", "tta=none", "lr=0.01"])
    assert got == {"patch_size": 64, "tta": "none", "lr": 0.01}
    assert isinstance(got["patch_size"], int) and isinstance(got["lr"], float)
    assert parse_overrides("03_drive_vessels", "auto", []) == {}
    with pytest.raises(ConfigError, match="knob"):
        parse_overrides("03_drive_vessels", "cpu", ["widht=3"])
    with pytest.raises(ConfigError, match="knob=value"):
        parse_overrides("03_drive_vessels", "cpu", ["patch_size"])


def test_lesson_settings_come_from_each_lessons_settings_module():
    import importlib
    from pathlib import Path

    import course_utils.lessons as lessons

    packages = sorted(p.name for p in Path(lessons.__file__).parent.glob("lesson[0-9][0-9]*") if p.is_dir())
    assert packages == [f"lesson{lesson_number(lesson)}" for lesson in LESSONS], "one package per lesson, in order"
    for lesson in LESSONS:
        module = importlib.import_module(f"course_utils.lessons.lesson{lesson_number(lesson)}.settings")
        assert lesson_settings(lesson) is module.SETTINGS
        assert getattr(module, "LESSON", lesson) == lesson
        assert dict(get_config(lesson, "smoke")) == {"lesson": lesson, "profile": "smoke", **module.SETTINGS["smoke"]}
    with pytest.raises(ConfigError, match="lesson"):
        lesson_settings("07_diffusion")


def test_check_choice_and_check_int_live_in_validate():
    from course_utils.models import blocks
    from course_utils.validate import check_choice, check_int

    assert blocks.check_choice is check_choice and blocks.check_int is check_int  # still importable there
    assert check_choice("tta", "lr", ("none", "lr")) == "lr"
    with pytest.raises(
        ConfigError,
        match=r"norm='bathc' is not supported\. Did you mean 'batch'\? "
        r"Choose one of 'batch', 'instance'\.",
    ):
        check_choice("norm", "bathc", ("batch", "instance"))
    assert issubclass(ConfigError, ValueError)
    assert check_int("depth", 3, 1) == 3
    with pytest.raises(ConfigTypeError, match="depth must be an int"):
        check_int("depth", 3.0, 1)
    with pytest.raises(ConfigTypeError):
        check_int("depth", True, 1)
    with pytest.raises(ConfigError, match="depth must be >= 1"):
        check_int("depth", 0, 1)


def test_a_negative_whole_number_for_a_decimal_knob_is_refused():
    """Issue 15, case 3: the sign used to be checked only after an early return for int -> float."""
    for knob in ("max_train_seconds", "lr"):
        with pytest.raises(ConfigError, match=f"{knob}.*got -5.0"):
            get_config("03_drive_vessels", "smoke", **{knob: -5})
    assert get_config("03_drive_vessels", "smoke", max_train_seconds=5).max_train_seconds == 5.0


def test_a_decimal_knob_must_be_finite():
    """Issue 15, case 13 (lr=nan): NaN passed the sign check."""
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="finite"):
            get_config("03_drive_vessels", "smoke", lr=bad)


def test_set_refuses_a_misspelled_boolean_and_a_value_of_the_wrong_type():
    """Issue 15, case 11: ``channels_last=ture`` used to become False."""
    from course_utils.config import parse_overrides

    assert parse_overrides("03_drive_vessels", "smoke", ["channels_last=No"]) == {"channels_last": False}
    assert parse_overrides("03_drive_vessels", "smoke", ["channels_last=yes"]) == {"channels_last": True}
    with pytest.raises(ConfigError, match="channels_last='ture': write one of true"):
        parse_overrides("03_drive_vessels", "smoke", ["channels_last=ture"])
    with pytest.raises(ConfigError, match="epochs takes a whole number"):
        parse_overrides("03_drive_vessels", "smoke", ["epochs=5.5"])
