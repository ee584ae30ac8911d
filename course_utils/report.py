"""Headline numbers: a notebook records them, the notebook runner collects them.

``record("val_dice", 0.91)`` shows a line in the notebook and stores the value in
the cell output under the MIME type :data:`MIME`, where ``make course`` finds it
in the executed notebook and prints it in its summary table.
"""

from __future__ import annotations

import json
import math
from typing import Any

MIME = "application/vnd.course-utils.record+json"


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    raise TypeError(f"record() takes numbers or strings, got {type(value).__name__}")


def record(name: str, value: Any, unit: str = "") -> Any:
    """Show and store one headline number of this notebook run; returns ``value``."""
    value = _plain(value)
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    payload = {"name": name, "value": value, "unit": unit}
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({MIME: payload, "text/plain": f"[recorded] {name} = {text} {unit}".rstrip()}, raw=True)
            return value
    except ImportError:  # pragma: no cover - IPython is a course dependency
        pass
    print(f"[recorded] {name} = {text} {unit}".rstrip())
    return value


def collect_records(notebook: dict) -> dict[str, Any]:
    """All values recorded in an executed notebook (``nbformat`` dict), by name; the last one wins."""
    found: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = out.get("data", {})
            if MIME in data:
                payload = data[MIME]
                if isinstance(payload, str):
                    payload = json.loads(payload)
                found[payload["name"]] = payload["value"]
    return found
