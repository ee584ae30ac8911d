"""The training loss of the grid detector (:mod:`.grid`), YOLO's sum of parts."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .grid import GridSpec, cells_view


class GridDetectionLoss(nn.Module):
    """``loss(raw, target)``: ``raw (N, B * (5 + C), rows, cols)`` network output, ``target (N, rows, cols, B, 6)``
    from :func:`~.grid.encode_targets`; a scalar, summed over the grid and averaged over the ``N`` images.

    Parts (YOLOv1's, with YOLOv2's parametrisation), kept in :attr:`parts` after each call:

    * ``xy``: squared error of ``sigmoid(tx), sigmoid(ty)`` against the centre's place in its cell, on the slots
      responsible for a box, times ``lambda_coord``;
    * ``wh``: squared error of ``tw, th`` against ``log(size / prior)``, responsible slots, times ``lambda_coord``.
      The log makes an error of 10 % count the same for a platelet and a white cell (YOLOv1 used square roots
      for the same reason);
    * ``object``: binary cross-entropy of the objectness, 1 on responsible slots, 0 elsewhere; the many empty
      slots weigh ``lambda_noobj`` each, so they do not drown the few objects;
    * ``class``: cross-entropy of the class logits on the responsible slots.
    """

    def __init__(self, spec: GridSpec, lambda_coord: float = 5.0, lambda_noobj: float = 0.5):
        super().__init__()
        self.spec, self.lambda_coord, self.lambda_noobj = spec, float(lambda_coord), float(lambda_noobj)
        self.parts: dict[str, float] = {}

    def forward(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cells = cells_view(raw, self.spec)
        if target.shape != (*cells.shape[:4], 6):
            raise ValueError(f"target of shape {tuple(target.shape)}; expected {(*cells.shape[:4], 6)}.")
        n = raw.shape[0]
        obj = target[..., 4] > 0.5
        xy = F.mse_loss(torch.sigmoid(cells[..., :2][obj]), target[..., :2][obj], reduction="sum")
        wh = F.mse_loss(cells[..., 2:4][obj], target[..., 2:4][obj], reduction="sum")
        weight = torch.where(obj, 1.0, self.lambda_noobj)
        objectness = F.binary_cross_entropy_with_logits(cells[..., 4], obj.float(), weight=weight, reduction="sum")
        classes = F.cross_entropy(cells[..., 5:][obj], target[..., 5][obj].long(), reduction="sum")
        parts = {
            "xy": self.lambda_coord * xy / n,
            "wh": self.lambda_coord * wh / n,
            "object": objectness / n,
            "class": classes / n,
        }
        self.parts = {k: float(v.detach()) for k, v in parts.items()}
        return sum(parts.values())
