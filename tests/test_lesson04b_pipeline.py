"""Lesson 04b's steps: lesson 04's network (loaded when it matches, trained again otherwise), the out-of-fold maps
(nested: no map comes from a network that trained on its case; networks shared between calls), the gallery."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_utils.checkpoint import checkpoint_path, save_checkpoint
from course_utils.config import get_config
from course_utils.lessons.lesson04 import pipeline as p04
from course_utils.lessons.lesson04b import pipeline as p04b

TINY = dict(spacing=6.0, n_synthetic_cases=3, epochs=1, samples_per_epoch=8, patch_size=8, base_width=2, depth=2)


@pytest.fixture
def tiny(empty_data_root):
    cfg = get_config("04_mri_lesions", "smoke", **TINY)
    return cfg, p04.lesson_data(cfg)


def _save_lesson04(cfg, data, model, **training):
    record = p04.model_record(
        model,
        cfg,
        spacing_mm=data.test.case.spacing,
        threshold=0.35,
        threshold_source="test",
        train_cases=[c.name for c in data.train + data.extra],
        data_source="synthetic",
        seconds=1.0,
        epochs=training.get("epochs", cfg.epochs),
    )
    record.training["seed"] = training.get("seed", cfg.seed)
    save_checkpoint(
        checkpoint_path(p04.LESSON, p04.CHECKPOINT_KIND, cfg.profile), model, record=record, on_exists="rename"
    )


def test_lesson04_network_is_loaded_when_it_matches_and_trained_again_otherwise(tiny, monkeypatch):
    cfg, data = tiny
    assert not data.real and [c.name for c in data.train] == ["synthetic-000", "synthetic-001"]
    trained = []
    real_train = p04b.train_lesion_network

    def counting(*args, **kwargs):
        trained.append(args[2])
        return real_train(*args, **kwargs)

    monkeypatch.setattr(p04b, "train_lesion_network", counting)
    model, threshold, how = p04b.lesson04_network(cfg, data)
    assert trained == [cfg.seed] and "no network for profile 'smoke'" in how and 0 < threshold <= 1

    _save_lesson04(cfg, data, model)
    loaded, threshold, how = p04b.lesson04_network(cfg, data)
    assert trained == [cfg.seed] and threshold == 0.35 and how.startswith("loaded lesson 04's network")
    x = np.asarray(next(iter(loaded.state_dict().values())))
    assert np.array_equal(x, np.asarray(next(iter(model.state_dict().values()))))

    _, _, how = p04b.lesson04_network(cfg, data, reuse=False)
    assert len(trained) == 2 and "reuse_lesson04 is False" in how
    _save_lesson04(cfg, data, model, seed=cfg.seed + 1)
    _, _, how = p04b.lesson04_network(cfg, data)
    assert len(trained) == 3 and "other seed" in how

    flair_only = get_config("04_mri_lesions", "smoke", modalities="FLAIR", seed=cfg.seed + 1, **TINY)
    model, _, how = p04b.lesson04_network(flair_only, data)
    assert len(trained) == 4 and "other input images (FLAIR, T1, T2)" in how and model.config["in_channels"] == 1


def test_out_of_fold_maps_are_nested_and_share_their_networks(tiny, monkeypatch):
    cfg, data = tiny
    cases = data.cases
    trained = []
    real_train = p04.train_lesion_network

    def counting(cases_, cfg_, seed, *args, **kwargs):
        trained.append((seed, [c.name for c in cases_]))
        return real_train(cases_, cfg_, seed, *args, **kwargs)

    monkeypatch.setattr(p04, "train_lesion_network", counting)
    seeds = {c.name: 500 + i for i, c in enumerate(cases)}
    networks = {}
    first = p04.out_of_fold_maps([cases[0], cases[1]], [], cfg, seeds, networks=networks)
    assert [(m.case.name, m.trained_on) for m in first] == [
        ("synthetic-000", "synthetic-001"),
        ("synthetic-001", "synthetic-000"),
    ]
    assert trained == [(501, ["synthetic-001"]), (500, ["synthetic-000"])], "each trained on one case alone"
    second = p04.out_of_fold_maps([cases[0], cases[2]], [], cfg, seeds, networks=networks)
    assert [(m.case.name, m.trained_on) for m in second] == [
        ("synthetic-000", "synthetic-002"),
        ("synthetic-002", "synthetic-000"),
    ]
    assert len(trained) == 3, "the network trained on synthetic-000 is reused, one new network"
    assert np.array_equal(second[1].prob, second[1].prob) and second[1].prob.shape == cases[2].native_shape
    with pytest.raises(ValueError, match="at least two training cases"):
        p04.out_of_fold_maps([cases[0]], [], cfg, seeds)
    with pytest.raises(KeyError, match="no seed"):
        p04.out_of_fold_maps([cases[0], cases[1]], [], cfg, {})


def test_candidate_gallery_draws_one_panel_per_candidate(tiny):
    _, data = tiny
    case = data.test
    prob = (case.native_label > 0).astype(np.float32)
    cands = p04.case_candidates(prob, case, 0.5, ("FLAIR", "T1"))
    assert cands.n >= 2
    fig = p04b.candidate_gallery(
        p04.native_image(case), cands, [1, 2], ["g", "r"], ["a", "b"], size=12, columns=4, title="t"
    )
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["a", "b"] and len(fig.axes) == 4
    plt.close(fig)
    with pytest.raises(ValueError, match="one colour and title per candidate"):
        p04b.candidate_gallery(p04.native_image(case), cands, [1, 2], ["g"], ["a", "b"])
