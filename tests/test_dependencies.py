"""requirements.txt and environment.yml must list the same packages with the same ranges."""
import re

import yaml

REQUIRED = {"torch", "torchvision", "segmentation-models-pytorch", "nibabel", "matplotlib", "ipywidgets",
            "papermill", "nbval", "jupyterlab"}


def _parse(lines):
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", line)
        out[m.group(1).lower().replace("_", "-")] = m.group(2).replace(" ", "")
    return out


def test_requirements_and_environment_agree(repo):
    req = _parse((repo / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((repo / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _parse(pip_section) == req
    assert REQUIRED <= set(req)


def test_every_requirement_has_a_lower_bound_and_no_exact_pin(repo):
    for name, spec in _parse((repo / "requirements.txt").read_text().splitlines()).items():
        assert spec.startswith(">="), f"{name} should have a range with a lower bound, got {spec!r}"
        assert "==" not in spec, f"{name} is pinned exactly ({spec}); use a range"


def test_installed_versions_satisfy_the_ranges(repo):
    from importlib.metadata import PackageNotFoundError, version

    from packaging.specifiers import SpecifierSet

    for name, spec in _parse((repo / "requirements.txt").read_text().splitlines()).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            raise AssertionError(f"{name} is required but not installed; run make setup")
        assert installed.split("+")[0] in SpecifierSet(spec), f"{name} {installed} not in {spec}"
