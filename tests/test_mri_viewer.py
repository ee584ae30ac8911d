"""Slice viewer: static fallback when widgets cannot render, colours of the error overlay, widget controls."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_utils.mri.cases import MRICase
from course_utils.mri.viewer import (
    SliceViewer,
    default_slices,
    draw_slice,
    show_volume,
    static_figure,
    take_slice,
    use_static_plots,
)
from course_utils.plotting import FN_COLOR, FP_COLOR, TP_COLOR


def tiny_case() -> MRICase:
    shape = (10, 12, 8)
    brain = np.zeros(shape, bool)
    brain[1:-1, 1:-1, 1:-1] = True
    img = np.where(brain, np.linspace(1, 2, np.prod(shape)).reshape(shape), 0).astype(np.float32)
    label = np.zeros(shape, np.uint8)
    label[4:6, 4:6, 5] = 1
    label[3, 3, 2] = 1
    return MRICase(
        name="tiny",
        images={"FLAIR": img, "T1": img[::-1].copy()},
        label=label,
        brain_mask=brain,
        affine=np.diag([1.0, 1.0, 3.0, 1.0]),
    )


def test_static_mode_decisions(monkeypatch):
    monkeypatch.delenv("COURSE_STATIC_PLOTS", raising=False)
    assert use_static_plots(True) and not use_static_plots(False)
    assert use_static_plots(None)  # pytest is no Jupyter kernel
    monkeypatch.setenv("COURSE_STATIC_PLOTS", "1")
    assert use_static_plots(None)


def test_show_volume_falls_back_to_a_static_grid(monkeypatch):
    monkeypatch.setenv("COURSE_STATIC_PLOTS", "1")
    case = tiny_case()
    pred = np.zeros(case.shape, bool)
    pred[4:6, 4:6, 5] = True
    fig = show_volume(case, pred=pred, axis=2, slices=[2, 5])
    assert isinstance(fig, plt.Figure)
    axes = np.array(fig.axes).reshape(2, -1)
    titles = [ax.get_title() for ax in axes[1]]
    assert titles == ["FLAIR - axial 5", "T1 - axial 5", "label - axial 5", "prediction - axial 5", "errors - axial 5"]


def test_default_slices_follow_the_lesions():
    case = tiny_case()
    assert default_slices(case.shape, 2, case.label, n=2) == [2, 5]  # 4 lesion voxels on 5, 1 on 2
    assert default_slices(case.shape, 0, None, n=3) == [3, 4, 6]


def test_error_overlay_colours_and_orientation():
    image = np.ones((3, 4, 2), np.float32)
    truth, pred = np.zeros((3, 4, 2), bool), np.zeros((3, 4, 2), bool)
    truth[0, 0, 1] = pred[0, 0, 1] = True  # true positive
    pred[1, 2, 1] = True  # false positive
    truth[2, 3, 1] = True  # false negative
    fig, ax = plt.subplots()
    draw_slice(ax, image, 2, 1, label=truth, pred=pred, overlay="errors", opacity=1.0)
    rgba = ax.images[1].get_array()
    assert rgba.shape == (4, 3, 4)  # transposed: rows = axis 1, columns = axis 0
    np.testing.assert_allclose(rgba[0, 0, :3], TP_COLOR)
    np.testing.assert_allclose(rgba[2, 1, :3], FP_COLOR)
    np.testing.assert_allclose(rgba[3, 2, :3], FN_COLOR)
    assert rgba[1, 1, 3] == 0  # true negatives stay transparent
    np.testing.assert_array_equal(take_slice(truth, 2, 1), truth[:, :, 1].T)
    with pytest.raises(ValueError, match="needs a prediction"):
        draw_slice(ax, image, 2, 1, label=truth, overlay="errors")


def test_voxel_size_sets_the_aspect():
    case = tiny_case()
    fig = static_figure(case, axis=0, slices=[5])
    assert fig.axes[0].get_aspect() == pytest.approx(3.0)  # 3 mm slices drawn 3 times as tall


def test_interactive_viewer_controls():
    pytest.importorskip("ipywidgets")
    case = tiny_case()
    viewer = SliceViewer(case, pred=case.label > 0)
    assert viewer.overlay_w.options == ("none", "label", "prediction", "errors")
    assert viewer.slice_w.value == 5 and viewer.slice_w.max == 7
    viewer.axis_w.value = 1
    assert viewer.slice_w.max == 11
    viewer.modality_w.value = "T1"
    viewer.opacity_w.value = 0.2
    fig = viewer.figure()
    assert fig.axes[0].get_title() == "T1 - coronal 5"
    widget = show_volume(case, static=False)
    assert hasattr(widget, "children") and len(widget.children) == 3
