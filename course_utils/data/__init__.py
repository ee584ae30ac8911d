"""Data sets: the synthetic shapes of lessons 01-02, DRIVE and its synthetic stand-in, MRI volumes, and object boxes
(Pascal VOC / COCO, :mod:`.boxes`), the BCCD blood-cell set (:mod:`.bccd`) and its synthetic stand-in
(:mod:`.synthetic_smear`)."""

from .shapes import ShapesDataset, make_shapes

__all__ = ["ShapesDataset", "make_shapes"]
