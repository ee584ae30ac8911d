"""Look at 3D volumes slice by slice: an ipywidgets viewer, or a static figure where widgets cannot render.

:func:`show_volume` gives, in a live Jupyter kernel, controls for the axis, the slice, the
modality, the overlay (none / label / prediction / errors) and its opacity. It draws a
static matplotlib figure of chosen slices instead when ``static=True``, when the
environment variable ``COURSE_STATIC_PLOTS=1`` is set (executed notebooks and CI: a saved
HTML page cannot run widgets), when ipywidgets is missing, or outside a Jupyter kernel.

Arrays are ``(X, Y, Z)`` in RAS orientation (load cases with ``canonical=True``): axis 0
gives sagittal, 1 coronal and 2 axial slices. Axial and coronal slices are drawn with
the patient's right on the right of the picture (neurological convention), axial with
anterior up, coronal and sagittal with superior up; sagittal has anterior on the right.
Error colours as everywhere in the course: true positive white, false positive vermillion, false negative sky blue.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import FN_COLOR, FP_COLOR, LABEL_COLOR, PRED_COLOR, TP_COLOR
from ..validate import check_choice

STATIC_ENV = "COURSE_STATIC_PLOTS"
AXIS_NAMES = ("sagittal", "coronal", "axial")
OVERLAYS = ("none", "label", "prediction", "errors")


def use_static_plots(static: bool | None = None) -> bool:
    """Whether to draw static figures: ``static`` if given, else True when widgets cannot render."""
    if static is not None:
        return bool(static)
    if os.environ.get(STATIC_ENV, "").strip() not in ("", "0"):
        return True
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or not hasattr(shell, "kernel")


def _as_images(images: Any) -> tuple[dict[str, np.ndarray], Any, Any, tuple[float, float, float] | None]:
    """``(images dict, label, ignore, spacing)`` from an MRICase, a dict of arrays or one array."""
    if hasattr(images, "images") and hasattr(images, "brain_mask"):
        return dict(images.images), images.label, getattr(images, "ignore", None), images.spacing
    if isinstance(images, Mapping):
        return {str(k): np.asarray(v) for k, v in images.items()}, None, None, None
    return {"image": np.asarray(images)}, None, None, None


def default_slices(shape: Sequence[int], axis: int, label: np.ndarray | None = None, n: int = 3) -> list[int]:
    """``n`` slice indices along ``axis``: those with the most lesion voxels (in order), else evenly spaced."""
    if label is not None and np.asarray(label).any():
        counts = np.asarray(label > 0).sum(axis=tuple(a for a in range(3) if a != axis))
        best = np.argsort(counts, kind="stable")[::-1][:n]
        return sorted(int(i) for i in best if counts[i] > 0)
    size = shape[axis]
    return sorted({int(round(f * (size - 1))) for f in np.linspace(0.3, 0.7, n)})


def take_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Slice ``index`` along ``axis`` of ``volume (X, Y, Z)``, transposed for ``imshow(origin="lower")``."""
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0 (sagittal), 1 (coronal) or 2 (axial), got {axis!r}.")
    if not 0 <= index < volume.shape[axis]:
        raise IndexError(f"slice {index} is outside 0..{volume.shape[axis] - 1} along axis {axis}.")
    return np.take(volume, int(index), axis=axis).T


def _aspect(spacing: Sequence[float] | None, axis: int) -> float:
    if spacing is None:
        return 1.0
    rows, cols = [a for a in range(3) if a != axis][::-1]  # after the transpose: rows = second axis
    return float(spacing[rows]) / float(spacing[cols])


def draw_slice(
    ax: plt.Axes,
    image: np.ndarray,
    axis: int,
    index: int,
    *,
    label: np.ndarray | None = None,
    pred: np.ndarray | None = None,
    overlay: str = "label",
    opacity: float = 0.5,
    spacing: Sequence[float] | None = None,
    title: str | None = None,
    window: tuple[float, float] | None = None,
) -> plt.Axes:
    """Draw one slice of ``image (X, Y, Z)`` with an overlay: ``none``, ``label``, ``prediction`` or ``errors``."""
    check_choice("overlay", overlay, OVERLAYS)
    if overlay in ("label", "errors") and label is None or overlay in ("prediction", "errors") and pred is None:
        raise ValueError(
            f"overlay {overlay!r} needs {'a label' if label is None else 'a prediction'}; "
            "pass it, or choose another overlay."
        )
    img = take_slice(np.asarray(image, dtype=np.float32), axis, index)
    lo, hi = window if window is not None else _window(image)
    aspect = _aspect(spacing, axis)
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, origin="lower", interpolation="nearest", aspect=aspect)
    if overlay != "none":
        rgba = np.zeros(img.shape + (4,), dtype=np.float32)
        t = take_slice(np.asarray(label) > 0, axis, index) if label is not None else None
        p = take_slice(np.asarray(pred) > 0.5, axis, index) if pred is not None else None
        if overlay == "label":
            rgba[t] = (*LABEL_COLOR, opacity)
        elif overlay == "prediction":
            rgba[p] = (*PRED_COLOR, opacity)
        else:
            rgba[t & p] = (*TP_COLOR, opacity)
            rgba[~t & p] = (*FP_COLOR, opacity)
            rgba[t & ~p] = (*FN_COLOR, opacity)
        ax.imshow(rgba, origin="lower", interpolation="nearest", aspect=aspect)
    ax.set_title(title if title is not None else f"{AXIS_NAMES[axis]} {index}", fontsize=9)
    ax.set_axis_off()
    return ax


def _window(image: np.ndarray) -> tuple[float, float]:
    values = np.asarray(image)
    nonzero = values[values != 0]
    if nonzero.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(nonzero, [1, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1)


def static_figure(
    images: Any,
    label: np.ndarray | None = None,
    pred: np.ndarray | None = None,
    *,
    axis: int = 2,
    slices: Sequence[int] | None = None,
    modalities: Sequence[str] | None = None,
    opacity: float = 0.5,
    spacing: Sequence[float] | None = None,
    size: float = 2.6,
) -> plt.Figure:
    """A grid, one row per slice: each modality, then label, prediction and error overlays (when given).

    ``images``: an MRICase, a dict modality -> ``(X, Y, Z)`` array, or one array.
    ``slices``: indices along ``axis`` (default :func:`default_slices`).
    """
    imgs, case_label, _, case_spacing = _as_images(images)
    label = case_label if label is None else label
    spacing = case_spacing if spacing is None else spacing
    names = list(modalities) if modalities is not None else list(imgs)
    first = imgs[names[0]]
    slices = list(slices) if slices is not None else default_slices(first.shape, axis, label)
    if not slices:
        raise ValueError("no slice to show; pass slices=[...].")
    columns = [(m, "none") for m in names]
    if label is not None:
        columns.append((names[0], "label"))
    if pred is not None:
        columns.append((names[0], "prediction"))
    if label is not None and pred is not None:
        columns.append((names[0], "errors"))
    windows = {m: _window(imgs[m]) for m in names}
    fig, axes = plt.subplots(
        len(slices), len(columns), figsize=(size * len(columns), size * len(slices)), squeeze=False
    )
    for r, index in enumerate(slices):
        for c, (m, overlay) in enumerate(columns):
            title = f"{m if overlay == 'none' else overlay} - {AXIS_NAMES[axis]} {index}"
            draw_slice(
                axes[r, c],
                imgs[m],
                axis,
                index,
                label=label,
                pred=pred,
                overlay=overlay,
                opacity=opacity,
                spacing=spacing,
                title=title,
                window=windows[m],
            )
    fig.tight_layout()
    return fig


class SliceViewer:
    """The interactive viewer: ``.widget`` (an ipywidgets VBox) and ``.figure()`` for the current view."""

    def __init__(
        self,
        images: Any,
        label: np.ndarray | None = None,
        pred: np.ndarray | None = None,
        *,
        axis: int = 2,
        index: int | None = None,
        modality: str | None = None,
        overlay: str | None = None,
        opacity: float = 0.5,
        spacing: Sequence[float] | None = None,
        size: float = 5.0,
    ):
        import ipywidgets as w

        self.images, case_label, _, case_spacing = _as_images(images)
        self.label = case_label if label is None else label
        self.pred, self.spacing, self.size = pred, (case_spacing if spacing is None else spacing), size
        self.windows = {m: _window(v) for m, v in self.images.items()}
        first = next(iter(self.images.values()))
        overlays = (
            ["none"]
            + (["label"] if self.label is not None else [])
            + (["prediction"] if pred is not None else [])
            + (["errors"] if self.label is not None and pred is not None else [])
        )
        if overlay is None:
            overlay = overlays[-1] if len(overlays) > 1 else "none"
        check_choice("overlay", overlay, tuple(overlays))
        if index is None:
            index = default_slices(first.shape, axis, self.label, n=1)[0]
        self.axis_w = w.Dropdown(options=[(n, i) for i, n in enumerate(AXIS_NAMES)], value=axis, description="axis")
        self.slice_w = w.IntSlider(
            value=int(index), min=0, max=first.shape[axis] - 1, description="slice", continuous_update=False
        )
        self.modality_w = w.Dropdown(
            options=list(self.images), value=modality or next(iter(self.images)), description="modality"
        )
        self.overlay_w = w.Dropdown(options=overlays, value=overlay, description="overlay")
        self.opacity_w = w.FloatSlider(
            value=opacity, min=0.0, max=1.0, step=0.05, description="opacity", continuous_update=False
        )
        self.output = w.Output()
        self.axis_w.observe(self._axis_changed, names="value")
        for control in (self.slice_w, self.modality_w, self.overlay_w, self.opacity_w):
            control.observe(lambda _change: self.render(), names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.axis_w, self.modality_w, self.overlay_w]),
                w.HBox([self.slice_w, self.opacity_w]),
                self.output,
            ]
        )
        self.render()

    def _axis_changed(self, change) -> None:
        size = next(iter(self.images.values())).shape[change["new"]]
        self.slice_w.max = size - 1
        self.slice_w.value = min(self.slice_w.value, size - 1)
        self.render()

    def figure(self) -> plt.Figure:
        """The current view as a matplotlib figure."""
        fig, ax = plt.subplots(figsize=(self.size, self.size))
        m = self.modality_w.value
        draw_slice(
            ax,
            self.images[m],
            self.axis_w.value,
            self.slice_w.value,
            label=self.label,
            pred=self.pred,
            overlay=self.overlay_w.value,
            opacity=self.opacity_w.value,
            spacing=self.spacing,
            window=self.windows[m],
            title=f"{m} - {AXIS_NAMES[self.axis_w.value]} {self.slice_w.value}",
        )
        return fig

    def render(self) -> None:
        """Redraw the current view into the output area."""
        from IPython.display import display

        with self.output:
            self.output.clear_output(wait=True)
            fig = self.figure()
            display(fig)
            plt.close(fig)


def show_volume(
    images: Any,
    label: np.ndarray | None = None,
    pred: np.ndarray | None = None,
    *,
    axis: int = 2,
    slices: Sequence[int] | None = None,
    static: bool | None = None,
    opacity: float = 0.5,
    spacing: Sequence[float] | None = None,
    **viewer_kwargs,
):
    """The slice viewer (a widget to display) or, where widgets cannot render, a static figure.

    ``images``: an MRICase, a dict modality -> ``(X, Y, Z)`` array, or one array;
    ``label``/``pred``: binary ``(X, Y, Z)`` (a case's own label is used by default).
    ``slices``: the slices of the static figure (and the viewer's first slice).
    ``static``: force one mode; ``None`` decides with :func:`use_static_plots`.
    """
    if use_static_plots(static):
        return static_figure(images, label, pred, axis=axis, slices=slices, opacity=opacity, spacing=spacing)
    index = slices[0] if slices else None
    return SliceViewer(
        images, label, pred, axis=axis, index=index, opacity=opacity, spacing=spacing, **viewer_kwargs
    ).widget
