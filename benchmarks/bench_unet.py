"""Benchmark the course U-Net: parameters, training throughput, full-image inference time.

Run from the repository root with ``course_utils`` importable (``pip install -e .`` or
``PYTHONPATH=.``)::

    python benchmarks/bench_unet.py --profile smoke          # seconds, checks that it runs
    OMP_NUM_THREADS=2 python benchmarks/bench_unet.py --threads 2
    python benchmarks/bench_unet.py --profile gpu --widths 16,32,64

For each base width it reports the parameter count, training samples/s on random RGB
patches (Adam, BCEWithLogitsLoss; warm-up steps are not timed) and the median time of
one inference on a DRIVE-sized 584x565 RGB image (padded to a multiple of the size
divisor, eval mode, ``torch.inference_mode``). It prints a table, then as the last line
one JSON object ``{"benchmark": "unet", ...}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from course_utils.device import describe_device, pick_device
from course_utils.models import UNet, count_parameters, crop_to, pad_to_multiple


@dataclass(frozen=True)
class Profile:
    widths: tuple[int, ...]
    patch: int  # training patch side, pixels
    batch: int  # training batch size
    warmup_steps: int  # untimed training steps
    steps: int  # timed training steps (at most)
    max_seconds: float  # ... or stop timing after this many seconds (at least one step)
    image: tuple[int, int]  # inference image (H, W)
    repeats: int  # inference repeats (median reported)


PROFILES = {
    "smoke": Profile(
        widths=(4, 8), patch=32, batch=4, warmup_steps=1, steps=2, max_seconds=1.0, image=(92, 75), repeats=1
    ),
    "cpu": Profile(
        widths=(8, 16, 32), patch=64, batch=32, warmup_steps=2, steps=10, max_seconds=30.0, image=(584, 565), repeats=3
    ),
    "gpu": Profile(
        widths=(8, 16, 32),
        patch=64,
        batch=128,
        warmup_steps=10,
        steps=50,
        max_seconds=30.0,
        image=(584, 565),
        repeats=10,
    ),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_samples_per_second(model: nn.Module, profile: Profile, device: torch.device) -> tuple[float, int]:
    """Training throughput on random 3-channel patches; returns (samples/s, timed steps)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand((profile.batch, 3, profile.patch, profile.patch), generator=g).to(device)
    y = (torch.rand((profile.batch, 1, profile.patch, profile.patch), generator=g) > 0.9).float().to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimiser.step()

    for _ in range(profile.warmup_steps):
        step()
    _sync(device)
    steps, start = 0, time.perf_counter()
    while steps < profile.steps:
        step()
        steps += 1
        _sync(device)
        if time.perf_counter() - start > profile.max_seconds:
            break
    elapsed = time.perf_counter() - start
    return steps * profile.batch / elapsed, steps


def inference_seconds(model: UNet, profile: Profile, device: torch.device) -> tuple[float, tuple[int, ...]]:
    """Median seconds for one full image (pad, forward, crop); returns (seconds, padded size)."""
    g = torch.Generator().manual_seed(1)
    image = torch.rand((1, 3) + profile.image, generator=g).to(device)
    model.eval()
    times = []
    padded_size: tuple[int, ...] = ()
    with torch.inference_mode():
        for i in range(profile.repeats + 1):  # the first run is a warm-up
            _sync(device)
            start = time.perf_counter()
            padded, crop = pad_to_multiple(image, model.size_divisor)
            out = crop_to(model(padded), crop)
            _sync(device)
            if i > 0:
                times.append(time.perf_counter() - start)
            padded_size = tuple(padded.shape[2:])
    assert out.shape[2:] == image.shape[2:]
    return statistics.median(times), padded_size


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument(
        "--widths", default=None, help="comma-separated base widths, e.g. 8,16,32 (default: the profile's)"
    )
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)

    profile = PROFILES[args.profile]
    try:
        widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else profile.widths
    except ValueError:
        parser.error(f"--widths must be comma-separated integers, got {args.widths!r}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    rows = []
    for width in widths:
        torch.manual_seed(0)
        model = UNet(3, 1, depth=args.depth, base_width=width).to(device)
        samples_per_s, steps = train_samples_per_second(model, profile, device)
        seconds, padded = inference_seconds(model, profile, device)
        rows.append(
            dict(
                base_width=width,
                depth=args.depth,
                params=count_parameters(model),
                train_samples_per_s=round(samples_per_s, 2),
                train_patch=profile.patch,
                train_batch=profile.batch,
                train_steps=steps,
                infer_image=list(profile.image),
                infer_padded=list(padded),
                infer_seconds=round(seconds, 4),
                infer_repeats=profile.repeats,
            )
        )
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()

    header = f"{'width':>5}  {'params':>10}  {'train samples/s':>15}  {'infer s/image':>13}"
    print(
        f"U-Net depth {args.depth}, profile {args.profile}, device {describe_device(device)}, torch {torch.__version__}"
    )
    print(
        f"train: {profile.batch} x 3 x {profile.patch} x {profile.patch} patches, Adam, BCEWithLogits; "
        f"inference: one 3 x {profile.image[0]} x {profile.image[1]} image, median of {profile.repeats}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['base_width']:>5}  {row['params']:>10,}  {row['train_samples_per_s']:>15.1f}  "
            f"{row['infer_seconds']:>13.3f}"
        )
    result = {
        "benchmark": "unet",
        "profile": args.profile,
        "device": str(device),
        "device_name": describe_device(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "rows": rows,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
