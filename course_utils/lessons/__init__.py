"""Each lesson's own code, one package per lesson, every package of the same shape.

=================  ===========================  ============================================================
package            notebook                     modules
=================  ===========================  ============================================================
``lesson01``       01_pytorch_basics            ``settings`` (profiles), ``pipeline``, ``exercises`` (self-checks)
``lesson02``       02_unet_from_scratch         the same three
``lesson03``       03_drive_vessels             the same three
``lesson04``       04_mri_lesions               the same three
``lesson04b``      04b_mri_false_lesions        the same three
``lesson05``       05_transfer_learning         the same three
``lesson06``       06_activation_maximization   the same three
``lesson07``       07_blood_cells               the same three
=================  ===========================  ============================================================

Lesson code may use the general layers (``course_utils.config``, ``data``, ``models``, ``training``,
``recipe``, ``inference``, ``metrics``, ``checkpoint``, ...) and the pipelines of earlier lessons; the
general layers never import lesson code (``tests/test_architecture.py`` checks it).
"""
