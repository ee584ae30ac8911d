"""Lesson 06 self-checks: a right answer passes, typical mistakes fail with a helpful message, stubs are pending."""

import torch

from course_utils.featurevis import feature_maps as course_feature_maps
from course_utils.featurevis import total_variation as course_tv
from course_utils.lessons.lesson06 import exercises as ex
from course_utils.selfcheck import CheckResult


def _stub(*args):  # what the student edition's functions are: a body of `...`
    ...


def test_placeholders_and_stubs_are_pending_not_errors():
    for result in (
        ex.check_feature_maps(...),
        ex.check_feature_maps(_stub),
        ex.check_total_variation(...),
        ex.check_total_variation(_stub),
        ex.check_parameterization_experiment(..., 0.3, 0.1, 1.0, 0.9),
    ):
        assert isinstance(result, CheckResult) and not result.ok and not result.attempted


def _right(model, x, layers):
    store, handles = {}, []
    modules = dict(model.named_modules())
    for name in layers:
        handles.append(modules[name].register_forward_hook(lambda m, i, o, name=name: store.update({name: o})))
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return store


def test_feature_maps_right_and_typical_mistakes():
    right = ex.check_feature_maps(_right)
    assert right and "leaves the model in eval mode" in right.message
    assert ex.check_feature_maps(course_feature_maps)
    assert "leaves the model" not in ex.check_feature_maps(course_feature_maps).message

    def leaves_hooks(model, x, layers):
        store = {}
        for name in layers:
            dict(model.named_modules())[name].register_forward_hook(lambda m, i, o, name=name: store.update({name: o}))
        model.eval()
        with torch.no_grad():
            model(x)
        return store

    assert "still registered" in ex.check_feature_maps(leaves_hooks).message

    def no_finally(model, x, layers):
        store = {}
        modules = dict(model.named_modules())
        handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: store.update({n: o})) for n in layers]
        model.eval()
        with torch.no_grad():
            model(x)
        for handle in handles:
            handle.remove()
        return store

    assert "raises" in ex.check_feature_maps(no_finally).message

    def train_mode(model, x, layers):
        model.train()
        return _right_without_eval(model, x, layers)

    assert "training mode" in ex.check_feature_maps(train_mode).message

    def first_call(model, x, layers):
        store, handles = {}, []
        modules = dict(model.named_modules())
        for n in layers:
            handles.append(modules[n].register_forward_hook(lambda m, i, o, n=n: store.update({n: store.get(n, o)})))
        try:
            model.eval()
            with torch.no_grad():
                model(x)
        finally:
            for handle in handles:
                handle.remove()
        return store

    assert "first output" in ex.check_feature_maps(first_call).message

    def every_call(model, x, layers):
        store = {n: [] for n in layers}
        modules = dict(model.named_modules())
        handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: store[n].append(o)) for n in layers]
        try:
            model.eval()
            with torch.no_grad():
                model(x)
        finally:
            for handle in handles:
                handle.remove()
        return store

    assert "one tensor per layer" in ex.check_feature_maps(every_call).message

    def with_grad(model, x, layers):
        store = {}
        modules = dict(model.named_modules())
        handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: store.update({n: o})) for n in layers]
        try:
            model.eval()
            model(x)
        finally:
            for handle in handles:
                handle.remove()
        return store

    assert "no_grad" in ex.check_feature_maps(with_grad).message

    def inputs_not_outputs(model, x, layers):
        store = {}
        modules = dict(model.named_modules())
        handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: store.update({n: i[0]})) for n in layers]
        try:
            model.eval()
            with torch.no_grad():
                model(x)
        finally:
            for handle in handles:
                handle.remove()
        return store

    assert "output" in ex.check_feature_maps(inputs_not_outputs).message
    assert "one entry per layer" in ex.check_feature_maps(lambda m, x, layers: {"stem": x}).message
    assert "dict" in ex.check_feature_maps(lambda m, x, layers: [x]).message
    assert "function itself" in ex.check_feature_maps(3).message
    assert "failed" in ex.check_feature_maps(lambda m, x, layers: 1 / 0).message


def _right_without_eval(model, x, layers):
    store, handles = {}, []
    modules = dict(model.named_modules())
    for name in layers:
        handles.append(modules[name].register_forward_hook(lambda m, i, o, name=name: store.update({name: o})))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return store


def test_total_variation_right_and_typical_mistakes():
    def right(x):
        return torch.diff(x, dim=-1).abs().sum() + torch.diff(x, dim=-2).abs().sum()

    result = ex.check_total_variation(right)
    assert result and "TV = 12" in result.message  # 7 horizontal + 5 vertical, by hand
    assert float(course_tv(torch.tensor(ex.TV_IMAGE)[None, None])) == 12.0  # the package agrees
    assert ex.check_total_variation(lambda x: float(course_tv(x)))
    slips = {
        "horizontal differences only": lambda x: torch.diff(x, dim=-1).abs().sum(),
        "vertical differences only": lambda x: torch.diff(x, dim=-2).abs().sum(),
        "squared": lambda x: (torch.diff(x, dim=-1) ** 2).sum() + (torch.diff(x, dim=-2) ** 2).sum(),
        "absolute value": lambda x: torch.diff(x, dim=-1).sum() + torch.diff(x, dim=-2).sum(),
        "took means": lambda x: torch.diff(x, dim=-1).abs().mean() + torch.diff(x, dim=-2).abs().mean(),
        "divided by the number": lambda x: course_tv(x, reduction="mean"),
        "no neighbours": lambda x: sum(torch.diff(x, dim=d).abs().sum() for d in range(4)),
        "one number": lambda x: torch.diff(x, dim=-1).abs().sum(-1),
        "failed": lambda x: 1 / 0,
    }
    for message, fn in slips.items():
        result = ex.check_total_variation(fn)
        assert not result and result.attempted and message in result.message, message
    assert "For x of shape" in ex.check_total_variation(lambda x: right(x) + 1).message
    assert "function itself" in ex.check_total_variation(12).message


def test_parameterization_experiment_is_judged_by_the_numbers():
    lower = ex.check_parameterization_experiment("lower", 0.30, 0.05, 2.0, 1.5)
    assert lower and "prior" in lower.message and "0.3000" in lower.message
    said_same = ex.check_parameterization_experiment("same", 0.30, 0.05, 2.0, 1.5)
    assert not said_same and "'lower'" in said_same.message
    assert ex.check_parameterization_experiment(" Higher ", 0.05, 0.30, 2.0, 1.5)
    assert ex.check_parameterization_experiment("same", 0.30, 0.29, 2.0, 1.5)
    assert "one of" in ex.check_parameterization_experiment("smoother", 0.3, 0.1, 1, 1).message
    assert "measured numbers" in ex.check_parameterization_experiment("lower", None, 0.1, 1, 1).message
