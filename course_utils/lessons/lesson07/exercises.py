"""Self-checks of lesson 07's exercises (box IoU, NMS, decoding one grid cell, a VOC box as a COCO box)."""

from __future__ import annotations
