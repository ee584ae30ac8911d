"""MS lesion benchmark of lesson 04: leave-one-patient-out over open_ms_data patients 07, 19 and 26.

Run from the repository root with ``course_utils`` importable (``PYTHONPATH=.``)::

    python benchmarks/bench_mri.py --profile smoke              # seconds, checks that it runs
    python benchmarks/bench_mri.py --profile cpu --threads 2    # the profile's 80 epochs per fold
    python benchmarks/bench_mri.py --profile gpu
    python benchmarks/bench_mri.py --profile cpu --set spacing=1.5 --set patch_size=40

Protocol. Each fold trains a 3D U-Net (FLAIR + T1 in) from scratch on two patients, plus
``n_synthetic`` synthetic volumes (MNI152 anatomy with the lesion masks of the 27 other
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

Prints progress to stderr, then as the last stdout line one JSON object whose top-level
metric keys are means over folds (HD95: over folds where it is defined).
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
    choose_case_threshold,
    evaluate_case,
    lesion_patches,
    mean_metrics,
    patch_batches,
    predict_case,
    prepare_open_ms,
    prepare_synthetic,
)
from course_utils.models import count_parameters
from course_utils.mri import open_ms_dir
from course_utils.recipe import train_model
from course_utils.seeding import seed_everything

PATIENTS = ("patient07", "patient19", "patient26")
SYNTHETIC_SEED = 1000  # synthetic training volumes: seeds 1000, 1001, ...


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_overrides(pairs: list[str], profile: str) -> dict:
    """``--set knob=value`` pairs of this lesson."""
    return bench_cli.parse_overrides(LESSON, pairs, profile)


def save_fold_probs(folder: str, test, prob: np.ndarray, train, train_probs, threshold: float) -> Path:
    """``folder/<test patient>.npz``: ``test`` and ``train_<patient>`` probabilities (float16) and the threshold."""
    path = Path(folder) / f"{test.name}.npz"
    if path.exists():
        raise FileExistsError(f"{path} exists; give --save-probs an empty folder (nothing is overwritten).")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "test": prob.astype(np.float16),
        "threshold": np.float32(threshold),
        **{f"train_{p.name}": q.astype(np.float16) for p, q in zip(train, train_probs)},
    }
    np.savez_compressed(path, **arrays)
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = bench_cli.bench_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (the work; default: the profile's)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--folds", type=int, default=None, help="run only the first N folds (quick checks)")
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="PATIENT",
        help="hold out only this patient (repeatable; quick checks)",
    )
    parser.add_argument("--synthetic", action="store_true", help="use synthetic patients even if open_ms_data exists")
    parser.add_argument(
        "--save-probs",
        default=None,
        metavar="DIR",
        help="also save each fold's native-grid probabilities (test and training volumes, float16) "
        "to DIR/<patient>.npz for later analysis; DIR must not hold them yet",
    )
    args = parser.parse_args(argv)
    wall_start = time.perf_counter()
    cfg, device = bench_cli.start_run(LESSON, args, epochs=args.epochs, seed=args.seed)
    log(
        f"profile {cfg.profile} on {describe_device(device)}, {torch.get_num_threads()} thread(s), "
        f"load {os.getloadavg()[0]:.2f}"
    )
    log(dict(cfg))

    real = open_ms_dir() is not None and not args.synthetic
    t0 = time.perf_counter()
    if real:
        patients = prepare_open_ms(cfg.spacing, ("FLAIR", "T1"), patients=PATIENTS)
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
    params = 0
    for k in range(n_folds):
        test = patients[k]
        if args.only and test.name not in args.only:
            continue
        train = [p for i, p in enumerate(patients) if i != k]
        seed_everything(cfg.seed + k)
        model = build_lesion_model(2, cfg.base_width, cfg.depth)
        params = count_parameters(model)
        dataset = lesion_patches(
            train + extra,
            patch_size=cfg.patch_size,
            samples_per_epoch=cfg.samples_per_epoch,
            lesion_fraction=cfg.lesion_fraction,
            per_lesion=cfg.per_lesion,
            intensity_jitter=cfg.intensity_jitter,
            modalities=("FLAIR", "T1"),
            seed=cfg.seed + k,
        )
        log(f"fold {k + 1}/{n_folds}: test {test.name}, train {[p.name for p in train]} + {len(extra)} synthetic")
        start = time.perf_counter()
        history = train_model(
            model,
            patch_batches(dataset, cfg.batch_size),
            lr=cfg.lr,
            epochs=cfg.epochs,
            max_seconds=cfg.max_train_seconds,
            bce_weight=cfg.bce_weight,
            fn_weight=cfg.fn_weight,
            device=device,
            amp=cfg.amp,
            channels_last=cfg.channels_last,
            ema_decay=cfg.ema_decay,
            show_progress=True,
            verbose=False,
        )
        train_seconds = time.perf_counter() - start
        log(f"  trained {history.describe()}, last loss {history.last('train_loss'):.4f}")
        kw = dict(
            patch_size=cfg.infer_patch_size,
            overlap=cfg.overlap,
            batch_size=2 * cfg.batch_size,
            tta=cfg.tta,
            modalities=("FLAIR", "T1"),
            amp=cfg.amp,
            rim_mm=cfg.rim_mm,
        )
        train_probs = [predict_case(model, p, **kw)[0] for p in train]
        threshold = choose_case_threshold(
            train_probs, train, criterion=cfg.threshold_criterion, tolerance=cfg.threshold_tolerance
        )
        prob, seconds = predict_case(model, test, **kw)
        m = evaluate_case(prob, test, threshold)
        if args.save_probs:
            save_fold_probs(args.save_probs, test, prob, train, train_probs, threshold)
        row = {
            "patient": test.name,
            **{key: round(float(m[key]), 4) for key in METRIC_KEYS},
            "train_seconds": round(train_seconds, 1),
            "infer_seconds_per_volume": round(seconds, 2),
            "threshold": round(threshold, 3),
            "epochs": len(history),
            "planned_epochs": cfg.epochs,
            "time_capped": history.time_capped,
            "n_true_lesions": m["n_true_lesions"],
            "n_pred_lesions": m["n_pred_lesions"],
            "true_volume_ml": round(m["true_volume_ml"], 2),
            "pred_volume_ml": round(m["pred_volume_ml"], 2),
        }
        log(
            f"  {test.name}: "
            + ", ".join(f"{key} {row[key]}" for key in METRIC_KEYS)
            + f", threshold {threshold:.2f}, {seconds:.1f} s inference"
        )
        folds.append(row)

    means = mean_metrics(folds, METRIC_KEYS + ("train_seconds", "infer_seconds_per_volume"))
    result = {
        **{k: round(v, 4) for k, v in means.items()},
        "hd95_nan_folds": int(sum(not np.isfinite(f["hd95_mm"]) for f in folds)),
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
    log(f"mean over {len(folds)} folds: " + ", ".join(f"{k} {result[k]}" for k in METRIC_KEYS))
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
