"""course_utils: the helpers behind the course "Medical image segmentation with U-Nets in PyTorch".

Each helper is born in a lesson, where it is written out and explained, and is
reused from here by the lessons after it. The general layers (configuration, data,
models, training, inference, metrics, checkpoint, plotting...) sit at the top level;
each lesson's own code lives in :mod:`course_utils.lessons` (``lessonNN/``: settings,
pipeline, exercises).
"""

from .config import get_config
from .device import describe_device, pick_device
from .paths import data_root, output_dir
from .report import record
from .seeding import seed_everything

__version__ = "0.2.0"  # also in pyproject.toml; checkpoints record it
__all__ = [
    "get_config",
    "pick_device",
    "describe_device",
    "data_root",
    "output_dir",
    "record",
    "seed_everything",
    "__version__",
]
