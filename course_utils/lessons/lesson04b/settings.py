"""The profiles of lesson 04b_mri_false_lesions: knob -> value for ``smoke``, ``cpu`` and ``gpu``.

The networks of this lesson are lesson 04's, trained with lesson 04's profile of the same name
(``get_config("04_mri_lesions", profile)``: epochs, patches, recipe); the knobs here are this lesson's own.

* ``reuse_lesson04``: load lesson 04's saved network when it was trained on the same cases with the same work and
  seed (``outputs/04_mri_lesions/unet3d-<profile>.pt``); otherwise, and when ``False``, train it here again.
* ``gallery_size``: how many candidate lesions each gallery shows.

Read through :func:`course_utils.config.get_config` (``get_config("04b_mri_false_lesions", profile, knob=value)``).
"""

from ...knobs import FLAG, whole

LESSON = "04b_mri_false_lesions"

KNOBS = {"reuse_lesson04": FLAG, "gallery_size": whole(1)}

SETTINGS = {
    "smoke": dict(reuse_lesson04=True, gallery_size=4, seed=0),
    "cpu": dict(reuse_lesson04=True, gallery_size=8, seed=0),
    "gpu": dict(reuse_lesson04=True, gallery_size=8, seed=0),
}
