"""The tree shows the architecture: general layers never import lesson code, and every lesson's home has one shape.

Lessons may use the general layers and earlier lessons' pipelines; config.py reads a lesson's
``settings.SETTINGS`` by name (importlib), which is not an import statement and is allowed.
"""

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest
from conftest import REPO

from course_utils.config import LESSONS as LESSON_IDS
from course_utils.config import PROFILES, lesson_package

PACKAGE = REPO / "course_utils"
LESSONS = PACKAGE / "lessons"
LESSON_MODULES = {"__init__.py", "settings.py", "pipeline.py", "exercises.py"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, module: str | None = None) -> set[str]:
    """Every module ``path`` imports (``import x``, ``from x import y``, relative imports resolved), at any depth.

    ``module``: the dotted name of ``path`` (default: from its place in the repository).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
    return out


GENERAL = sorted(p for p in PACKAGE.rglob("*.py") if LESSONS not in p.parents)


@pytest.mark.parametrize("path", GENERAL, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_general_layers_never_import_lesson_code(path):
    lesson_imports = sorted(m for m in imported_modules(path) if m.startswith("course_utils.lessons"))
    assert not lesson_imports, f"{path.relative_to(REPO)} imports lesson code: {lesson_imports}"


def test_the_import_check_sees_relative_absolute_and_nested_imports(tmp_path):
    """The checker itself: it must catch every spelling, or the test above passes on anything."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    from ..lessons.lesson03 import pipeline\nimport course_utils.lessons.lesson04.pipeline\n"
    )
    found = imported_modules(probe, "course_utils.metrics.probe")
    assert "course_utils.lessons.lesson03" in found and "course_utils.lessons.lesson04.pipeline" in found
    lesson06 = imported_modules(LESSONS / "lesson06" / "pipeline.py")
    assert "course_utils.lessons.lesson03.pipeline" in lesson06 and "course_utils.checkpoint.load_model" in lesson06


def test_every_lesson_has_the_same_shape():
    homes = sorted(p for p in LESSONS.iterdir() if p.is_dir() and not p.name.startswith("__"))
    assert [p.name for p in homes] == [lesson_package(lesson).rpartition(".")[2] for lesson in LESSON_IDS]
    for home in homes:
        modules = {p.name for p in home.glob("*.py")}
        assert modules == LESSON_MODULES, (
            f"{home.name} has {sorted(modules)}, every lesson has {sorted(LESSON_MODULES)}"
        )
        assert not [p for p in home.iterdir() if p.is_dir() and p.name != "__pycache__"], f"{home.name} has subfolders"


def test_each_lesson_names_itself_and_has_every_profile():
    for lesson in LESSON_IDS:
        settings = importlib.import_module(lesson_package(lesson) + ".settings")
        assert settings.LESSON == lesson
        assert set(settings.SETTINGS) == set(PROFILES)
        assert importlib.import_module(lesson_package(lesson) + ".pipeline").LESSON == lesson


def test_old_module_paths_are_gone():
    for old in (
        "course_utils.exercises",
        "course_utils.vessel_pipeline",
        "course_utils.transfer",
        "course_utils.fundus",
        "course_utils.mri.pipeline",
        "course_utils.featurevis.trained_models",
    ):
        spec = importlib.util.find_spec(old)
        # a leftover __pycache__ folder makes an empty namespace package (no origin): that is gone too
        assert spec is None or spec.origin in (None, "namespace"), f"{old} should have moved (course_utils.lessons)"


def test_no_module_spells_a_checkpoint_file_name():
    """Checkpoint names come from course_utils.checkpoint.checkpoint_path only."""
    pattern = re.compile(r"""["'](?:unet|unet3d|finetuned|tinysegnet)-\{""")
    files = (
        list(PACKAGE.rglob("*.py"))
        + list((REPO / "benchmarks").glob("*.py"))
        + list((REPO / "notebooks").glob("*.ipynb"))
    )
    places = [p for p in files if pattern.search(p.read_text(encoding="utf-8"))]
    assert not places, f"checkpoint file names spelled by hand in {places}"
