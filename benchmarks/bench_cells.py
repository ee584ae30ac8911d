"""Blood-cell benchmark of lesson 07: the grid detector on BCCD, scored the COCO way; blood counts.

Run from the repository root with ``course_utils`` importable (``PYTHONPATH=.``)::

    python benchmarks/bench_cells.py --profile smoke             # seconds, checks that it runs
    python benchmarks/bench_cells.py --profile cpu --threads 2
    python benchmarks/bench_cells.py --profile gpu
    python benchmarks/bench_cells.py --profile cpu --set epochs=12 --set boxes_per_cell=2

Protocol (``course_utils.lessons.lesson07.pipeline``). BCCD from the data root (``$COURSE_DATA_DIR``), its own
split: the detector trains on the 205 training images (``cfg.epochs`` epochs, flips), the per-class score
thresholds for counting are chosen on the 87 validation images (smallest mean absolute count error), and
everything is scored once on the 72 test images (the JSON's ``val`` block has the validation images' scores: tune
knobs on those): COCO AP at IoU 0.5 and 0.50:0.95 by ``pycocotools``
``COCOeval`` (every detection down to ``score_threshold``, NMS at ``nms_iou``), and the count error per class
against the annotated boxes. Without BCCD the run uses synthetic smears and says so (``"data": "synthetic"``).
Training seconds count the training loop; inference seconds are per image (network and decoding, batches of 8).

Segment, then classify (same images): the course U-Net (``block``) learns the cells' pixels from ellipses inscribed
in the boxes (weak labels), on random crops of the training images; touching cells are split by a watershed; a
logistic regression on each object's size, shape and colour, trained on the validation images' objects (the U-Net
did not train on them) matched to their boxes, names each test object (or drops it as "none"); counts are the named
objects, and their boxes are scored the COCO way too. The U-Net is trained again with the other block
(``double_conv`` / ``multires``) at the same epochs: parameters, seconds and Dice against the weak masks of the
test images (``--no-ablation`` skips it).

Prints progress to stderr, then as the last stdout line one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import numpy as np
import torch

from course_utils import bench_cli
from course_utils.config import get_config
from course_utils.device import describe_device
from course_utils.lessons.lesson07.pipeline import (
    annotated_counts,
    class_counts_of,
    count_errors,
    count_thresholds,
    detect,
    detection_counts,
    lesson_data,
    score_detections,
    segment_then_classify,
    train_detector,
)
from course_utils.models import count_parameters

LESSON = "07_blood_cells"


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> dict:
    parser = bench_cli.bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--no-ablation", action="store_true", help="skip the U-Net trained with the other block")
    args = parser.parse_args(argv)
    wall_start = time.perf_counter()
    cfg, device = bench_cli.start_run(LESSON, args)
    overrides = {k: v for k, v in dict(cfg).items() if k not in ("lesson", "profile")}
    log(
        f"profile {cfg.profile} on {describe_device(device)}, {torch.get_num_threads()} thread(s), "
        f"load {os.getloadavg()[0]:.2f}"
    )
    log(dict(cfg))
    t0 = time.perf_counter()
    data = lesson_data(cfg)
    log(
        f"{'BCCD' if data.real else 'SYNTHETIC smears'}: {len(data.train)} train, {len(data.val)} val, "
        f"{len(data.test)} test images, loaded in {time.perf_counter() - t0:.1f} s"
    )

    model, history, train_seconds, dataset = train_detector(cfg, data, device)
    log(
        f"trained {history.describe()}, last loss {history.last('train_loss'):.4f}; "
        f"{dataset.dropped} of {dataset.boxes} training boxes found no free grid slot"
    )
    val_found, _ = detect(model, data.val, cfg)
    thresholds = count_thresholds(val_found, data.val)
    val_scores = score_detections(data.val, val_found)
    val_mae = count_errors(detection_counts(val_found, thresholds), data.val)
    test_found, infer_seconds = detect(model, data.test, cfg)
    scores = score_detections(data.test, test_found)
    detector_mae = count_errors(detection_counts(test_found, thresholds), data.test)
    classes = list(data.classes)

    segmentation = {}
    blocks = [cfg.block] + ([] if args.no_ablation else [b for b in ("double_conv", "multires") if b != cfg.block])
    for block in blocks:
        run = segment_then_classify(get_config(LESSON, cfg.profile, **{**overrides, "block": block}), data, device)
        run_scores = score_detections(data.test, run.detections)
        segmentation[block] = {
            "dice_vs_weak_masks": round(run.test_dice, 4),
            "params": count_parameters(run.model),
            "train_seconds": round(run.seconds, 1),
            "infer_seconds_per_image": round(run.infer_seconds_per_image, 4),
            "count_mae": {k: round(v, 4) for k, v in count_errors(class_counts_of(run.detections), data.test).items()},
            "map50": round(run_scores.map50, 4),
            "ap50_per_class": {k: round(v, 4) for k, v in run_scores.ap50.items()},
        }
        log(f"segment then classify ({block}): {segmentation[block]}")
    stc = segmentation[cfg.block]
    result = {
        "map50": round(scores.map50, 4),
        "map50_95": round(scores.map50_95, 4),
        "ap50_per_class": {k: round(v, 4) for k, v in scores.ap50.items()},
        "ap50_95_per_class": {k: round(v, 4) for k, v in scores.ap50_95.items()},
        "count_mae": {
            "detector": {k: round(v, 4) for k, v in detector_mae.items()},
            "segment_then_classify": stc["count_mae"],
        },
        "segment_then_classify": segmentation,
        "count_thresholds": {"detector": dict(zip(classes, thresholds.round(2).tolist()))},
        "val": {
            "map50": round(val_scores.map50, 4),
            "map50_95": round(val_scores.map50_95, 4),
            "count_mae_detector": {k: round(v, 4) for k, v in val_mae.items()},
            "note": "the validation images: tune knobs on these, never on the test numbers above",
        },
        "mean_annotated_counts": dict(zip(classes, annotated_counts(data.test).mean(0).round(2).tolist())),
        "train_seconds": round(train_seconds, 1),
        "epochs": len(history),
        "infer_seconds_per_image": round(infer_seconds, 4),
        "params": count_parameters(model),
        "priors": [list(np.round(p, 1)) for p in model.spec.priors],
        "grid": [model.spec.rows, model.spec.cols],
        "dropped_training_boxes": dataset.dropped,
        "training_boxes": dataset.boxes,
        "device": describe_device(device),
        "profile": cfg.profile,
        "data": "bccd" if data.real else "synthetic",
        "n_images": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
        "threads": torch.get_num_threads(),
        "total_seconds": round(time.perf_counter() - wall_start, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "knobs": {k: v for k, v in dict(cfg).items() if k not in ("lesson", "profile")},
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}, torch {torch.__version__}",
    }
    log(
        f"test: mAP@0.5 {result['map50']}, mAP@[.5:.95] {result['map50_95']}, AP@0.5 {result['ap50_per_class']}, "
        f"count MAE {result['count_mae']}, {infer_seconds:.3f} s per image"
    )
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
