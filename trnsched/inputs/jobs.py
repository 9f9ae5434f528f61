"""Jobs: the typed form of jobs.json, with validation that names file, job and field."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from trnsched.inputs.catalog import ModelSpec, builtin_models, model_from_spec, model_rules
from trnsched.inputs.errors import InputError
from trnsched.inputs.io import read_json
from trnsched.inputs.schema import CHECKED
from trnsched.inputs.validate import validate_job_objects, validate_jobs

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
    disaggregation: str = "allow"  # prefill and decode pools: "never", "allow" (when cheaper) or "require"

    @property
    def may_split(self) -> bool:
        """Whether disaggregated candidates are worth making: a service with a rate
        to size the pools for, whose layout no hint or fixed batch pins down."""
        return (not self.is_train and self.disaggregation != "never" and self.rate_rps > 0 and not self.batch
                and not self.offline and not self.parallelism)

    @property
    def is_train(self) -> bool:
        return self.kind == "train"

    def allows(self, chip_name: str, chip_stack: str) -> bool:
        """Whether the job's allow-list and stack admit this chip type."""
        if self.chip_types is not None and chip_name not in self.chip_types:
            return False
        return self.stack == "any" or self.stack == chip_stack


def parse_jobs(data: Any, *, file: str | None = None, chip_names: Iterable[str] | None = None) -> list[Job]:
    """Jobs from a decoded jobs.json: {"jobs": [...]} or a bare list.  Types and
    ranges are schema.py's; what spans fields, and what needs the catalogs or
    the fleet's chip types, is checked here (`job_rules`)."""
    specs = validate_jobs(data, file=file)
    known = set(chip_names) if chip_names is not None else None
    models = builtin_models()
    jobs, seen, models_checked = [], set(), set()
    for spec in specs:
        job = _job(spec, file, models)
        if job.id in seen:
            raise InputError("duplicate id", file=file, job=job.id, field="id")
        seen.add(job.id)
        job_rules(job, known, file=file, model_checked=id(job.model) in models_checked)
        models_checked.add(id(job.model))           # a preset, shared by many jobs, is checked once
        object.__setattr__(job, CHECKED, True)
        jobs.append(job)
    return jobs


def check_jobs(jobs: Sequence[Job], chip_names: Iterable[str] | None = None) -> None:
    """Job objects built in code, held to what a jobs file must satisfy: the
    schema's ranges, unique ids and `job_rules`.  Jobs straight from
    parse_jobs were checked there (their chip types are checked again: the
    fleet may differ)."""
    unchecked = [job for job in jobs if not getattr(job, CHECKED, False)]
    validate_job_objects(unchecked)
    known = set(chip_names) if chip_names is not None else None
    seen: set[str] = set()
    for job in jobs:
        if job.id in seen:
            raise InputError("duplicate id: two Job objects share it", job=job.id, field="id")
        seen.add(job.id)
    for job in jobs:
        if getattr(job, CHECKED, False):
            _check_chip_types(job, known, None)     # against this fleet's chip types
        else:
            job_rules(job, known)


def job_rules(job: Job, known: set[str] | None, *, file: str | None = None, model_checked: bool = False) -> None:
    """What spans a job's fields, for a file's jobs and the library's alike."""
    def fail(name: str, message: str) -> InputError:
        return InputError(message, file=file, job=job.id, field=name)

    if not model_checked:
        model_rules(job.model, file=file, job=job.id)
    _check_chip_types(job, known, file)
    if job.chips_min is not None and job.chips_max is not None and job.chips_max < job.chips_min:
        raise fail("chips", f"max {job.chips_max} is below min {job.chips_min}")
    tp = job.parallelism.get("tp")
    if tp is not None and tp & (tp - 1):
        raise fail("parallelism.tp", f"must be a power of two, got {tp}")
    if job.deadline_h is not None and job.deadline_h <= job.arrival_h:
        raise fail("deadline_h", f"{job.deadline_h:g} is not after arrival_h {job.arrival_h:g}")
    if job.is_train:
        if job.precision == "fp4":
            raise fail("precision", "fp4 is for inference; train in bf16 or fp8")
        for name in ("tokens", "seq_len", "batch_seqs"):
            if getattr(job, name) <= 0:
                raise fail(name, f"a training job needs a positive {name}, got {getattr(job, name)!r}")
    else:
        for name in ("prompt_tokens", "output_tokens"):
            if getattr(job, name) <= 0:
                raise fail(name, f"an inference job needs a positive {name}, got {getattr(job, name)!r}")
        if job.disaggregation == "require" and not job.may_split:
            why = ("a rate_rps to size its pools for" if job.rate_rps <= 0 else
                   "no fixed batch, offline flag or parallelism hints (they fix a co-located layout)")
            raise fail("disaggregation", f"require needs {why}")


def _check_chip_types(job: Job, known: set[str] | None, file: str | None) -> None:
    if job.chip_types is None:
        return
    if len(set(job.chip_types)) != len(job.chip_types):
        twice = next(c for c in job.chip_types if job.chip_types.count(c) > 1)
        raise InputError(f"lists {twice!r} twice", file=file, job=job.id, field="chip_types")
    for c in job.chip_types:
        if known is not None and c not in known:
            raise InputError(f"unknown chip type {c!r}; known: {', '.join(sorted(known))}", file=file, job=job.id,
                             field="chip_types")


def parse_job(raw: Any, *, file: str | None = None, chip_names: Iterable[str] | None = None) -> Job:
    """One job from its decoded dict."""
    return parse_jobs([raw], file=file, chip_names=chip_names)[0]


def _job(spec: Mapping[str, Any], file: str | None, models: Mapping[str, ModelSpec]) -> Job:
    """A Job from one validated job dict (schema.TrainJob or InferJob), with the
    schema's stated defaults for what it leaves out.  Only what is about the
    file's form is checked here; the rest is `job_rules`."""
    job_id = spec["id"]

    def fail(name: str, message: str) -> InputError:
        return InputError(message, file=file, job=job_id, field=name)

    model = spec["model"]
    if isinstance(model, str):
        if model not in models:
            raise fail("model", f"unknown model {model!r}; presets: {', '.join(sorted(models))}")
        model = models[model]
    else:
        model = model_from_spec(model, name=f"{job_id}-model", file=file, job=job_id)

    chips = spec.get("chips")
    chips_min = chips_max = None
    if isinstance(chips, int):
        chips_min = chips_max = chips
    elif chips is not None:
        chips_min, chips_max = chips.get("min", 1), chips.get("max")

    chip_types = spec.get("chip_types")
    deadline_h = spec.get("deadline_h")
    common = dict(id=job_id, kind=spec["kind"], model=model, precision=spec.get("precision", "bf16"),
                  chips_min=chips_min, chips_max=chips_max,
                  chip_types=tuple(chip_types) if chip_types is not None else None, stack=spec.get("stack", "any"),
                  priority=spec.get("priority", 1), arrival_h=float(spec.get("arrival_h", 0.0)),
                  deadline_h=float(deadline_h) if deadline_h is not None else None,
                  parallelism=spec.get("parallelism") or {})
    if spec["kind"] == "train":
        seq_len = spec.get("seq_len", 4096)
        if "batch_seqs" in spec and "batch_tokens" in spec:
            raise fail("batch_tokens", "give batch_tokens or batch_seqs, not both")
        if "batch_seqs" in spec:
            batch_seqs = float(spec["batch_seqs"])
        else:
            batch_tokens = spec.get("batch_tokens", 4 * 1024 * 1024)
            if batch_tokens < seq_len:
                raise fail("batch_tokens", f"{batch_tokens:g} is less than one sequence ({seq_len} tokens)")
            batch_seqs = float(math.floor(batch_tokens / seq_len))
        return Job(**common, tokens=float(spec["tokens"]), seq_len=seq_len, batch_seqs=batch_seqs)

    slo = spec.get("slo") or {}
    ttft, tpot = slo.get("ttft_ms"), slo.get("tpot_ms")
    return Job(**common, rate_rps=float(spec.get("rate_rps", 0.0)), prompt_tokens=spec["prompt_tokens"],
               output_tokens=spec["output_tokens"],
               slo_ttft_ms=float(ttft) if ttft is not None else None,
               slo_tpot_ms=float(tpot) if tpot is not None else None,
               duration_h=float(spec.get("duration_h", DEFAULT_SERVICE_HOURS)), batch=spec.get("batch", 0),
               offline=spec.get("offline", False), disaggregation=spec.get("disaggregation", "allow"))


def load_jobs(path: str | Path, *, chip_names: Iterable[str] | None = None) -> list[Job]:
    return parse_jobs(read_json(path), file=str(path), chip_names=chip_names)
