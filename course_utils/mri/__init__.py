"""MRI volumes: reading, checking, resampling, synthesising, sampling and viewing them (used by lessons 04 and 06).

* :mod:`.io`: NIfTI load/save keeping affine and header, grid and label checks,
  reorientation to RAS, resampling to a coarser grid, normalisation in the brain mask.
* :mod:`.cases`: case layouts (open_ms_data, MICCAI 2017 WMH, your own), finding and loading cases.
* :mod:`.synthetic`: FLAIR-like and T1-like volumes with lesions on the MNI152 anatomy
  (offline; see :data:`~.synthetic.LICENSE_NOTICE`).
* :mod:`.contrast`: how much lesions stand out of the tissue around them (calibrates :mod:`.synthetic`).
* :mod:`.patches`: 3D patches with a lesion/background balance (a torch Dataset).
* :mod:`.candidates`: candidate lesions of a probability map, their features, and the classifier that keeps or
  drops them (segment, then classify).
* :mod:`.viewer`: an ipywidgets slice viewer with a static fallback.

Metrics live in :mod:`course_utils.metrics.lesions`; whole-volume inference in
:func:`course_utils.inference.sliding_window_inference`; lesson 04's own steps in
:mod:`course_utils.lessons.lesson04.pipeline`.
"""

from .cases import (
    OPEN_MS_CITATION,
    OPEN_MS_LAYOUT,
    WMH2017_LAYOUT,
    CaseFiles,
    CaseLayout,
    MRICase,
    find_cases,
    load_case,
    load_cases,
    normalise_case,
    open_ms_cases,
    open_ms_dir,
    open_ms_lesion_masks,
    save_prediction,
    write_case,
)
from .contrast import lesion_contrast
from .io import (
    Volume,
    brain_mask_from,
    check_label_values,
    check_orientation,
    check_same_grid,
    load_volume,
    normalise_intensity,
    orientation,
    resample_to_grid,
    resample_to_voxel_size,
    save_volume,
    to_canonical,
    voxel_size,
)
from .patches import LesionPatchDataset, extract_patch
from .synthetic import LICENSE_NOTICE, make_synthetic_case, make_synthetic_cases, mni152_maps
from .viewer import show_volume, static_figure, use_static_plots

__all__ = [
    "Volume",
    "load_volume",
    "save_volume",
    "orientation",
    "voxel_size",
    "to_canonical",
    "check_same_grid",
    "check_orientation",
    "check_label_values",
    "resample_to_grid",
    "resample_to_voxel_size",
    "brain_mask_from",
    "normalise_intensity",
    "CaseLayout",
    "CaseFiles",
    "MRICase",
    "OPEN_MS_LAYOUT",
    "WMH2017_LAYOUT",
    "OPEN_MS_CITATION",
    "find_cases",
    "load_case",
    "load_cases",
    "normalise_case",
    "open_ms_dir",
    "open_ms_cases",
    "open_ms_lesion_masks",
    "write_case",
    "save_prediction",
    "LICENSE_NOTICE",
    "make_synthetic_case",
    "make_synthetic_cases",
    "mni152_maps",
    "LesionPatchDataset",
    "extract_patch",
    "lesion_contrast",
    "show_volume",
    "static_figure",
    "use_static_plots",
]
