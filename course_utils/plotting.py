"""Plots the lessons share: learning curves and image / label / prediction overlays.

Colour code used throughout the course (colour-blind safe):
true positive = white, false positive = vermillion, false negative = sky blue.
"""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np

TP_COLOR = (1.0, 1.0, 1.0)
FP_COLOR = (0.84, 0.37, 0.0)  # vermillion
FN_COLOR = (0.34, 0.71, 0.91)  # sky blue
LABEL_COLOR = (0.0, 0.62, 0.45)  # bluish green
PRED_COLOR = (0.90, 0.62, 0.0)  # orange


def to_numpy_image(x: Any) -> np.ndarray:
    """A tensor or array ``(C, H, W)``, ``(H, W, C)`` or ``(H, W)`` as float ``(H, W)`` or ``(H, W, 3)``."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3 and x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
        x = np.moveaxis(x, 0, -1)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3):
        raise ValueError(f"expected a 2D image (H, W), (C, H, W) or (H, W, C), got shape {x.shape}")
    return x


def _normalise(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(img)


def error_map(truth: Any, pred: Any) -> np.ndarray:
    """RGB ``(H, W, 3)`` image: TP white, FP vermillion, FN sky blue, TN black."""
    t = to_numpy_image(truth) > 0.5
    p = to_numpy_image(pred) > 0.5
    if t.shape != p.shape:
        raise ValueError(f"truth {t.shape} and prediction {p.shape} differ in shape")
    rgb = np.zeros(t.shape + (3,), dtype=np.float32)
    rgb[t & p] = TP_COLOR
    rgb[~t & p] = FP_COLOR
    rgb[t & ~p] = FN_COLOR
    return rgb


def overlay(
    ax: plt.Axes,
    image: Any,
    mask: Any = None,
    color: Sequence[float] = LABEL_COLOR,
    alpha: float = 0.5,
    title: str | None = None,
) -> plt.Axes:
    """Draw ``image`` (grey or RGB) on ``ax`` with ``mask`` filled in ``color``."""
    img = _normalise(to_numpy_image(image))
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
    if mask is not None:
        m = to_numpy_image(mask) > 0.5
        rgba = np.zeros(m.shape + (4,), dtype=np.float32)
        rgba[m] = (*color, alpha)
        ax.imshow(rgba, interpolation="nearest")
    if title:
        ax.set_title(title)
    ax.set_axis_off()
    return ax


def show_segmentation(
    images: Any,
    labels: Any = None,
    preds: Any = None,
    *,
    n: int = 4,
    titles: Sequence[str] | None = None,
    size: float = 2.6,
) -> plt.Figure:
    """A grid, one row per sample: image, label overlay, prediction overlay, error map.

    ``images`` ``(N, C, H, W)``; ``labels``/``preds`` ``(N, 1, H, W)`` binary (or
    probabilities for ``preds``, thresholded at 0.5). Columns without data are left out.
    """
    n = min(n, len(images))
    cols = ["image"] + (["label"] if labels is not None else []) + (["prediction"] if preds is not None else [])
    if labels is not None and preds is not None:
        cols.append("errors")
    fig, axes = plt.subplots(n, len(cols), figsize=(size * len(cols), size * n), squeeze=False)
    for i in range(n):
        for j, col in enumerate(cols):
            ax = axes[i, j]
            if col == "image":
                overlay(ax, images[i])
            elif col == "label":
                overlay(ax, images[i], labels[i], LABEL_COLOR)
            elif col == "prediction":
                overlay(ax, images[i], to_numpy_image(preds[i]) > 0.5, PRED_COLOR)
            else:
                ax.imshow(error_map(labels[i], preds[i]), interpolation="nearest")
                ax.set_axis_off()
            if i == 0:
                ax.set_title((titles or cols)[j])
    if "errors" in cols:
        from matplotlib.patches import Patch

        fig.legend(
            handles=[
                Patch(color=TP_COLOR, label="true positive", ec="k"),
                Patch(color=FP_COLOR, label="false positive"),
                Patch(color=FN_COLOR, label="false negative"),
            ],
            loc="lower center",
            ncol=3,
            frameon=False,
        )
        fig.tight_layout(rect=(0, 0.05, 1, 1))
    else:
        fig.tight_layout()
    return fig


def plot_history(
    history: Any,
    metrics: Sequence[str] | None = None,
    *,
    title: str | None = None,
    axes: Sequence[plt.Axes] | None = None,
    label: str | None = None,
) -> plt.Figure:
    """Learning curves: losses on the left, validation metrics on the right.

    ``history`` is a :class:`course_utils.training.History` (or a list of per-epoch
    dicts). ``metrics`` defaults to every ``val_*`` key other than ``val_loss``.
    Pass ``axes`` (two axes) and ``label`` to draw several runs on one figure.
    """
    records = history.to_list() if hasattr(history, "to_list") else list(history)
    if not records:
        raise ValueError("history is empty: train for at least one epoch first")
    keys = records[-1].keys()
    metrics = list(metrics) if metrics is not None else [k for k in keys if k.startswith("val_") and k != "val_loss"]
    epochs = [r["epoch"] for r in records]
    if axes is None:
        fig, axes = plt.subplots(1, 2 if metrics else 1, figsize=(10 if metrics else 5, 3.6), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    prefix = f"{label} " if label else ""
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        if key in keys:
            axes[0].plot(
                epochs, [r[key] for r in records], style, marker="o", ms=3, label=prefix + key.replace("_", " ")
            )
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend(frameon=False)
    axes[0].grid(alpha=0.3)
    if metrics and len(axes) > 1:
        for key in metrics:
            axes[1].plot(
                epochs,
                [r.get(key, np.nan) for r in records],
                marker="o",
                ms=3,
                label=prefix + key.replace("val_", "validation ").replace("_", " "),
            )
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("metric")
        axes[1].legend(frameon=False)
        axes[1].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def number_grid(
    ax: plt.Axes, values: Any, title: str | None = None, cmap: str = "Blues", fmt: str = "{:g}"
) -> plt.Axes:
    """Draw a small 2D array as a grid of numbered cells, blackboard style (for worked examples)."""
    arr = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"number_grid draws 2D arrays, got shape {arr.shape}")
    ax.imshow(arr, cmap=cmap, vmin=min(arr.min(), 0), vmax=max(arr.max(), 1) * 1.6)
    for (i, j), v in np.ndenumerate(arr):
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=11)
    ax.set_xticks(np.arange(-0.5, arr.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, arr.shape[0]), minor=True)
    ax.grid(which="minor", color="k", linewidth=0.8)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    if title:
        ax.set_title(title)
    return ax


def draw_boxes(
    ax: plt.Axes,
    boxes: Any,
    labels: Any,
    colors: Sequence[Any],
    *,
    scores: Any = None,
    linestyle: str = "-",
    linewidth: float = 1.2,
) -> None:
    """Draw ``boxes (N, 4)`` (``x_min, y_min, x_max, y_max`` in the shown image's pixels) on ``ax``, box ``i`` in
    ``colors[labels[i]]``; with ``scores (N,)``, each box's score is written at its top-left corner."""
    from matplotlib.patches import Rectangle

    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(labels)} labels.")
    for i, ((x0, y0, x1, y1), label) in enumerate(zip(boxes, labels)):
        color = colors[int(label)]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, lw=linewidth, ls=linestyle))
        if scores is not None:
            ax.text(x0, y0, f"{float(scores[i]):.2f}", color=color, fontsize=6, va="bottom")
