"""The one reader of photographs: an image file as ``(H, W, 3)`` uint8 RGB, or a :class:`DataError` naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError


def read_rgb_uint8(path: str | Path, *, advice: str, missing_advice: str | None = None) -> np.ndarray:
    """The pixels of an image file as ``(H, W, 3)`` uint8 RGB (grey and palette images converted, alpha dropped).

    ``advice`` ends the error message of a file that cannot be read (what the user should do);
    ``missing_advice`` that of a file that does not exist (default: ``advice``).
    """
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError as err:
        raise DataError(f"{path} does not exist; {missing_advice or advice}") from err
    except OSError as err:  # PIL's UnidentifiedImageError and truncated files are OSErrors too
        raise DataError(f"{path}: cannot read it as an image ({type(err).__name__}: {err}); {advice}") from err
