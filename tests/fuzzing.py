"""JSON mutations of the example jobs and fleet files, and the bad-input
contract they are held to.  Shared by the fuzz tests (a bounded number of
examples, in CI) and `bench/fuzz.py` (thousands, reporting every violation).

A mutation walks to one place in one file and breaks it the way a user, a
script or a disk would: a wrong type, null, NaN or +-Infinity, a huge, negative
or fractional number, deep nesting, an unknown or a missing field, or the whole
file in another encoding or with bytes that are not UTF-8.  Or it scales a
number by 10^-6..10^9, which mostly stays valid and drives the whole solve
(candidates, scoring, explanations) through figures nobody tried by hand.  The command is then
`trnsched solve JOBS [--fleet FLEET] --policy greedy -o OUT` with OUT already
holding other bytes, and the contract is:

- exit 2: exactly one line on stderr, `error: ` and the file's path (and, for a
  job's field, the job and the field), no traceback, OUT untouched;
- exit 0 (the mutation left the input valid): OUT holds a result the
  independent checker accepts, every job in it exactly once;
- nothing else (exit 1 is an internal error here: no output was unwritable).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
JOBS = json.loads((ROOT / "examples" / "jobs.json").read_text())
FLEET = json.loads((ROOT / "examples" / "fleet.json").read_text())
SENTINEL = b"an earlier result, which bad input must leave alone\n"
DEEP, DEEP_MARK = 100_000, "<nested 100,000 deep>"
LONG_MARK = "<an integer of 5,000 digits>"       # json.dumps refuses to write one

BAD_VALUES = [
    None, math.nan, math.inf, -math.inf, -1, 0, -0.5, 0.5, 1e308, 10 ** 30, 2 ** 63, -(2 ** 63), 10 ** 400,
    True, False, "", "8", "NaN", "x" * 300, "a\nb", "\x1b[31mred", "\u200b", "\ud800", [], [1], {}, {"value": 1},
    8.0, 64.0,
]


@dataclass
class Case:
    """One fuzzed input: the bytes of the jobs file and of the fleet file (None:
    the built-in fleet), and what was done, for the report."""
    jobs: bytes
    fleet: bytes | None
    what: str


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document (dict keys and list items), depth-first."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:6]):           # the first few items stand for the rest
            out += _paths(v, prefix + (i,))
    return out


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = _get(doc, path[:-1])
    parent[path[-1]] = value
    return doc


def _nest(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf] if depth % 2 else {"k": leaf}
    return leaf


@st.composite
def mutated_document(draw, base: Any) -> tuple[Any, str]:
    doc = json.loads(json.dumps(base))
    paths = _paths(doc)
    kind = draw(st.sampled_from(["scale", "scale", "value", "value", "nest", "unknown", "missing", "duplicate"]))
    if kind == "scale":
        # A number of the right type, 10^-6..10^9 times the example's: mostly in
        # range, so the whole solve runs on figures nobody tried by hand.
        numbers = [p for p in paths if type(_get(doc, p)) in (int, float)]
        path = draw(st.sampled_from(numbers))
        here = _get(doc, path)
        factor = 10.0 ** draw(st.integers(-6, 9))
        value = max(1, round(here * factor)) if isinstance(here, int) else here * factor
        return _set(doc, path, value), f"{'/'.join(map(str, path))} = {value!r} (x{factor:g})"
    path = draw(st.sampled_from(paths))
    here = _get(doc, path)
    if kind == "value":
        # Bad values, and plausible ones: a number that is merely different must
        # either place or be explained, never crash the solve.
        value = draw(st.one_of(st.sampled_from(BAD_VALUES + [LONG_MARK]), st.integers(-(2 ** 70), 2 ** 70),
                               st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                               st.integers(1, 512), st.floats(0.001, 1e4), st.floats(1e4, 1e12)))
        return _set(doc, path, value), f"{'/'.join(map(str, path)) or '<root>'} = {value!r:.60}"
    if kind == "nest":
        depth = draw(st.sampled_from([3, 40, 200, DEEP]))
        value = DEEP_MARK if depth == DEEP else _nest(depth, here)    # too deep for json.dumps: spliced in as text
        return _set(doc, path, value), f"{'/'.join(map(str, path))} nested {depth} deep"
    if kind == "unknown" and isinstance(here, dict):
        key = draw(st.sampled_from(["colour", "Priority", "", "\x00", "jobs", "id"]))
        here[key + "_x" if key in here else key] = draw(st.sampled_from(BAD_VALUES[:8]))
        return doc, f"{'/'.join(map(str, path))} gains an unknown field {key!r}"
    if kind == "missing" and isinstance(here, dict) and here:
        key = draw(st.sampled_from(sorted(here)))
        del here[key]
        return doc, f"{'/'.join(map(str, path))} loses {key!r}"
    if kind == "duplicate" and isinstance(here, list) and here:
        here.append(json.loads(json.dumps(here[0])))
        return doc, f"{'/'.join(map(str, path))} repeats its first item"
    return _set(doc, path, None), f"{'/'.join(map(str, path)) or '<root>'} = None"


@st.composite
def encoded(draw, doc: Any) -> tuple[bytes, str]:
    """The document's bytes: mostly UTF-8 JSON (NaN and Infinity as Python
    writes them), sometimes another encoding, a BOM, stray bytes or a cut."""
    text = json.dumps(doc, allow_nan=True).replace(json.dumps(DEEP_MARK), "[" * DEEP + "]" * DEEP)
    text = text.replace(json.dumps(LONG_MARK), "9" * 5000)
    how = draw(st.sampled_from(["utf-8"] * 12 + ["utf-8-sig", "utf-16", "latin-1 é", "stray byte", "cut", "empty",
                                                 "repeated key"]))
    if how == "repeated key" and '{"' in text:
        at = text.index('{"') + 1             # the first object's first key, given twice
        key = text[at:text.index('"', at + 1) + 1]
        return (text[:at] + f"{key}: 0, " + text[at:]).encode(), how
    if how in ("utf-8", "utf-8-sig", "utf-16"):
        return text.encode(how), how
    if how == "latin-1 é":
        return text.replace('"', '"\u00e9', 1).encode("latin-1", errors="replace"), how
    if how == "stray byte":
        at = draw(st.integers(0, len(text)))
        return text[:at].encode() + b"\xff\xfe" + text[at:].encode(), how
    if how == "cut":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))].encode(), how
    return b"", how


@st.composite
def cases(draw) -> Case:
    target = draw(st.sampled_from(["jobs", "jobs", "fleet", "both"]))
    jobs_doc, fleet_doc, what = JOBS, FLEET if draw(st.booleans()) else None, []
    if target in ("jobs", "both"):
        jobs_doc, w = draw(mutated_document(JOBS))
        what.append(f"jobs: {w}")
    if target in ("fleet", "both"):
        fleet_doc, w = draw(mutated_document(FLEET))
        what.append(f"fleet: {w}")
    jobs_bytes, how = draw(encoded(jobs_doc)) if target != "fleet" else (json.dumps(jobs_doc).encode(), "utf-8")
    what.append(f"jobs as {how}")
    fleet_bytes = None
    if fleet_doc is not None:
        fleet_bytes, how = draw(encoded(fleet_doc)) if target != "jobs" else (json.dumps(fleet_doc).encode(), "utf-8")
        what.append(f"fleet as {how}")
    return Case(jobs_bytes, fleet_bytes, "; ".join(what))


def run_case(case: Case, folder: Path) -> tuple[int | None, str | None]:
    """Run one case through the command in this process: its exit code, and
    None if it kept the contract, else what broke."""
    from click.testing import CliRunner

    from checker import check
    from trnsched.cli import main

    jobs, fleet, out = folder / "jobs.json", folder / "fleet.json", folder / "out.json"
    jobs.write_bytes(case.jobs)
    args = ["solve", str(jobs), "--policy", "greedy", "-o", str(out)]
    if case.fleet is not None:
        fleet.write_bytes(case.fleet)
        args += ["--fleet", str(fleet)]
    elif fleet.exists():
        fleet.unlink()
    out.write_bytes(SENTINEL)
    res = CliRunner().invoke(main, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        return None, f"raised {type(res.exception).__name__}: {res.exception}"
    stderr = res.stderr
    if "Traceback" in stderr or "Traceback" in res.stdout:
        return res.exit_code, f"traceback: {stderr[-300:]}"
    if res.exit_code == 2:
        lines = stderr.strip().splitlines()
        if len(lines) != 1 or not lines[0].startswith("error: "):
            return 2, f"exit 2 without one 'error:' line: {stderr!r:.300}"
        if str(jobs) not in lines[0] and str(fleet) not in lines[0]:
            return 2, f"the error names no file: {lines[0]}"
        if out.read_bytes() != SENTINEL:
            return 2, "bad input touched the existing output file"
        return 2, None
    if res.exit_code == 0:
        try:
            result = json.loads(out.read_text())
            jobs_doc = json.loads(case.jobs.decode("utf-8-sig"))
            fleet_doc = json.loads(case.fleet.decode("utf-8-sig")) if case.fleet is not None else _default_fleet()
            check(jobs_doc, fleet_doc, result)
        except Exception as exc:  # noqa: BLE001 - any failure is the report
            return 0, f"exit 0 but the result fails the checker: {type(exc).__name__}: {exc}"
        return 0, None
    return res.exit_code, f"exit {res.exit_code}: {stderr.strip()[:300]}"


def _default_fleet() -> dict:
    return json.loads((ROOT / "trnsched" / "data" / "default_fleet.json").read_text())
