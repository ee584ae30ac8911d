"""The DRIVE vessel recipe of lesson 03, in small steps shared by the notebook and the benchmark.

1. :func:`load_vessel_data`: DRIVE from the data root (or the synthetic stand-in), a
   validation split of the training images, the second observer on the test images;
2. :func:`course_utils.fundus.preprocess_cases`: green channel + CLAHE + gamma;
3. :func:`patch_loader`: vessel-biased random patches with augmentation, fresh each epoch;
4. :func:`build_vessel_model` and :func:`train_vessel_model`: a small U-Net, BCE + Dice,
   AdamW with warm-up and cosine decay over a time budget (:class:`WarmupCosine`);
5. :func:`predict_probability`: the whole image in one pass (or tiled), optional flip TTA;
6. :func:`choose_threshold` on the validation images, then :func:`evaluate_vessels` on the
   test images, counting pixels inside the field of view only.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from .data.augment import fundus_augmentation
from .data.drive import FundusCase, find_drive_root, load_drive, missing_drive_message, split_train_val
from .data.patches import PatchDataset
from .data.synthetic_fundus import DRIVE_SIZE, synthetic_drive
from .errors import DataError
from .metrics import best_threshold, binary_metrics, roc_auc_in_mask
from .models import UNet, crop_to, pad_to_multiple
from .precision import autocast
from .training import as_layout, memory_layout

TTA_MODES = ("none", "hflip", "flips")


# --------------------------------------------------------------------------- data
@dataclass
class VesselData:
    """The cases of one run. ``source``: ``"real"`` (DRIVE) or ``"synthetic"``.

    ``test_observer2``: the test cases labelled by the second observer (DRIVE only,
    else empty); ``note``: a sentence that says where the data came from.
    """

    train: list[FundusCase]
    val: list[FundusCase]
    test: list[FundusCase]
    test_observer2: list[FundusCase] = field(default_factory=list)
    source: str = "real"
    note: str = ""


def load_vessel_data(root: str | Path | None = None, *, n_val: int = 4, seed: int = 0,
                     max_train: int | None = None, max_test: int | None = None,
                     synthetic: bool | None = None,
                     synthetic_size: tuple[int, int] = DRIVE_SIZE) -> VesselData:
    """DRIVE (``root``: data root, default ``$COURSE_DATA_DIR``) or, without it, the synthetic set.

    ``n_val`` of the (at most ``max_train``; ``None`` or 0: all) training images are held out for choosing
    the threshold (``n_val=0``: none, choose it on the training images); the test set
    (at most ``max_test`` images) is never used for a choice. ``synthetic=None`` uses
    DRIVE when present; ``True`` forces the synthetic set, ``False`` raises
    :class:`DataError` (with where to get DRIVE) when it is missing.
    """
    use_real = find_drive_root(root) is not None if synthetic is None else not synthetic
    if use_real:
        train = load_drive("training", root)
        test = load_drive("test", root)
        source = "real"
        note = f"DRIVE from {find_drive_root(root)}: {len(train)} training and {len(test)} test images."
        try:
            test2 = load_drive("test", root, observer=2)
        except DataError as err:   # some copies lack 2nd_manual: everything but the human reference works
            test2 = []
            note += f" No second observer: {err}"
    else:
        train, test = synthetic_drive(20 if max_train is None else max_train,
                                      20 if max_test is None else max_test, size=synthetic_size, seed=seed)
        test2, source = [], "synthetic"
        note = ("DRIVE was not found, so this run uses the SYNTHETIC fundus images of "
                "course_utils.data.synthetic_fundus (scores are not comparable to DRIVE). "
                + missing_drive_message(root))
    train = train[:max_train] if max_train else train
    test, test2 = (test[:max_test], test2[:max_test]) if max_test else (test, test2)
    if n_val:
        train, val = split_train_val(train, n_val=n_val, seed=seed)
    else:
        val = []
    return VesselData(train=list(train), val=list(val), test=list(test), test_observer2=list(test2),
                      source=source, note=note)


class EpochPatches:
    """A DataLoader over a :class:`PatchDataset` that draws fresh patches every time it is iterated.

    Iteration ``k`` calls ``dataset.set_epoch(k)`` first, so epoch after epoch sees new
    (but reproducible) patches, as :func:`course_utils.training.fit` iterates once per epoch.
    """

    def __init__(self, dataset: PatchDataset, batch_size: int, shuffle: bool = False, fixed: bool = False,
                 num_workers: int = 0):
        self.dataset, self.fixed, self.epoch = dataset, fixed, 0
        # workers are not persistent, so each epoch's workers see the dataset's new epoch
        self.loader = DataLoader(dataset, batch_size=int(batch_size), shuffle=shuffle, num_workers=int(num_workers),
                                 pin_memory=torch.cuda.is_available())

    def __iter__(self) -> Iterator:
        self.dataset.set_epoch(0 if self.fixed else self.epoch)
        self.epoch += 1
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)


def patch_loader(cases: Sequence[FundusCase], *, patch_size: int, batch_size: int, samples_per_epoch: int,
                 vessel_bias: float = 0.5, augment_strength: float = 1.0, seed: int = 0,
                 fixed: bool = False, num_workers: int = 0) -> EpochPatches:
    """Batches ``(image (B, C, p, p), target (B, 1, p, p), fov (B, 1, p, p))`` of random patches.

    ``cases`` should already be preprocessed (:func:`course_utils.fundus.preprocess_cases`).
    ``vessel_bias``: probability that a patch is centred on a vessel pixel;
    ``augment_strength``: :func:`course_utils.data.augment.fundus_augmentation` (0 = off);
    ``fixed=True`` gives the same patches every time (for validation); ``num_workers``:
    DataLoader worker processes (0 on a CPU-only machine: the cores are busy training).
    """
    augment = fundus_augmentation(augment_strength) if augment_strength > 0 else None
    dataset = PatchDataset(cases, patch_size=patch_size, samples_per_epoch=samples_per_epoch,
                           vessel_bias=vessel_bias, augment=augment, seed=seed)
    return EpochPatches(dataset, batch_size, fixed=fixed, num_workers=num_workers)


# --------------------------------------------------------------------------- model and training
def build_vessel_model(in_channels: int = 1, base_width: int = 8, depth: int = 4) -> UNet:
    """The course U-Net for vessels: ``(B, in_channels, H, W) -> (B, 1, H, W)`` logits, BatchNorm."""
    return UNet(in_channels=in_channels, out_channels=1, depth=depth, base_width=base_width)


class WarmupCosine:
    """Learning rate: linear warm-up to ``max_lr``, then cosine decay to ``max_lr * final_ratio``.

    Progress is the larger of ``steps / total_steps`` and ``elapsed / seconds``, so the
    schedule ends with whichever budget runs out first (a time budget needs no
    guess of the step count). Call :meth:`step` once per batch, as ``fit`` does.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_lr: float, *, total_steps: int | None = None,
                 seconds: float | None = None, warmup: float = 0.05, final_ratio: float = 0.01):
        if total_steps is None and seconds is None:
            raise ValueError("give total_steps, seconds or both: the schedule needs a budget.")
        if (total_steps is not None and total_steps < 1) or (seconds is not None and seconds <= 0):
            raise ValueError(f"total_steps must be >= 1 and seconds > 0, got {total_steps}, {seconds}.")
        if not 0 <= warmup < 1 or not 0 <= final_ratio <= 1 or max_lr <= 0:
            raise ValueError(f"need max_lr > 0, 0 <= warmup < 1, 0 <= final_ratio <= 1, "
                             f"got {max_lr}, {warmup}, {final_ratio}.")
        self.optimizer, self.max_lr = optimizer, float(max_lr)
        self.total_steps, self.seconds = total_steps, seconds
        self.warmup, self.final_ratio = float(warmup), float(final_ratio)
        self.steps, self.start = 0, None
        self._set(self.lr_at(0.0))

    def lr_at(self, progress: float) -> float:
        """The learning rate at ``progress`` in [0, 1] of the budget."""
        p = min(max(progress, 0.0), 1.0)
        if self.warmup and p < self.warmup:
            return self.max_lr * max(p / self.warmup, 0.01)
        q = (p - self.warmup) / (1.0 - self.warmup)
        low = self.max_lr * self.final_ratio
        return low + (self.max_lr - low) * 0.5 * (1.0 + math.cos(math.pi * q))

    def progress(self) -> float:
        """Fraction of the budget used so far, in [0, 1]."""
        parts = [0.0]
        if self.total_steps:
            parts.append(self.steps / self.total_steps)
        if self.seconds and self.start is not None:
            parts.append((time.perf_counter() - self.start) / self.seconds)
        return min(max(parts), 1.0)

    def step(self) -> None:
        if self.start is None:
            self.start = time.perf_counter()
        self.steps += 1
        self._set(self.lr_at(self.progress()))

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def _set(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr


def train_vessel_model(model: torch.nn.Module, train_loader: Any, *, val_loader: Any = None, lr: float = 3e-3,
                       max_seconds: float | None = None, epochs: int = 1000, weight_decay: float = 1e-4,
                       bce_weight: float = 0.5, device: torch.device | str | None = None, amp: bool | str = False,
                       channels_last: bool = False, ema_decay: float | None = None,
                       show_progress: bool = False, verbose: bool = True):
    """Train with BCE + soft Dice, AdamW and :class:`WarmupCosine`; returns the ``History`` of ``fit``.

    Stops after ``epochs`` epochs or ``max_seconds`` seconds of training, whichever
    comes first; the schedule decays over the same budget. With ``val_loader`` each
    epoch records ``val_loss`` and ``val_dice`` (on patches). ``amp``: mixed precision
    (:mod:`course_utils.precision`; ``True``: float16 on CUDA, bfloat16 on CPUs that have it).
    ``channels_last``: the faster memory layout for convolutions; ``ema_decay`` (e.g.
    0.998): the model ends as the moving average of its weights (see ``fit``).
    """
    from .losses import BCEDiceLoss
    from .metrics import dice_score
    from .training import fit

    if max_seconds is None and epochs >= 1000:
        raise ValueError("give max_seconds or a smaller number of epochs: the run needs a budget.")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = int(epochs) * max(len(train_loader), 1) if hasattr(train_loader, "__len__") else None
    schedule = WarmupCosine(optimizer, lr, total_steps=steps, seconds=max_seconds)
    metrics = {"dice": lambda logits, y: float(dice_score(logits, y))} if val_loader is not None else None
    return fit(model, train_loader, BCEDiceLoss(bce_weight=bce_weight), optimizer, epochs=int(epochs),
               val_loader=val_loader, metrics=metrics, device=device, scheduler=schedule,
               max_seconds=max_seconds, amp=amp, channels_last=channels_last,
               ema_decay=ema_decay or None, show_progress=show_progress, verbose=verbose)


# --------------------------------------------------------------------------- inference
def _tta_flips(tta: str) -> list[tuple[int, ...]]:
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}.")
    return {"none": [()], "hflip": [(), (-1,)], "flips": [(), (-1,), (-2,), (-2, -1)]}[tta]


def predict_probability(model: torch.nn.Module, image: np.ndarray | torch.Tensor, *, tta: str = "none",
                        tile: int | None = None, device: torch.device | str | None = None,
                        amp: bool | str = False) -> np.ndarray:
    """Vessel probability ``(H, W)`` float32 of one preprocessed image ``(H, W, C)``.

    ``tile=None``: the whole image in one pass, reflect-padded to a multiple of the
    U-Net's ``size_divisor`` (fastest: a U-Net is fully convolutional). ``tile=p``:
    :func:`course_utils.inference.sliding_window_inference` with ``p x p`` windows
    (for images too big for memory). ``tta``: ``"none"``, ``"hflip"`` (2 passes) or
    ``"flips"`` (4 passes: every flip), probabilities averaged after flipping back.
    ``amp``: run the network in mixed precision (:mod:`course_utils.precision`).
    """
    image = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if image.ndim != 3:
        raise ValueError(f"expected a preprocessed image (H, W, C), got shape {tuple(image.shape)}.")
    x = image.permute(2, 0, 1)[None]  # (1, C, H, W)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    layout = memory_layout(model)
    flips = _tta_flips(tta)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast(device, amp):
            if tile is not None:
                from .inference import sliding_window_inference

                prob = sliding_window_inference(model, x[0], tile, overlap=0.5, device=device,
                                                activation="sigmoid",
                                                tta_flips={"none": False, "hflip": (1,), "flips": True}[tta])[0]
                return prob.cpu().numpy().astype(np.float32)
            padded, crop = pad_to_multiple(x.to(device), getattr(model, "size_divisor", 1), mode="reflect")
            padded = as_layout(padded, layout)
            total = None
            for dims in flips:
                inp = as_layout(padded.flip(dims), layout) if dims else padded
                out = torch.sigmoid(model(inp).float())
                out = out.flip(dims) if dims else out
                total = out if total is None else total + out
            prob = crop_to(total / len(flips), crop)[0, 0]
    finally:
        model.train(was_training)
    return prob.cpu().numpy().astype(np.float32)


def predict_cases(model: torch.nn.Module, cases: Sequence[FundusCase], *, tta: str = "none",
                  tile: int | None = None, amp: bool | str = False) -> tuple[list[np.ndarray], float]:
    """Probabilities ``(H, W)`` for each preprocessed case, and the mean seconds per image.

    Pixels outside the FOV are set to 0 (the network never has to decide there).
    """
    probs, start = [], time.perf_counter()
    for case in cases:
        probs.append(np.where(case.fov, predict_probability(model, case.image, tta=tta, tile=tile, amp=amp), 0.0)
                     .astype(np.float32))
    return probs, (time.perf_counter() - start) / max(len(cases), 1)


# --------------------------------------------------------------------------- evaluation
def choose_threshold(probs: Sequence[np.ndarray], cases: Sequence[FundusCase], criterion: str = "f1") -> float:
    """The threshold that maximises ``criterion`` over ``cases`` (pooled pixels inside the FOV).

    Give it validation (or training) cases: never the test cases you report on.
    """
    if len(probs) != len(cases) or not cases:
        raise ValueError(f"need one probability map per case, got {len(probs)} maps and {len(cases)} cases.")
    return best_threshold(list(probs), [c.vessels for c in cases], [c.fov for c in cases], criterion=criterion)


def evaluate_vessels(probs: Sequence[np.ndarray], cases: Sequence[FundusCase], threshold: float) -> dict[str, float]:
    """AUC and the binary metrics at ``prob > threshold``, pooled over ``cases`` inside the FOV.

    Returns ``auc, accuracy, sensitivity, specificity, precision, f1, iou`` (DRIVE protocol).
    """
    if len(probs) != len(cases) or not cases:
        raise ValueError(f"need one probability map per case, got {len(probs)} maps and {len(cases)} cases.")
    truth, fov = [c.vessels for c in cases], [c.fov for c in cases]
    *_, auc = roc_auc_in_mask(list(probs), truth, fov)
    metrics = binary_metrics([p > threshold for p in probs], truth, fov)
    return {"auc": auc, **metrics}


def observer_metrics(reference: Sequence[FundusCase], observer: Sequence[FundusCase]) -> dict[str, float]:
    """The second observer's binary metrics against the reference labels, inside the reference FOV."""
    if len(reference) != len(observer) or not reference:
        raise DataError(f"need the same test cases from both observers, got {len(reference)} and {len(observer)}.")
    for r, o in zip(reference, observer):
        if r.name != o.name or r.vessels.shape != o.vessels.shape:
            raise DataError(f"observer cases do not match: {r.name} {r.vessels.shape} vs {o.name} {o.vessels.shape}.")
    return binary_metrics([o.vessels for o in observer], [r.vessels for r in reference], [r.fov for r in reference])


__all__ = ["TTA_MODES", "VesselData", "load_vessel_data", "EpochPatches", "patch_loader", "build_vessel_model",
           "WarmupCosine", "train_vessel_model", "predict_probability", "predict_cases", "choose_threshold",
           "evaluate_vessels", "observer_metrics"]
