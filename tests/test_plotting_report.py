import json

import numpy as np
import pytest
import torch

from course_utils.plotting import (
    FN_COLOR,
    FP_COLOR,
    TP_COLOR,
    error_map,
    number_grid,
    plot_history,
    show_segmentation,
    to_numpy_image,
)
from course_utils.report import MIME, collect_records, record


def test_error_map_colours_each_outcome():
    truth = np.array([[1, 1], [0, 0]])
    pred = np.array([[1, 0], [1, 0]])
    rgb = error_map(truth, pred)
    assert tuple(rgb[0, 0]) == pytest.approx(TP_COLOR)
    assert tuple(rgb[0, 1]) == pytest.approx(FN_COLOR)
    assert tuple(rgb[1, 0]) == pytest.approx(FP_COLOR)
    assert tuple(rgb[1, 1]) == (0, 0, 0)
    with pytest.raises(ValueError, match="differ in shape"):
        error_map(truth, np.zeros((3, 3)))


def test_to_numpy_image_handles_layouts():
    assert to_numpy_image(torch.zeros(1, 5, 6)).shape == (5, 6)
    assert to_numpy_image(torch.zeros(3, 5, 6)).shape == (5, 6, 3)
    assert to_numpy_image(np.zeros((5, 6, 3))).shape == (5, 6, 3)
    with pytest.raises(ValueError, match="expected a 2D image"):
        to_numpy_image(np.zeros((2, 3, 4, 5)))


def test_show_segmentation_grid_has_a_column_per_available_panel():
    x = torch.rand(3, 1, 8, 8)
    y = (x > 0.5).float()
    fig = show_segmentation(x, y, x, n=2)
    assert len(fig.axes) == 2 * 4
    fig = show_segmentation(x, n=5)
    assert len(fig.axes) == 3  # n capped at the number of images, one column


def test_plot_history_draws_losses_and_metrics():
    hist = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_dice": 0.1 * e} for e in (1, 2, 3)]
    fig = plot_history(hist)
    loss_ax, metric_ax = fig.axes
    assert len(loss_ax.lines) == 2 and len(metric_ax.lines) == 1
    assert list(metric_ax.lines[0].get_ydata()) == pytest.approx([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="empty"):
        plot_history([])


def test_record_round_trips_through_notebook_outputs(capsys):
    assert record("dice", np.float32(0.5)) == 0.5  # outside IPython it prints
    assert "[recorded] dice = 0.5" in capsys.readouterr().out
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [
                    {"output_type": "display_data", "data": {MIME: {"name": "dice", "value": 0.5, "unit": ""}}},
                    {
                        "output_type": "display_data",
                        "data": {MIME: json.dumps({"name": "dice", "value": 0.7, "unit": ""})},
                    },
                    {"output_type": "stream", "text": "x"},
                ],
            }
        ]
    }
    assert collect_records(nb) == {"dice": 0.7}
    assert record("nan", float("nan")) is None
    with pytest.raises(TypeError):
        record("bad", [1, 2])


def test_number_grid_writes_every_value():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    number_grid(ax, np.array([[1, 2], [3, 40]]))
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3", "40"]
    with pytest.raises(ValueError, match="2D"):
        number_grid(ax, np.zeros(3))


def test_draw_boxes_draws_one_rectangle_per_box_in_its_class_colour_with_scores():
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    from course_utils.plotting import draw_boxes

    fig, ax = plt.subplots()
    ax.imshow(np.zeros((40, 60)))
    draw_boxes(ax, [[2, 3, 12, 20], [30, 5, 50, 35]], [1, 0], ["red", "blue"], scores=[0.91, 0.5])
    rects = ax.patches
    assert len(rects) == 2 and rects[0].get_xy() == (2, 3) and (rects[0].get_width(), rects[0].get_height()) == (10, 17)
    assert rects[0].get_edgecolor() == to_rgba("blue") and rects[1].get_edgecolor() == to_rgba("red")
    assert [t.get_text() for t in ax.texts] == ["0.91", "0.50"]
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        draw_boxes(ax, [[0, 0, 1, 1], [1, 1, 2, 2]], [0], ["red"])
