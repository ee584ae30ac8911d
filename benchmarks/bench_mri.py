"""MS lesion benchmark of lesson 04: leave-one-patient-out over open_ms_data patients 07, 19 and 26.

Run from the repository root with ``course_utils`` importable (``PYTHONPATH=.``)::

    python benchmarks/bench_mri.py --profile smoke              # seconds, checks that it runs
    python benchmarks/bench_mri.py --profile cpu --threads 2    # the profile's 80 epochs per fold, 2 seeds
    python benchmarks/bench_mri.py --profile cpu --seeds 1      # one seed: half the time, no spread
    python benchmarks/bench_mri.py --profile gpu
    python benchmarks/bench_mri.py --profile cpu --set spacing=1.5 --set patch_size=40
    python benchmarks/bench_mri.py --profile cpu --set modalities=FLAIR,T1      # without T2

Protocol. Each fold trains a 3D U-Net (input images ``modalities``: FLAIR, T1 and T2 in every profile) from
scratch on two patients, plus ``n_synthetic`` synthetic volumes (MNI152 anatomy with the lesion masks of the 27 other
open_ms_data patients; never the test patients' masks), and tests on the third. Training
and inference run on a grid of ``spacing`` mm; test probabilities are brought back to the
native 1 mm grid (linear interpolation, 0 outside the brain and within ``rim_mm``, 3 mm, of the
brain mask's edge, where no white-matter lesion lies) and every metric is computed
there against the original consensus mask. The threshold is chosen on the fold's real
training volumes only (best mean ``threshold_criterion`` over them: Dice, or the mean of Dice
and lesion F1). Without open_ms_data under the data root
(``$COURSE_DATA_DIR``) the run uses ``n_synthetic_cases`` synthetic cases as "patients" and
says so (``"data": "synthetic"``). Training time counts the training loop; inference time
is per volume, sliding window plus resampling to the native grid.

False lesions (segment, then classify), nested inside the training patients. Each fold also runs the
false-lesion filter of :mod:`course_utils.lessons.lesson04.pipeline`: the candidate lesions (26-connected
components at the fold's threshold) of each *training* patient's out-of-fold map - predicted by a network
trained with the same recipe on the other training patient alone (+ the synthetic volumes; seeded
``1000 s + 500 + j`` for patient ``j``, shared by the folds of a seed) - train a logistic regression on
candidate features (size, probability, depth from the brain's edge, each input image inside and against the
tissue around), and its cut-off is the best mean lesion F1 over those two patients; then it removes candidates of the
test patient. The held-out patient enters nothing but the score. This trains twice as many networks (3 per seed
on top of the 3 fold networks); ``--no-filter`` skips it. The top-level metrics are those after the filter;
``before_filter`` has the same summary for the fold networks' thresholded maps (paired: the same networks).

Every fold is trained ``--seeds`` times (default 2: seeds ``seed``, ``seed + 1``...; fold ``k`` of
seed ``s`` seeds torch and the patch sampler with ``1000 s + k``), because one run of one seed
ranks nothing: two seeds of the same recipe differed by more than most of the changes tried.

Prints progress to stderr, then as the last stdout line one JSON object: the top-level metric keys
are the mean over seeds of each seed's mean over folds (HD95: over folds where it is defined),
``<key>_sd`` their standard deviation over seeds (``None`` with one seed), ``per_patient`` the mean
and standard deviation over seeds per held-out patient, ``folds`` every (seed, fold) run.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from course_utils import bench_cli
from course_utils.device import describe_device
from course_utils.lessons.lesson04.pipeline import (
    LESSON,
    METRIC_KEYS,
    build_lesion_model,
    case_candidates,
    evaluate_case,
    evaluate_segmentation,
    filter_candidates,
    fit_false_lesion_filter,
    inference_kwargs,
    mean_metrics,
    out_of_fold_maps,
    predict_case,
    prepare_open_ms,
    prepare_synthetic,
    train_lesion_network,
    training_threshold,
)
from course_utils.lessons.lesson04.settings import modalities_of
from course_utils.models import count_parameters
from course_utils.mri import open_ms_dir

PATIENTS = ("patient07", "patient19", "patient26")
SYNTHETIC_SEED = 1000  # synthetic training volumes: seeds 1000, 1001, ...


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_overrides(pairs: list[str], profile: str) -> dict:
    """``--set knob=value`` pairs of this lesson."""
    return bench_cli.parse_overrides(LESSON, pairs, profile)


def save_fold_probs(
    folder: str, test, prob: np.ndarray, train, train_probs, threshold: float, seed: int, oof_maps=()
) -> Path:
    """``folder/<test patient>-seed<seed>.npz``: ``test`` and ``train_<patient>`` probabilities (float16) and the
    threshold; with the filter, ``oof_<patient>`` (out-of-fold map of a training patient) and its
    ``oof_threshold_<patient>``."""
    path = Path(folder) / f"{test.name}-seed{seed}.npz"
    if path.exists():
        raise FileExistsError(f"{path} exists; give --save-probs an empty folder (nothing is overwritten).")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "test": prob.astype(np.float16),
        "threshold": np.float32(threshold),
        **{f"train_{p.name}": q.astype(np.float16) for p, q in zip(train, train_probs)},
        **{f"oof_{m.case.name}": m.prob.astype(np.float16) for m in oof_maps},
        **{f"oof_threshold_{m.case.name}": np.float32(m.threshold) for m in oof_maps},
    }
    np.savez_compressed(path, **arrays)
    return path


def fold_row(m: dict) -> dict:
    """The metrics and lesion counts of one evaluation, rounded for the JSON."""
    return {
        **{key: round(float(m[key]), 4) for key in METRIC_KEYS},
        "n_true_lesions": m["n_true_lesions"],
        "n_pred_lesions": m["n_pred_lesions"],
        "true_volume_ml": round(m["true_volume_ml"], 2),
        "pred_volume_ml": round(m["pred_volume_ml"], 2),
    }


SUMMARY_KEYS = METRIC_KEYS + ("n_pred_lesions", "n_true_lesions", "train_seconds", "infer_seconds_per_volume")


def _sd(values: list[float]) -> float | None:
    """Sample standard deviation (``ddof=1``), rounded; ``None`` for fewer than two values."""
    return round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None


def summarise(folds: list[dict], keys: tuple[str, ...] = SUMMARY_KEYS) -> dict:
    """Means and spreads of ``folds`` (one row per seed and held-out patient, with ``seed`` and ``patient``).

    ``key``: the mean over seeds of each seed's mean over its folds; ``key_sd``: the standard deviation of
    those per-seed means (the seed-to-seed spread of the benchmark's headline); ``per_patient``:
    ``{patient: {key: mean over seeds, key_sd: sd over seeds}}``. NaN values (HD95 of an empty
    prediction) are left out of the means with a :class:`~course_utils.errors.MetricWarning`.
    """
    if not folds:
        raise ValueError("no benchmark runs to summarise (did --only name a patient of the data?).")
    seeds = sorted({f["seed"] for f in folds})
    per_seed = [mean_metrics([f for f in folds if f["seed"] == s], keys) for s in seeds]
    out: dict = {}
    for key in keys:
        values = [m[key] for m in per_seed if np.isfinite(m[key])]
        out[key] = round(float(np.mean(values)), 4) if values else float("nan")
        out[f"{key}_sd"] = _sd(values)
    out["per_patient"] = {}
    for patient in dict.fromkeys(f["patient"] for f in folds):
        rows = [f for f in folds if f["patient"] == patient]
        entry = {}
        for key in keys:
            values = [r[key] for r in rows if np.isfinite(r[key])]
            entry[key] = round(float(np.mean(values)), 4) if values else float("nan")
            entry[f"{key}_sd"] = _sd(values)
        out["per_patient"][patient] = entry
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = bench_cli.bench_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (the work; default: the profile's)")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: the profile's)")
    parser.add_argument(
        "--seeds", type=int, default=2, help="train every fold with this many seeds (default 2; mean and sd over them)"
    )
    parser.add_argument("--folds", type=int, default=None, help="run only the first N folds (quick checks)")
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="PATIENT",
        help="hold out only this patient (repeatable; quick checks)",
    )
    parser.add_argument(
        "--no-filter",
        action="store_true",
        help="skip the false-lesion filter and its out-of-fold networks (half the training time)",
    )
    parser.add_argument("--synthetic", action="store_true", help="use synthetic patients even if open_ms_data exists")
    parser.add_argument(
        "--save-probs",
        default=None,
        metavar="DIR",
        help="also save each fold's native-grid probabilities (test and training volumes, float16) "
        "to DIR/<patient>-seed<seed>.npz for later analysis; DIR must not hold them yet",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}.")
    wall_start = time.perf_counter()
    cfg, device = bench_cli.start_run(LESSON, args, epochs=args.epochs, seed=args.seed)
    log(
        f"profile {cfg.profile} on {describe_device(device)}, {torch.get_num_threads()} thread(s), "
        f"load {os.getloadavg()[0]:.2f}"
    )
    log(dict(cfg))

    real = open_ms_dir() is not None and not args.synthetic
    modalities = modalities_of(cfg)
    t0 = time.perf_counter()
    if real:
        patients = prepare_open_ms(cfg.spacing, modalities, patients=PATIENTS)
        extra = prepare_synthetic(cfg.n_synthetic, seed=SYNTHETIC_SEED, spacing=cfg.spacing) if cfg.n_synthetic else []
        note = (
            f"open_ms_data patients {', '.join(PATIENTS)}, leave one out; "
            f"{len(extra)} synthetic volume(s) (MNI152 + lesion masks of other patients) added to training"
        )
    else:
        patients = prepare_synthetic(cfg.n_synthetic_cases, seed=cfg.seed, spacing=cfg.spacing)
        extra = []
        note = (
            f"SYNTHETIC data (no open_ms_data under the data root): {len(patients)} synthetic cases at "
            f"{cfg.spacing} mm, leave one out"
        )
    log(note, f"(prepared in {time.perf_counter() - t0:.1f} s)")

    folds = []
    n_folds = len(patients) if args.folds is None else min(args.folds, len(patients))
    unknown = sorted(set(args.only or ()) - {p.name for p in patients})
    if unknown:
        raise SystemExit(f"--only {', '.join(unknown)}: no such patient; this data has {[p.name for p in patients]}.")
    if not args.no_filter and len(patients) < 3:
        raise SystemExit(
            f"the false-lesion filter needs out-of-fold maps of two training patients, so at least 3 patients; "
            f"this data has {len(patients)}. Add --no-filter."
        )
    seeds = [cfg.seed + j for j in range(args.seeds)]
    runs = [(s, k) for s in seeds for k in range(n_folds) if not args.only or patients[k].name in args.only]
    kw = inference_kwargs(cfg)
    params = count_parameters(build_lesion_model(len(modalities), cfg.base_width, cfg.depth))
    oof: dict[int, dict] = {}  # seed -> the out-of-fold networks of that seed, shared by its folds
    for run, (seed, k) in enumerate(runs):
        test = patients[k]
        train = [p for i, p in enumerate(patients) if i != k]
        log(
            f"run {run + 1}/{len(runs)}, seed {seed}, fold {k + 1}/{n_folds}: test {test.name}, "
            f"train {[p.name for p in train]} + {len(extra)} synthetic"
        )
        model, history, train_seconds = train_lesion_network(train + extra, cfg, 1000 * seed + k, device)
        log(f"  trained {history.describe()}, last loss {history.last('train_loss'):.4f}")
        threshold, train_probs = training_threshold(model, train, cfg)
        prob, seconds = predict_case(model, test, **kw)
        m = evaluate_case(prob, test, threshold)
        row = {"patient": test.name, "seed": seed, **fold_row(m), "threshold": round(threshold, 3)}
        row.update(
            train_seconds=round(train_seconds, 1),
            infer_seconds_per_volume=round(seconds, 2),
            epochs=len(history),
            planned_epochs=cfg.epochs,
            time_capped=history.time_capped,
        )
        oof_maps = []
        if not args.no_filter:
            # nested: each training patient's map comes from a network trained on another training patient alone
            networks = oof.setdefault(seed, {})
            seeds_of = {p.name: 1000 * seed + 500 + j for j, p in enumerate(patients)}
            oof_maps = out_of_fold_maps(train, extra, cfg, seeds_of, device, networks)
            start = time.perf_counter()
            training = [case_candidates(m.prob, m.case, m.threshold, modalities) for m in oof_maps]
            classifier, cut = fit_false_lesion_filter(training)
            fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            kept_map, kept = filter_candidates(case_candidates(prob, test, threshold, modalities), classifier, cut)
            filter_seconds = time.perf_counter() - start
            after = evaluate_segmentation(kept_map, test)
            row = {
                **row,
                **fold_row(after),
                "before_filter": fold_row(m),
                "filter_cut": round(cut, 3),
                "filter_weights": {k2: round(v, 3) for k2, v in classifier.weights().items()},
                "filter_training_candidates": int(sum(c.n for c in training)),
                "filter_training_real": int(sum(c.is_lesion.sum() for c in training)),
                "filter_fit_seconds": round(fit_seconds, 2),
                "infer_seconds_per_volume": round(seconds + filter_seconds, 2),
                "filter_seconds_per_volume": round(filter_seconds, 2),
                "oof_networks": {m.case.name: m.trained_on for m in oof_maps},
            }
            log(
                "  before the filter: "
                + ", ".join(f"{key} {row['before_filter'][key]}" for key in METRIC_KEYS + ("n_pred_lesions",))
            )
        if args.save_probs:
            save_fold_probs(args.save_probs, test, prob, train, train_probs, threshold, seed, oof_maps)
        log(
            f"  {test.name} (seed {seed}): "
            + ", ".join(f"{key} {row[key]}" for key in METRIC_KEYS + ("n_pred_lesions",))
            + f", threshold {threshold:.2f}, {row['infer_seconds_per_volume']:.1f} s inference"
        )
        folds.append(row)

    summary = summarise(folds, SUMMARY_KEYS)
    if not args.no_filter:
        stage1 = [{"seed": f["seed"], "patient": f["patient"], **f["before_filter"]} for f in folds]
        summary["before_filter"] = summarise(stage1, METRIC_KEYS + ("n_pred_lesions", "n_true_lesions"))
        summary["oof_train_seconds"] = round(sum(n[2] for nets in oof.values() for n in nets.values()), 1)
    result = {
        **summary,
        "false_lesion_filter": not args.no_filter,
        "hd95_nan_folds": int(sum(not np.isfinite(f["hd95_mm"]) for f in folds)),
        "seeds": seeds,
        "folds": folds,
        "profile": cfg.profile,
        "data": "open_ms" if real else "synthetic",
        "note": note,
        "n_synthetic_train": len(extra),
        "device": describe_device(device),
        "params": params,
        "threads": torch.get_num_threads(),
        "total_seconds": round(time.perf_counter() - wall_start, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "knobs": {k: v for k, v in dict(cfg).items() if k not in ("lesson", "profile")},
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}, torch {torch.__version__}",
    }
    log(
        f"mean over {len(seeds)} seed(s) of the mean over folds (sd over seeds): "
        + ", ".join(f"{k} {result[k]} ({result[k + '_sd']})" for k in METRIC_KEYS)
    )
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
