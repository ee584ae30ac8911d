"""How long a lesson takes a learner, estimated from its length (the number each notebook states).

The rule, deliberately simple and stated in every notebook: prose is read at :data:`WORDS_PER_MINUTE`, code at
:data:`CODE_LINES_PER_MINUTE`, and each exercise (a ``### Exercise N`` heading) takes :data:`MINUTES_PER_EXERCISE`;
the sum is rounded to 5 minutes. It is an estimate from the text, not a measurement of learners.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

WORDS_PER_MINUTE = 100  # careful reading of technical prose
CODE_LINES_PER_MINUTE = 10  # reading (not writing) the code cells
MINUTES_PER_EXERCISE = 8


def learner_minutes(path: str | Path) -> int:
    """Estimated learner minutes of the notebook at ``path``, rounded to 5 (see the module docstring)."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    prose = " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    prose = re.sub(r"<details>.*?</details>", "", prose, flags=re.S)  # the solutions are not read up front
    code_lines = sum(
        1 for c in cells if c["cell_type"] == "code" for line in "".join(c["source"]).splitlines() if line.strip()
    )
    exercises = len(re.findall(r"### Exercise \d+", prose))
    minutes = (
        len(re.findall(r"\w+", prose)) / WORDS_PER_MINUTE
        + code_lines / CODE_LINES_PER_MINUTE
        + exercises * MINUTES_PER_EXERCISE
    )
    return int(5 * round(minutes / 5))


__all__ = ["learner_minutes", "WORDS_PER_MINUTE", "CODE_LINES_PER_MINUTE", "MINUTES_PER_EXERCISE"]
