"""DRIVE benchmark of lesson 03: train from scratch on the 20 training images, test on the 20 test images.

Run from the repository root with ``course_utils`` importable (``PYTHONPATH=.``)::

    python benchmarks/bench_drive.py --profile smoke              # under a minute, checks that it runs
    python benchmarks/bench_drive.py --profile cpu --threads 2    # the profile's 42 epochs (about 10 minutes)
    python benchmarks/bench_drive.py --profile gpu
    python benchmarks/bench_drive.py --profile cpu --set patch_size=128 --set base_width=12

Protocol. DRIVE is read from the data root (``$COURSE_DATA_DIR``; see
``course_utils.data.drive``); without it the run uses the synthetic fundus set and
says so (``"data": "synthetic"``). ``n_val`` of the 20 training images are held out
and only used to choose the binarisation threshold (maximum F1 there); the network
trains on the others. The 20 test images are scored against ``1st_manual``, counting
pixels inside the field-of-view mask only, all pixels pooled; the second observer
(``2nd_manual``) is scored the same way (``human_*``). Training time counts the
training loop with its per-epoch validation patches; inference time is per image,
preprocessing included, with the profile's test-time augmentation (``tta``) and,
for comparison, without it.

Prints progress, then as the last line one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import torch

from course_utils import bench_cli
from course_utils.data.fundus import input_channels, preprocess_cases
from course_utils.data.patches import patch_loader
from course_utils.data.vessels import load_vessel_data
from course_utils.device import describe_device
from course_utils.lessons.lesson03.pipeline import (
    LESSON,
    build_vessel_model,
    evaluate_vessels,
    observer_metrics,
    predict_cases,
)
from course_utils.metrics import choose_threshold
from course_utils.models import count_parameters
from course_utils.precision import describe_precision
from course_utils.recipe import train_model
from course_utils.seeding import seed_everything


def parse_overrides(pairs: list[str], profile: str) -> dict:
    """``--set knob=value`` pairs of this lesson."""
    return bench_cli.parse_overrides(LESSON, pairs, profile)


def main(argv: list[str] | None = None) -> dict:
    parser = bench_cli.bench_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (the work; default: the profile's)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    cfg, device = bench_cli.start_run(LESSON, args, epochs=args.epochs, seed=args.seed)
    print(
        f"profile {cfg.profile} on {describe_device(device)} ({describe_precision(device, cfg.amp)}), "
        f"{torch.get_num_threads()} thread(s), "
        f"load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(dict(cfg), flush=True)

    data = load_vessel_data(n_val=cfg.n_val, seed=cfg.seed, max_train=cfg.max_train, max_test=cfg.max_test)
    print(data.note.split(". DRIVE may not")[0], flush=True)
    train, val = preprocess_cases(data.train, cfg.channel), preprocess_cases(data.val, cfg.channel)

    seed_everything(cfg.seed)
    model = build_vessel_model(input_channels(cfg.channel), cfg.base_width, cfg.depth)
    print(
        f"U-Net: depth {cfg.depth}, base width {cfg.base_width}, {count_parameters(model):,} parameters; "
        f"training on {len(train)} images, threshold on {len(val) or len(train)} "
        f"{'validation' if val else 'training'} images",
        flush=True,
    )
    loader = patch_loader(
        train,
        patch_size=cfg.patch_size,
        batch_size=cfg.batch_size,
        samples_per_epoch=cfg.samples_per_epoch,
        vessel_bias=cfg.vessel_bias,
        augment_strength=cfg.augment,
        seed=cfg.seed,
        num_workers=cfg.num_workers,
    )
    val_loader = (
        patch_loader(
            val,
            patch_size=cfg.patch_size,
            batch_size=cfg.batch_size,
            samples_per_epoch=max(cfg.batch_size, cfg.samples_per_epoch // 32),
            vessel_bias=cfg.vessel_bias,
            augment_strength=0.0,
            seed=cfg.seed + 1,
            fixed=True,
        )
        if val
        else None
    )
    start = time.perf_counter()
    history = train_model(
        model,
        loader,
        val_loader=val_loader,
        lr=cfg.lr,
        epochs=cfg.epochs,
        bce_weight=cfg.bce_weight,
        amp=cfg.amp,
        channels_last=cfg.channels_last,
        ema_decay=cfg.ema_decay,
        max_seconds=cfg.max_train_seconds,
        device=device,
        show_progress=True,
    )
    train_seconds = time.perf_counter() - start

    choice_cases = val if val else train
    choice_probs, _ = predict_cases(model, choice_cases, tta=cfg.tta, amp=cfg.amp)
    threshold = choose_threshold(
        choice_probs, [c.vessels for c in choice_cases], [c.fov for c in choice_cases], criterion="f1"
    )
    print(f"threshold {threshold:.4f} (max F1 on the {'validation' if val else 'training'} images)", flush=True)

    t0 = time.perf_counter()
    test = preprocess_cases(data.test, cfg.channel)
    prep_seconds = (time.perf_counter() - t0) / len(test)
    probs, infer_seconds = predict_cases(model, test, tta=cfg.tta, amp=cfg.amp)
    metrics = evaluate_vessels(probs, data.test, threshold)
    result = {
        "benchmark": "drive",
        "profile": cfg.profile,
        "data": data.source,
        **{k: round(v, 5 if k == "auc" else 4) for k, v in metrics.items()},
        "threshold": round(threshold, 4),
        "tta": cfg.tta,
        "precision": describe_precision(device, cfg.amp),
        "train_seconds": round(train_seconds, 1),
        "epochs": len(history),
        "planned_epochs": cfg.epochs,
        "time_capped": history.time_capped,
        "infer_seconds_per_image": round(prep_seconds + infer_seconds, 3),
    }
    if cfg.tta != "none":
        plain_probs, plain_seconds = predict_cases(model, test, tta="none", amp=cfg.amp)
        plain = evaluate_vessels(plain_probs, data.test, threshold)
        result.update(
            infer_seconds_per_image_no_tta=round(prep_seconds + plain_seconds, 3),
            auc_no_tta=round(plain["auc"], 5),
            f1_no_tta=round(plain["f1"], 4),
        )
    if data.test_observer2:
        human = observer_metrics(data.test, data.test_observer2)
        result.update({f"human_{k}": round(v, 4) for k, v in human.items()})
    result.update(
        params=count_parameters(model),
        device=describe_device(device),
        threads=torch.get_num_threads(),
        n_train=len(train),
        n_val=len(val),
        n_test=len(test),
        knobs={k: v for k, v in dict(cfg).items() if k not in ("lesson", "profile")},
        machine=f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}, torch {torch.__version__}",
    )
    print(
        f"test: AUC {metrics['auc']:.5f}  F1 {metrics['f1']:.4f}  acc {metrics['accuracy']:.4f}  "
        f"sens {metrics['sensitivity']:.4f}  spec {metrics['specificity']:.4f}",
        flush=True,
    )
    # diagnostic only: how good was the validation choice?
    oracle = choose_threshold(probs, [c.vessels for c in data.test], [c.fov for c in data.test], criterion="f1")
    print(
        f"(diagnostic, not a result: the best threshold on the test set would be {oracle:.4f}, "
        f"F1 {evaluate_vessels(probs, data.test, oracle)['f1']:.4f})",
        flush=True,
    )
    if val and os.environ.get("BENCH_DRIVE_DIAGNOSE"):
        train_probs, _ = predict_cases(model, train, tta=cfg.tta, amp=cfg.amp)
        on_train = choose_threshold(train_probs, [c.vessels for c in train], [c.fov for c in train], criterion="f1")
        print(
            f"(diagnostic: a threshold chosen on the training images would be {on_train:.4f}, test F1 "
            f"{evaluate_vessels(probs, data.test, on_train)['f1']:.4f})",
            flush=True,
        )
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
