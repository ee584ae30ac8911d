"""Data sets: the synthetic shapes of lessons 01-02, DRIVE and its synthetic stand-in, MRI volumes."""

from .shapes import ShapesDataset, make_shapes

__all__ = ["ShapesDataset", "make_shapes"]
