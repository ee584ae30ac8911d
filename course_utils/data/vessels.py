"""Fundus photographs with vessel labels for the lessons: DRIVE from the data root, else the synthetic stand-in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .drive import FundusCase, find_drive_root, load_drive, missing_drive_message, split_train_val
from .synthetic_fundus import DRIVE_SIZE, synthetic_drive


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


def load_vessel_data(
    root: str | Path | None = None,
    *,
    n_val: int = 4,
    seed: int = 0,
    max_train: int | None = None,
    max_test: int | None = None,
    synthetic: bool | None = None,
    synthetic_size: tuple[int, int] = DRIVE_SIZE,
) -> VesselData:
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
        except DataError as err:  # some copies lack 2nd_manual: everything but the human reference works
            test2 = []
            note += f" No second observer: {err}"
    else:
        train, test = synthetic_drive(
            20 if max_train is None else max_train, 20 if max_test is None else max_test, size=synthetic_size, seed=seed
        )
        test2, source = [], "synthetic"
        note = (
            "DRIVE was not found, so this run uses the SYNTHETIC fundus images of "
            "course_utils.data.synthetic_fundus (scores are not comparable to DRIVE). " + missing_drive_message(root)
        )
    train = train[:max_train] if max_train else train
    test, test2 = (test[:max_test], test2[:max_test]) if max_test else (test, test2)
    if n_val:
        train, val = split_train_val(train, n_val=n_val, seed=seed)
    else:
        val = []
    return VesselData(
        train=list(train), val=list(val), test=list(test), test_observer2=list(test2), source=source, note=note
    )


__all__ = ["VesselData", "load_vessel_data"]
