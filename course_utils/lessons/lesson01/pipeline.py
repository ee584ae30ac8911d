"""Lesson 01 (PyTorch basics) has no pipeline of its own: the learner writes the training loop in the
notebook, on :func:`course_utils.data.make_shapes` data; :func:`course_utils.training.fit` is that loop,
packaged for the later lessons."""

from .settings import LESSON

CHECKPOINT_KIND = "tinysegnet"

__all__ = ["LESSON", "CHECKPOINT_KIND"]
