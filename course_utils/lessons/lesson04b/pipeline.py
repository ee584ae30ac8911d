"""Lesson 04b (false lesions): the notebook's steps that are not its subject.

The filter itself (candidates, features, classifier, out-of-fold maps) is lesson 04's pipeline
(:func:`~course_utils.lessons.lesson04.pipeline.case_candidates`, :func:`~course_utils.lessons.lesson04.pipeline.
out_of_fold_maps`, :func:`~course_utils.lessons.lesson04.pipeline.fit_false_lesion_filter`), shared with
``benchmarks/bench_mri.py``. Here: lesson 04's network (loaded or trained again) and the candidate gallery.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import ndimage

from ...checkpoint import find_checkpoint, load_model
from ...models import UNet
from ..lesson04.pipeline import (
    CHECKPOINT_KIND,
    Candidates,
    LessonData,
    train_lesion_network,
    training_threshold,
)
from ..lesson04.settings import LESSON as LESSON04
from ..lesson04.settings import modalities_of
from .settings import LESSON

KEPT_COLOR, REMOVED_COLOR, TRUTH_COLOR = "#009E73", "#D55E00", "#0072B2"  # Okabe-Ito green, vermillion, blue


def lesson04_network(
    cfg04: Any, data: LessonData, device: torch.device | str | None = None, reuse: bool = True
) -> tuple[UNet, float, str]:
    """``(model, threshold, how)``: lesson 04's network for the profile ``cfg04`` (lesson 04's settings).

    With ``reuse``, the newest checkpoint lesson 04 saved for this profile is loaded when its record says it was
    trained on the same cases and input images, for the same epochs, with the same seed (its threshold comes with
    it). Otherwise the network is trained here with the same recipe
    (:func:`~course_utils.lessons.lesson04.pipeline.train_lesion_network`) and its threshold chosen on the training
    patients as lesson 04 does. ``how`` says which happened and why.
    """
    names = [c.name for c in data.train + data.extra]
    why = "reuse_lesson04 is False"
    if reuse:
        path = find_checkpoint(LESSON04, CHECKPOINT_KIND, [cfg04.profile])
        why = f"lesson 04 saved no network for profile {cfg04.profile!r}"
        if path is not None:
            model, record = load_model(path)
            done = record.training or {}
            wanted = {"cases": names, "epochs": cfg04.epochs, "seed": cfg04.seed}
            differs = [k for k, v in wanted.items() if done.get(k) != v]
            if list(record.inputs) != list(modalities_of(cfg04)):
                differs.append(f"input images ({', '.join(record.inputs)})")
            if not differs and record.threshold is not None:
                return model.to(device or "cpu"), float(record.threshold), f"loaded lesson 04's network from {path}"
            why = f"{path} was trained with other {', '.join(differs) or 'settings'}"
    model, history, seconds = train_lesion_network(data.train + data.extra, cfg04, cfg04.seed, device)
    threshold, _ = training_threshold(model, data.train, cfg04)
    return model, threshold, f"trained here with lesson 04's recipe ({why}): {history.describe()}"


def candidate_gallery(
    image: np.ndarray,
    candidates: Candidates,
    ids: Sequence[int],
    colors: Sequence[str],
    titles: Sequence[str],
    size: int = 28,
    title: str = "",
    columns: int = 8,
) -> plt.Figure:
    """Axial crops (``size`` voxels wide) of candidates ``ids`` (1-based) over ``image`` (native grid, e.g. FLAIR).

    Each crop is the candidate's largest axial slice, centred on it: the candidate outlined in its colour, the true
    lesions of the case in :data:`TRUTH_COLOR` (dashed).
    """
    if not len(ids) == len(colors) == len(titles):
        raise ValueError(f"one colour and title per candidate: {len(ids)} ids, {len(colors)} colours, {len(titles)}.")
    ids = list(ids)
    rows = max(1, -(-len(ids) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.75 * rows + 0.4), squeeze=False)
    truth = candidates.case.native_label > 0
    lo, hi = np.percentile(image[candidates.case.native_mask], [1, 99.5])
    boxes = ndimage.find_objects(candidates.labels)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, k, color, text in zip(axes.flat, ids, colors, titles):
        inside = candidates.labels[boxes[k - 1]] == k
        z = boxes[k - 1][2].start + int(np.argmax(inside.sum(axis=(0, 1))))
        cx, cy = (int(round(v)) for v in ndimage.center_of_mass(candidates.labels[:, :, z] == k))
        half = size // 2
        xs = slice(max(cx - half, 0), min(cx + half, image.shape[0]))
        ys = slice(max(cy - half, 0), min(cy + half, image.shape[1]))
        ax.imshow(image[xs, ys, z].T, cmap="gray", origin="lower", vmin=lo, vmax=hi)
        if truth[xs, ys, z].any():
            ax.contour(truth[xs, ys, z].T, levels=[0.5], colors=[TRUTH_COLOR], linewidths=1.0, linestyles="--")
        ax.contour((candidates.labels[xs, ys, z] == k).T, levels=[0.5], colors=[color], linewidths=1.4)
        ax.set_title(text, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["LESSON", "lesson04_network", "candidate_gallery", "KEPT_COLOR", "REMOVED_COLOR", "TRUTH_COLOR"]
