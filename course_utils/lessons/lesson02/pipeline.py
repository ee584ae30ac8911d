"""Lesson 02 (U-Net from scratch) builds its networks in the notebook from the general layers:
:class:`course_utils.models.UNet` and its blocks, :class:`course_utils.data.ShapesDataset`,
:func:`course_utils.training.fit`. It has no pipeline steps of its own."""

from .settings import LESSON

__all__ = ["LESSON"]
