"""Jobs: the typed form of jobs.json, with validation that names file, job and field."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from trnsched.inputs.catalog import STACKS, ModelSpec, builtin_models, model_from_dict
from trnsched.inputs.errors import InputError
from trnsched.inputs.io import read_json

KINDS = ("train", "infer")
PRECISIONS = ("bf16", "fp8", "fp4")
COMMON_FIELDS = {"id", "kind", "model", "precision", "chips", "chip_types", "stack", "priority",
                 "arrival_h", "deadline_h", "parallelism", "name", "note"}
TRAIN_FIELDS = {"tokens", "batch_tokens", "batch_seqs", "seq_len"}
INFER_FIELDS = {"rate_rps", "prompt_tokens", "output_tokens", "slo", "duration_h", "batch", "offline"}
DEFAULT_SERVICE_HOURS = 1.0


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    model: ModelSpec
    precision: str = "bf16"
    chips_min: int | None = None
    chips_max: int | None = None
    chip_types: tuple[str, ...] | None = None
    stack: str = "any"
    priority: int = 1
    arrival_h: float = 0.0
    deadline_h: float | None = None
    parallelism: Mapping[str, int] = field(default_factory=dict)
    # train
    tokens: float = 0.0
    seq_len: int = 0
    batch_seqs: float = 0.0
    # infer
    rate_rps: float = 0.0
    prompt_tokens: int = 0
    output_tokens: int = 0
    slo_ttft_ms: float | None = None
    slo_tpot_ms: float | None = None
    duration_h: float = DEFAULT_SERVICE_HOURS
    batch: int = 0
    offline: bool = False          # batch work with no latency target: layouts compete on throughput alone

    @property
    def is_train(self) -> bool:
        return self.kind == "train"

    def allows(self, chip_name: str, chip_stack: str) -> bool:
        """Whether the job's allow-list and stack admit this chip type."""
        if self.chip_types is not None and chip_name not in self.chip_types:
            return False
        return self.stack == "any" or self.stack == chip_stack


class _Fields:
    """Typed reads from one job's dict; every failure names file, job and field."""

    def __init__(self, raw: Mapping[str, Any], file: str | None, job: str | None) -> None:
        self.raw, self.file, self.job = raw, file, job

    def fail(self, name: str, message: str) -> InputError:
        return InputError(message, file=self.file, job=self.job, field=name)

    def number(self, name: str, default: Any = None, *, positive: bool = True, integer: bool = False,
               value: Any = None, required: bool = False) -> Any:
        v = self.raw.get(name, default) if value is None else value
        if v is None:
            if required:
                raise self.fail(name, "is required")
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(name, f"must be a number, got {v!r}")
        if v < 0 or (positive and v == 0):
            raise self.fail(name, f"must be {'positive' if positive else 'non-negative'}, got {v!r}")
        if integer:
            if v != int(v):
                raise self.fail(name, f"must be a whole number, got {v!r}")
            return int(v)
        return float(v)

    def flag(self, name: str) -> bool:
        v = self.raw.get(name, False)
        if not isinstance(v, bool):
            raise self.fail(name, f"must be true or false, got {v!r}")
        return v

    def choice(self, name: str, options: Iterable[str], default: str | None = None) -> str:
        v = self.raw.get(name, default)
        options = tuple(options)
        if v not in options:
            raise self.fail(name, f"must be one of {', '.join(options)}, got {v!r}")
        return v


def parse_job(raw: Any, *, file: str | None = None, index: int = 0,
              models: Mapping[str, ModelSpec] | None = None,
              chip_names: Iterable[str] | None = None) -> Job:
    if not isinstance(raw, Mapping):
        raise InputError(f"job #{index + 1} must be an object", file=file)
    job_id = raw.get("id")
    if not isinstance(job_id, str) or not job_id.strip():
        raise InputError(f"must be a non-empty string, got {job_id!r}", file=file, job=f"#{index + 1}", field="id")
    f = _Fields(raw, file, job_id)
    kind = f.choice("kind", KINDS)
    allowed = COMMON_FIELDS | (TRAIN_FIELDS if kind == "train" else INFER_FIELDS)
    for key in raw:
        if key not in allowed:
            other = "an inference" if key in INFER_FIELDS else "a training" if key in TRAIN_FIELDS else None
            raise f.fail(key, f"is only for {other} job" if other else "is not a known job field")

    models = builtin_models() if models is None else models
    model_raw = raw.get("model")
    if isinstance(model_raw, str):
        if model_raw not in models:
            raise f.fail("model", f"unknown model {model_raw!r}; presets: {', '.join(sorted(models))}")
        model = models[model_raw]
    elif model_raw is None:
        raise f.fail("model", "is required")
    else:
        model = model_from_dict(model_raw, name=f"{job_id}-model", file=file, job=job_id)

    chips = raw.get("chips")
    chips_min = chips_max = None
    if isinstance(chips, Mapping):
        extra = set(chips) - {"min", "max"}
        if extra:
            raise f.fail("chips", f"unknown key {sorted(extra)[0]!r} (use min and max)")
        chips_min = f.number("chips.min", value=chips.get("min", 1), integer=True)
        chips_max = f.number("chips.max", value=chips["max"], integer=True) if "max" in chips else None
        if chips_max is not None and chips_max < chips_min:
            raise f.fail("chips", f"max {chips_max} is below min {chips_min}")
    elif chips is not None:
        chips_min = chips_max = f.number("chips", integer=True)

    chip_types = raw.get("chip_types")
    if chip_types is not None:
        if (not isinstance(chip_types, list) or not chip_types
                or not all(isinstance(c, str) for c in chip_types)):
            raise f.fail("chip_types", "must be a non-empty list of chip type names")
        if chip_names is not None:
            known = set(chip_names)
            for c in chip_types:
                if c not in known:
                    raise f.fail("chip_types", f"unknown chip type {c!r}; known: {', '.join(sorted(known))}")
        chip_types = tuple(chip_types)

    hints = raw.get("parallelism") or {}
    if not isinstance(hints, Mapping):
        raise f.fail("parallelism", "must be an object with tp, pp, dp, ep")
    for key in hints:
        if key not in ("tp", "pp", "dp", "ep"):
            raise f.fail(f"parallelism.{key}", "is not one of tp, pp, dp, ep")
    hints = {k: f.number(f"parallelism.{k}", value=v, integer=True) for k, v in hints.items()}
    if "tp" in hints and hints["tp"] & (hints["tp"] - 1):
        raise f.fail("parallelism.tp", f"must be a power of two, got {hints['tp']}")

    common = dict(
        id=job_id, kind=kind, model=model, precision=f.choice("precision", PRECISIONS, "bf16"),
        chips_min=chips_min, chips_max=chips_max, chip_types=chip_types,
        stack=f.choice("stack", STACKS + ("any",), "any"),
        priority=f.number("priority", 1, integer=True),
        arrival_h=f.number("arrival_h", 0.0, positive=False),
        deadline_h=f.number("deadline_h"), parallelism=hints,
    )
    if kind == "train" and common["precision"] == "fp4":
        raise f.fail("precision", "fp4 is for inference; train in bf16 or fp8")
    if common["deadline_h"] is not None and common["deadline_h"] <= common["arrival_h"]:
        raise f.fail("deadline_h", f"{common['deadline_h']} is not after arrival_h {common['arrival_h']}")
    if kind == "train":
        seq_len = f.number("seq_len", 4096, integer=True)
        if "batch_seqs" in raw and "batch_tokens" in raw:
            raise f.fail("batch_tokens", "give batch_tokens or batch_seqs, not both")
        if "batch_seqs" in raw:
            batch_seqs = float(f.number("batch_seqs", integer=True))
        else:
            batch_tokens = f.number("batch_tokens", 4 * 1024 * 1024)
            if batch_tokens < seq_len:
                raise f.fail("batch_tokens", f"{batch_tokens:g} is less than one sequence ({seq_len} tokens)")
            batch_seqs = math.floor(batch_tokens / seq_len)
        return Job(**common, tokens=f.number("tokens", required=True), seq_len=seq_len, batch_seqs=batch_seqs)

    slo = raw.get("slo") or {}
    if not isinstance(slo, Mapping):
        raise f.fail("slo", "must be an object with ttft_ms and/or tpot_ms")
    for key in slo:
        if key not in ("ttft_ms", "tpot_ms"):
            raise f.fail(f"slo.{key}", "is not one of ttft_ms, tpot_ms")
    return Job(**common,
               rate_rps=f.number("rate_rps", 0.0, positive=False),
               prompt_tokens=f.number("prompt_tokens", required=True, integer=True),
               output_tokens=f.number("output_tokens", required=True, integer=True),
               slo_ttft_ms=f.number("slo.ttft_ms", value=slo.get("ttft_ms")),
               slo_tpot_ms=f.number("slo.tpot_ms", value=slo.get("tpot_ms")),
               duration_h=f.number("duration_h", DEFAULT_SERVICE_HOURS),
               batch=f.number("batch", 0, integer=True, positive=False),
               offline=f.flag("offline"))


def parse_jobs(data: Any, *, file: str | None = None, chip_names: Iterable[str] | None = None) -> list[Job]:
    """Jobs from a decoded jobs.json: {"jobs": [...]} or a bare list."""
    if isinstance(data, Mapping):
        if "jobs" not in data:
            raise InputError("expected an object with a 'jobs' list, or a list of jobs", file=file, field="jobs")
        data = data["jobs"]
    if not isinstance(data, list):
        raise InputError("'jobs' must be a list", file=file, field="jobs")
    names = list(chip_names) if chip_names is not None else None
    jobs, seen = [], set()
    for i, raw in enumerate(data):
        job = parse_job(raw, file=file, index=i, chip_names=names)
        if job.id in seen:
            raise InputError("duplicate id", file=file, job=job.id, field="id")
        seen.add(job.id)
        jobs.append(job)
    return jobs


def load_jobs(path: str | Path, *, chip_names: Iterable[str] | None = None) -> list[Job]:
    return parse_jobs(read_json(path), file=str(path), chip_names=chip_names)
