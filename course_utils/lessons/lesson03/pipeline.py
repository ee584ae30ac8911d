"""Lesson 03 (DRIVE retinal vessels): the steps the notebook and ``benchmarks/bench_drive.py`` share.

1. :func:`course_utils.data.vessels.load_vessel_data`: DRIVE from the data root (or the synthetic
   stand-in), a validation split of the training images, the second observer on the test images;
2. :func:`course_utils.data.fundus.preprocess_cases`: green channel + CLAHE + gamma;
3. :func:`course_utils.data.patches.patch_loader`: vessel-biased random patches with augmentation;
4. :func:`build_vessel_model`, then the course's training recipe :func:`course_utils.recipe.train_model`;
5. :func:`predict_cases`: each whole image in one pass (or tiled), optional flip TTA, 0 outside the FOV;
6. :func:`course_utils.metrics.choose_threshold` on the validation (or training) images, then
   :func:`evaluate_vessels` on the test images, counting pixels inside the field of view only;
7. :func:`model_record`: the checkpoint contract (:class:`course_utils.checkpoint.ModelRecord`).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch

from ...checkpoint import ModelRecord
from ...data.drive import FundusCase
from ...data.fundus import fov_diameter
from ...errors import DataError
from ...inference import predict_image, sliding_window_inference
from ...metrics import binary_metrics, roc_auc_in_mask
from ...models import UNet
from .settings import LESSON

CHECKPOINT_KIND = "unet"


# --------------------------------------------------------------------------- model
def build_vessel_model(in_channels: int = 1, base_width: int = 8, depth: int = 4) -> UNet:
    """The course U-Net for vessels: ``(B, in_channels, H, W) -> (B, 1, H, W)`` logits, BatchNorm."""
    return UNet(in_channels=in_channels, out_channels=1, depth=depth, base_width=base_width)


# --------------------------------------------------------------------------- inference
def predict_cases(
    model: torch.nn.Module,
    cases: Sequence[FundusCase],
    *,
    tta: str = "none",
    tile: int | None = None,
    amp: bool | str = False,
) -> tuple[list[np.ndarray], float]:
    """Vessel probabilities ``(H, W)`` float32 for preprocessed cases (``image (H, W, C)``), and the
    mean seconds per image.

    ``tile=None``: each whole image in one pass (:func:`course_utils.inference.predict_image`,
    reflect-padded to the U-Net's size divisor: fastest); ``tile=p``: ``p x p`` windows with 50 %
    overlap (:func:`course_utils.inference.sliding_window_inference`). ``tta``: ``"none"``, ``"lr"``
    (also the mirror image) or ``"flips"`` (all four flips). Pixels outside the FOV are set to 0
    (the network never has to decide there).
    """
    probs, start = [], time.perf_counter()
    for case in cases:
        image = np.asarray(case.image, dtype=np.float32)
        if image.ndim != 3:
            raise ValueError(f"expected a preprocessed image (H, W, C) for {case.name}, got shape {image.shape}.")
        x = torch.from_numpy(image).permute(2, 0, 1)  # (C, H, W)
        if tile is None:
            prob = predict_image(model, x, tta=tta, amp=amp)[0]
        else:
            prob = sliding_window_inference(model, x, tile, overlap=0.5, activation="sigmoid", tta_flips=tta, amp=amp)[
                0
            ]
        probs.append(np.where(case.fov, prob.cpu().numpy(), 0.0).astype(np.float32))
    return probs, (time.perf_counter() - start) / max(len(cases), 1)


# --------------------------------------------------------------------------- evaluation
def evaluate_vessels(probs: Sequence[np.ndarray], cases: Sequence[FundusCase], threshold: float) -> dict[str, float]:
    """AUC and the binary metrics at ``prob > threshold``, pooled over ``cases`` inside the FOV.

    Returns ``auc, accuracy, sensitivity, specificity, precision, f1, iou`` (DRIVE protocol).
    """
    if len(probs) != len(cases) or not cases:
        raise ValueError(f"need one probability map per case, got {len(probs)} maps and {len(cases)} cases.")
    truth, fov = [c.vessels for c in cases], [c.fov for c in cases]
    *_, auc = roc_auc_in_mask(list(probs), truth, fov)
    metrics = binary_metrics([p > threshold for p in probs], truth, fov)
    return {"auc": auc, **metrics}


def observer_metrics(reference: Sequence[FundusCase], observer: Sequence[FundusCase]) -> dict[str, float]:
    """The second observer's binary metrics against the reference labels, inside the reference FOV."""
    if len(reference) != len(observer) or not reference:
        raise DataError(f"need the same test cases from both observers, got {len(reference)} and {len(observer)}.")
    for r, o in zip(reference, observer):
        if r.name != o.name or r.vessels.shape != o.vessels.shape:
            raise DataError(f"observer cases do not match: {r.name} {r.vessels.shape} vs {o.name} {o.vessels.shape}.")
    return binary_metrics([o.vessels for o in observer], [r.vessels for r in reference], [r.fov for r in reference])


# --------------------------------------------------------------------------- checkpoint contract
def model_record(
    model: UNet,
    cfg: Any,
    *,
    threshold: float,
    threshold_source: str,
    train_cases: Sequence[FundusCase],
    data_source: str,
    seconds: float,
    epochs: int,
    reference: dict[str, Any] | None = None,
) -> ModelRecord:
    """The :class:`~course_utils.checkpoint.ModelRecord` of a lesson 03 vessel U-Net trained with ``cfg``."""
    return ModelRecord(
        lesson=LESSON,
        kind=CHECKPOINT_KIND,
        profile=cfg.profile,
        builder="UNet",
        model_config=dict(model.config),
        inputs=[cfg.channel] if cfg.channel != "rgb" else ["red", "green", "blue"],
        normalisation={
            "method": "clahe+gamma",
            "function": "course_utils.data.fundus.preprocess_cases",
            "channel": cfg.channel,
            "clahe": {"clip_limit": 0.01, "tile_grid": 8, "gamma": 1.2},
            "range": [0.0, 1.0],
            "outside_fov": 0.0,
        },
        spacing_mm=None,
        scale={
            "fov_diameter_px": float(np.median([fov_diameter(c.fov) for c in train_cases])),
            "image_size": list(train_cases[0].fov.shape),
        },
        inference={
            "mode": "whole image",
            "function": "course_utils.lessons.lesson03.pipeline.predict_cases (probability 0 outside the FOV)",
            "pad": "reflect",
            "tta": cfg.tta,
            "amp": cfg.amp,
            "channels_last": cfg.channels_last,
        },
        threshold=float(threshold),
        threshold_source=threshold_source,
        training={
            "data": data_source,
            "images": [c.name for c in train_cases],
            "epochs": int(epochs),
            "seconds": float(seconds),
            "seed": cfg.seed,
        },
        reference=reference,
    )


__all__ = [
    "LESSON",
    "CHECKPOINT_KIND",
    "build_vessel_model",
    "predict_cases",
    "evaluate_vessels",
    "observer_metrics",
    "model_record",
]
