"""JSON in and out: reading input files as one-line errors, writing outputs atomically."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from trnsched.inputs.errors import InputError


def read_json(path: str | Path) -> Any:
    """Decode a JSON file, turning I/O and syntax problems into one-line InputErrors."""
    name = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=name) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", file=name) from None


def write_atomic(path: str, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: no half-written output."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError("folder does not exist", file=path)
    fd, tmp = tempfile.mkstemp(prefix=".trnsched-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_number(x: Any, rounding: str = "nearest") -> Any:
    """A float as output JSON carries it: six decimals, and null where it is not
    finite.  A bound is rounded the way that keeps it a bound ("down" for a lower
    bound, "up" for a gap): to the nearest could lift it past the optimum."""
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        if rounding == "down":
            return math.floor(x * 1e6) / 1e6
        if rounding == "up":
            return math.ceil(x * 1e6) / 1e6
        return round(x, 6)
    return x
