"""The command line shared by the ``benchmarks/bench_*.py`` scripts: profile, threads, ``--set knob=value``."""

from __future__ import annotations

import argparse
import os
from typing import Any

import torch

from .config import Config, get_config
from .config import parse_overrides as _parse_overrides
from .device import pick_device
from .errors import ConfigError


def bench_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--profile``, ``--threads`` and repeatable ``--set KNOB=VALUE``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--profile", default="cpu", choices=("smoke", "cpu", "gpu", "auto"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="override a knob of the lesson config (repeatable)",
    )
    return parser


def parse_overrides(lesson: str, pairs: list[str], profile: str) -> dict[str, Any]:
    """``--set`` pairs of ``lesson`` (:func:`course_utils.config.parse_overrides`); exits with the message."""
    try:
        return _parse_overrides(lesson, profile, pairs)
    except ConfigError as err:
        raise SystemExit(f"--set {err}") from None


def start_run(lesson: str, args: argparse.Namespace, **overrides: Any) -> tuple[Config, torch.device]:
    """Plain progress bars, ``--threads``, the lesson's config (``--set`` and ``overrides``) and the device.

    The ``gpu`` profile runs on CUDA when there is one; every other profile on the default device.
    """
    os.environ.setdefault("COURSE_PLAIN_PROGRESS", "1")  # text progress bars, every 5 s at most
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = parse_overrides(lesson, args.set, args.profile)
    both = sorted(k for k, v in overrides.items() if v is not None and k in pairs)
    if both:
        raise SystemExit(f"{', '.join(both)} given twice (as an option and with --set); give each knob once.")
    try:
        cfg = get_config(lesson, args.profile, **{**overrides, **pairs})
    except ConfigError as err:  # a bad value fails here, before any data is read
        raise SystemExit(f"--set/option: {err}") from None
    device = pick_device("cuda" if cfg.profile == "gpu" and torch.cuda.is_available() else None)
    return cfg, device
