"""Self-checks of lesson 02 (U-Net from scratch): stubs are "not attempted", typical slips get their message, the
right answers (written here, or the course_utils version) pass."""

import pytest
import torch
from torch import nn

from course_utils.lessons.lesson02 import exercises as ex
from course_utils.models import (
    ConvNormAct,
    DoubleConv,
    RecurrentResidualBlock,
    count_parameters,
    empirical_receptive_field,
)
from course_utils.selfcheck import CheckResult

torch.set_num_threads(1)


def _pending(result: CheckResult) -> bool:
    return isinstance(result, CheckResult) and not result.ok and not result.attempted


def test_placeholders_are_pending_not_errors():
    for check in (
        ex.check_double_conv,
        ex.check_output_size,
        ex.check_valid_input_size,
        ex.check_recurrent_block,
        ex.check_recurrent_parameters,
    ):
        result = check(...)
        assert _pending(result) and "Not attempted" in str(result), check.__name__
    assert _pending(ex.check_recurrence_experiment(..., ..., {}))
    assert "`n_params_recurrent`" in ex.check_recurrent_parameters(...).message


# ----------------------------------------------------------------------------- Exercise 1: the double convolution
def conv_bn_relu(in_channels, out_channels, bias=False, padding=1):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=padding, bias=bias), nn.BatchNorm2d(out_channels), nn.ReLU()
    )


class RightDoubleConv(nn.Module):
    def __init__(self, in_channels, out_channels, **options):
        super().__init__()
        self.first = conv_bn_relu(in_channels, out_channels, **options)
        self.second = conv_bn_relu(out_channels, out_channels, **options)

    def forward(self, x):
        return self.second(self.first(x))


class StubDoubleConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()

    def forward(self, x): ...


def test_double_conv_right_answers_pass():
    assert ex.check_double_conv(RightDoubleConv)
    assert ex.check_double_conv(DoubleConv)  # the course version


def test_double_conv_stub_is_pending_and_slips_are_named():
    assert _pending(ex.check_double_conv(StubDoubleConv))
    assert "class itself" in ex.check_double_conv(RightDoubleConv(1, 2)).message

    class WithBias(RightDoubleConv):
        def __init__(self, i, o):
            super().__init__(i, o, bias=True)

    class Unpadded(RightDoubleConv):
        def __init__(self, i, o):
            super().__init__(i, o, padding=0)

    assert "bias=False" in ex.check_double_conv(WithBias).message
    assert "padding=1" in ex.check_double_conv(Unpadded).message

    class OneConv(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.layer = conv_bn_relu(i, o)

        def forward(self, x):
            return self.layer(x)

    assert "two 3x3" in ex.check_double_conv(OneConv).message

    class Doubled(RightDoubleConv):
        def forward(self, x):
            return 2 * super().forward(x)

    assert "computes something else" in ex.check_double_conv(Doubled).message


# ----------------------------------------------------------------------------- Exercises 2 and 3: sizes
def test_output_size():
    assert ex.check_output_size(29)
    assert "Close" in ex.check_output_size(30).message
    assert "not 4 or 0" in ex.check_output_size(28).message
    assert "step by step" in ex.check_output_size(27).message
    assert "whole number" in ex.check_output_size("29").message


def test_valid_input_size():
    assert ex.check_valid_input_size(104)
    assert "Powers of two" in ex.check_valid_input_size(128).message
    assert "smaller size" in ex.check_valid_input_size(112).message
    assert "below 100" in ex.check_valid_input_size(96).message
    assert "3-level U-Net like the one above" in ex.check_valid_input_size(100).message  # a multiple of 4, not of 8
    assert "not a multiple of 8" in ex.check_valid_input_size(102).message


# ----------------------------------------------------------------------------- Exercise 4: the recurrent block
class RightR2(nn.Module):
    """The notebook's solution."""

    def __init__(self, in_channels, out_channels, recurrence=2, norm="group"):
        super().__init__()
        self.recurrence = recurrence
        self.projection = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.f1 = ConvNormAct(out_channels, out_channels, norm=norm)
        self.f2 = ConvNormAct(out_channels, out_channels, norm=norm)

    def unit(self, f, h):
        x1 = f(h)
        for _ in range(self.recurrence):
            x1 = f(h + x1)
        return x1

    def forward(self, x):
        p = self.projection(x)
        return p + self.unit(self.f2, self.unit(self.f1, p))


class StubR2(nn.Module):
    def __init__(self, in_channels, out_channels, recurrence=2, norm="group"):
        super().__init__()
        self.recurrence = recurrence

    def forward(self, x): ...


def _variant(name, **methods):
    return type(name, (RightR2,), methods)


def test_recurrent_block_right_answer_passes_and_stub_is_pending():
    result = ex.check_recurrent_block(RightR2)
    assert result.ok, result.message
    assert _pending(ex.check_recurrent_block(StubR2))
    assert "class itself" in ex.check_recurrent_block(RightR2(1, 2)).message


def test_recurrent_block_using_the_course_answer_is_refused():
    assert "yourself" in ex.check_recurrent_block(RecurrentResidualBlock).message


def test_recurrent_block_with_a_new_convolution_per_step_is_not_shared():
    class Unshared(nn.Module):
        def __init__(self, in_channels, out_channels, recurrence=2, norm="group"):
            super().__init__()
            self.projection = nn.Conv2d(in_channels, out_channels, 1)
            self.units = nn.ModuleList(
                nn.ModuleList(ConvNormAct(out_channels, out_channels, norm=norm) for _ in range(recurrence + 1))
                for _ in range(2)
            )

        def forward(self, x):
            p = h = self.projection(x)
            for steps in self.units:
                x1 = steps[0](h)
                for f in steps[1:]:
                    x1 = f(h + x1)
                h = x1
            return p + h

    message = ex.check_recurrent_block(Unshared).message
    assert "ONE convolution" in message and "6 3x3 convolutions" in message


def test_recurrent_block_step_counts_are_checked():
    def unit_once(self, f, h):
        return f(h)

    def unit_t_times(self, f, h):
        x1 = f(h)
        for _ in range(self.recurrence - 1):
            x1 = f(h + x1)
        return x1

    assert "ran once" in ex.check_recurrent_block(_variant("Once", unit=unit_once)).message
    assert "ran 2 times" in ex.check_recurrent_block(_variant("TTimes", unit=unit_t_times)).message


def test_recurrent_block_wiring_slips_get_their_message():
    def no_reinject(self, f, h):
        x1 = f(h)
        for _ in range(self.recurrence):
            x1 = f(x1)
        return x1

    def no_residual(self, x):
        return self.unit(self.f2, self.unit(self.f1, self.projection(x)))

    def second_adds_p(self, x):
        p = self.projection(x)
        h = self.unit(self.f1, p)
        x1 = self.f2(h)
        for _ in range(self.recurrence):
            x1 = self.f2(p + x1)
        return p + x1

    def detached(self, f, h):
        x1 = f(h)
        for _ in range(self.recurrence):
            x1 = f(h + x1.detach())
        return x1

    assert "x1 = f(h + x1), not x1 = f(x1)" in ex.check_recurrent_block(_variant("A", unit=no_reinject)).message
    assert "residual path is missing" in ex.check_recurrent_block(_variant("B", forward=no_residual)).message
    assert "not p" in ex.check_recurrent_block(_variant("C", forward=second_adds_p)).message
    assert "other gradients" in ex.check_recurrent_block(_variant("D", unit=detached)).message


def test_recurrent_block_layer_slips_get_their_message():
    def biased_init(self, in_channels, out_channels, recurrence=2, norm="group"):
        nn.Module.__init__(self)
        self.recurrence = recurrence
        self.projection = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.f1 = nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.GroupNorm(6, 6), nn.ReLU())
        self.f2 = nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.GroupNorm(6, 6), nn.ReLU())

    def late_projection(self, in_channels, out_channels, recurrence=2, norm="group"):
        nn.Module.__init__(self)
        self.recurrence = recurrence
        self.f1 = ConvNormAct(out_channels, out_channels, norm=norm)
        self.f2 = ConvNormAct(out_channels, out_channels, norm=norm)
        self.projection = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    assert "bias" in ex.check_recurrent_block(_variant("Biased", __init__=biased_init)).message
    assert "order they are used" in ex.check_recurrent_block(_variant("Late", __init__=late_projection)).message

    def crashing(self, x):
        raise RuntimeError("boom")

    assert "RuntimeError: boom" in ex.check_recurrent_block(_variant("Crash", forward=crashing)).message


# ----------------------------------------------------------------------------- Exercise 5: the experiment
def _measure(block_cls, ts=(2, 3)):
    measured = {}
    for t in ts:
        block = block_cls(8, 8, recurrence=t, norm="group")
        measured[t] = {
            "parameters": count_parameters(block),
            "receptive_field": empirical_receptive_field(block, (1, 8, 64, 64))[0],
        }
    return measured


@pytest.mark.parametrize("block_cls", [RightR2, RecurrentResidualBlock])
def test_recurrence_experiment_measures_the_property_the_solution_states(block_cls):
    measured = _measure(block_cls)
    assert measured[2]["parameters"] == measured[3]["parameters"]
    assert (measured[2]["receptive_field"], measured[3]["receptive_field"]) == (13, 17)  # 1 + 2 units x 2 x (t + 1)
    result = ex.check_recurrence_experiment("same", "larger", measured)
    assert result.ok and "13 -> 17" in result.message


def test_recurrence_experiment_wrong_answers_are_explained():
    measured = {2: {"parameters": 100, "receptive_field": 13}, 3: {"parameters": 100, "receptive_field": 17}}
    assert ex.check_recurrence_experiment("unchanged", "more", measured)  # synonyms
    assert "parameter counts" in ex.check_recurrence_experiment("larger", "larger", measured).message
    assert "receptive fields" in ex.check_recurrence_experiment("same", "same", measured).message
    assert "one of" in ex.check_recurrence_experiment("same", "bigger", measured).message
    fewer = {2: measured[2], 1: {"parameters": 100, "receptive_field": 9}}
    assert ex.check_recurrence_experiment("same", "smaller", fewer)
    assert "t_more" in ex.check_recurrence_experiment("same", "larger", {2: measured[2]}).message
    unshared = {2: measured[2], 3: {"parameters": 125, "receptive_field": 17}}
    assert "does not share" in ex.check_recurrence_experiment("larger", "larger", unshared).message
    assert "Pass `measured`" in ex.check_recurrence_experiment("same", "larger", [1, 2]).message
    partly = ex.check_recurrence_experiment("same", ..., measured)
    assert _pending(partly) and "`receptive_field_change`" in partly.message


# ----------------------------------------------------------------------------- Exercise 6: parameters of a unit
def test_recurrent_parameters():
    assert ex.check_recurrent_parameters(16 * 16 * 9 + 32)
    assert "count its weights once" in ex.check_recurrent_parameters(4 * 2336).message
    assert "no bias" in ex.check_recurrent_parameters(2336 + 16).message
    assert "scale and shift" in ex.check_recurrent_parameters(2304).message
    assert "whole number" in ex.check_recurrent_parameters(2336.0).message
