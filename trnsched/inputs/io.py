"""JSON in and out: reading input files as one-line errors, writing outputs
atomically (checked before any work, never replacing a device or a link)."""
from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from trnsched.inputs.errors import InputError, OutputError


def read_text(path: str | Path) -> str:
    """An input file's text: a regular file (a fifo would hang, a device never
    end) of UTF-8 (a BOM is fine), or a one-line InputError."""
    name = str(path)
    try:
        # stat before open: opening a fifo waits for a writer that may never come
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise InputError("is not a regular file", file=name)
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=name) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text: byte {data[exc.start]:#04x} at offset {exc.start}", file=name) from None


def read_json(path: str | Path) -> Any:
    """Decode a JSON input file, turning every problem into a one-line InputError:
    not a regular file (a fifo would hang, a device never end), not UTF-8 (a BOM
    is fine), malformed, or nested past the decoder's recursion limit (about
    1,000 levels; the formats need 6, and the schema refuses anything nested
    where it expects a value)."""
    name = str(path)
    text = read_text(path)
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_repeated_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", file=name) from None
    except _NotJSON as exc:
        raise InputError(f"malformed JSON: {exc}", file=name) from None
    except RecursionError:
        raise InputError("is nested too deeply to be a trnsched file", file=name) from None
    except ValueError as exc:       # an integer of more than 4,300 digits, say
        raise InputError(f"malformed JSON: {exc}", file=name) from None


class _NotJSON(ValueError):
    pass


def _no_constant(word: str) -> Any:
    """NaN and Infinity are not JSON; Python's decoder accepts them unless told."""
    raise _NotJSON(f"{word} is not a JSON number (use a finite number)")


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict:
    """An object naming a key twice: JSON leaves it undefined, Python keeps the
    last, and a user who wrote both meant one of them."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _NotJSON(f"an object gives {twice!r} twice")
    return obj


def check_output(path: str) -> None:
    """Before any work: an output path is not empty, not a folder, and its folder
    exists and may be written to.  (What it points at decides how it is written:
    `write_atomic`.)"""
    if not path:
        raise InputError("is empty: name a file to write", field="output")
    target = os.path.realpath(path)
    if os.path.isdir(target):
        raise InputError("is a folder: name a file in it", file=path, field="output")
    if os.path.exists(target) and not stat.S_ISREG(os.stat(target).st_mode):
        return      # a device or a fifo: written through, its folder untouched
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise InputError(f"folder {folder} does not exist", file=path, field="output")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"folder {folder} is not writable", file=path, field="output")


def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path` without ever leaving it half-written.

    A regular file (or none yet) is written to a temporary file beside it and
    renamed over it: a new file gets the mode the umask gives, a replaced one
    keeps its own.  A symlink is followed and its target written the same way
    (the link stays a link).  A device or a fifo is written through, never
    replaced (`-o /dev/stdout` works; `-o /dev/full` fails).  Errors name the
    path and the reason (OutputError)."""
    check_output(path)
    target = os.path.realpath(path)
    try:
        if os.path.exists(target) and not stat.S_ISREG(os.stat(target).st_mode):
            with open(target, "w") as fh:
                fh.write(text)
            return
        mode = _mode_for(target)
        fd, tmp = tempfile.mkstemp(prefix=".trnsched-", suffix=".json", dir=os.path.dirname(target))
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(path, exc.strerror or str(exc)) from None
        raise


def _mode_for(target: str) -> int:
    """The permission bits a written file gets: an existing file's own, else
    0666 less the umask (mkstemp's 0600 would hide results from a team)."""
    if os.path.exists(target):
        return stat.S_IMODE(os.stat(target).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


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
