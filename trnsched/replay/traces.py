"""Job traces for `trnsched simulate`: a trnsched jobs file with `arrival_h`, or
the Alibaba GPU-cluster trace (openb, 2023; ../shared/traces/alibaba-openb-2023).

How an openb pod becomes a trnsched job (all of it here, in OPENB):

- Which pods: those that asked for GPUs (num_gpu >= 1) and were scheduled.
  CPU-only pods (num_gpu 0) use no accelerator, and pods never scheduled
  (pod_phase Pending, no scheduled_time) have no duration; both are counted and
  left out.
- Arrival: creation_time, in hours from the start of the trace.
- Size: chips = num_gpu * chips_per_gpu (the scale factor, 1 by default).  A
  GPU-sharing pod (gpu_milli < 1000) still takes one whole chip: trnsched
  places whole chips, so sharing pods weigh more here than in the trace.
- Kind, by QoS class: LS (latency sensitive) and Guaranteed pods are inference
  services, BE (best effort) and Burstable pods are training jobs.
- Priority, by QoS class: Guaranteed 4, LS 3, Burstable 2, BE 1.
- Duration: deletion_time - scheduled_time (the run, without the trace's own
  queueing); at least one second.  Pods still running when the trace ends carry
  its end as deletion time, so their runs are cut there.
- Work: the trace has no models, so each pod gets a stated stand-in.  A
  training pod trains a 1.3B-parameter dense model (24 layers, hidden 2048,
  bf16, 2,048-token sequences, 8 sequences per chip per step) for as many
  tokens as the core predicts n H100s process in the pod's duration: the trace's
  run time is read as H100 time (its GPUs -- T4, P100, V100, G1-G3 -- are older,
  so this understates the work), and on another chip type the core's prediction
  sets the time.  An inference pod serves Llama 3 8B (512-token prompts,
  128-token answers) at 1 request/s per GPU of its share, on exactly its chips,
  for exactly its duration, whatever the chip type.
- GPU types: a non-empty gpu_spec (a list of the trace's GPU models, all
  Nvidia) becomes stack "cuda"; empty (every pod of this file) allows any chip.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace

import numpy as np

from trnsched.inputs.catalog import chip_catalog
from trnsched.inputs.errors import InputError
from trnsched.inputs.io import read_json
from trnsched.inputs.jobs import Job, parse_jobs
from trnsched.perf.scoring import score_arrays
from trnsched.perf.tables import chip_table, job_table

OPENB = {
    "columns": ("name", "num_gpu", "gpu_milli", "gpu_spec", "qos", "creation_time", "deletion_time",
                "scheduled_time"),
    "kind": {"LS": "infer", "Guaranteed": "infer", "BE": "train", "Burstable": "train"},
    "priority": {"Guaranteed": 4, "LS": 3, "Burstable": 2, "BE": 1},
    "reference_chip": "h100",
    "train_model": {"params_b": 1.3, "layers": 24, "hidden": 2048},
    "train_seq_len": 2048,
    "train_seqs_per_chip": 8,
    "infer_model": "llama3-8b",
    "infer_prompt_tokens": 512,
    "infer_output_tokens": 128,
    "infer_rps_per_gpu": 1.0,
    "min_duration_s": 1.0,
}


@dataclass
class Trace:
    jobs: list[Job]
    source: str
    skipped: dict[str, int] = field(default_factory=dict)   # why -> pods left out

    def describe(self) -> str:
        left = ", ".join(f"{n} {why}" for why, n in self.skipped.items() if n)
        return f"{len(self.jobs)} jobs from {self.source}" + (f" ({left} left out)" if left else "")


def load_trace(path: str, *, chips_per_gpu: int = 1, chip_names=None) -> Trace:
    """A jobs file (.json) or an openb pod list (.csv)."""
    if path.endswith(".csv"):
        return openb_trace(path, chips_per_gpu=chips_per_gpu)
    if chips_per_gpu != 1:
        raise InputError("applies to openb .csv traces only", file=path, field="--chips-per-gpu")
    return Trace(parse_jobs(read_json(path), file=path, chip_names=chip_names), path)


def openb_trace(path: str, *, chips_per_gpu: int = 1) -> Trace:
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in OPENB["columns"] if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"not an openb pod list: no {missing[0]!r} column", file=path, field=missing[0])
            rows = list(reader)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=path) from None
    skipped = {"CPU-only pods": 0, "pods never scheduled": 0}
    raw_jobs: list[dict] = []
    durations_s: list[float] = []
    for line, row in enumerate(rows, start=2):
        where = row.get("name") or f"line {line}"
        try:
            gpus = int(row["num_gpu"])
            milli = int(row["gpu_milli"] or 0)
            created = float(row["creation_time"])
            deleted = float(row["deletion_time"])
            scheduled = float(row["scheduled_time"]) if row["scheduled_time"] else None
        except ValueError as exc:
            raise InputError(f"not a number: {exc}", file=path, job=where) from None
        if gpus == 0:
            skipped["CPU-only pods"] += 1
            continue
        if scheduled is None:
            skipped["pods never scheduled"] += 1
            continue
        qos = row["qos"]
        if qos not in OPENB["kind"]:
            raise InputError(f"unknown QoS class {qos!r}", file=path, job=where, field="qos")
        chips = gpus * chips_per_gpu
        job = {"id": where, "kind": OPENB["kind"][qos], "priority": OPENB["priority"][qos],
               "arrival_h": created / 3600.0, "chips": chips}
        if row["gpu_spec"]:
            job["stack"] = "cuda"
        duration_s = max(OPENB["min_duration_s"], deleted - scheduled)
        if job["kind"] == "train":
            job.update(model=dict(OPENB["train_model"]), seq_len=OPENB["train_seq_len"],
                       batch_seqs=OPENB["train_seqs_per_chip"] * chips, tokens=1.0)
        else:
            share = milli / 1000.0 if gpus == 1 and 0 < milli < 1000 else gpus
            job.update(model=OPENB["infer_model"], prompt_tokens=OPENB["infer_prompt_tokens"],
                       output_tokens=OPENB["infer_output_tokens"],
                       rate_rps=OPENB["infer_rps_per_gpu"] * share, duration_h=duration_s / 3600.0)
        raw_jobs.append(job)
        durations_s.append(duration_s)
    jobs = parse_jobs(raw_jobs, file=path)
    return Trace(_size_training(jobs, durations_s), path, skipped)


def _size_training(jobs: list[Job], durations_s: list[float]) -> list[Job]:
    """Training tokens = the pod's duration times the core's tokens/s for its chips
    of the reference chip type, so that its run on that type lasts as in the trace."""
    train = [i for i, j in enumerate(jobs) if j.is_train]
    if not train:
        return jobs
    ref = chip_catalog()[OPENB["reference_chip"]]
    subset = [jobs[i] for i in train]
    counts = np.array([j.chips_min for j in subset], dtype=np.int64)
    out = score_arrays(job_table(subset), chip_table([ref]), np.arange(len(subset)), np.zeros(len(subset), np.int64),
                       counts, np.maximum(1, -(-counts // ref.domain_size)))
    rate = out["tokens_per_s"]
    sized = list(jobs)
    for k, i in enumerate(train):
        if not math.isfinite(rate[k]) or rate[k] <= 0:
            raise InputError(f"the stand-in model does not run on {counts[k]} {ref.name}", job=jobs[i].id)
        sized[i] = replace(jobs[i], tokens=float(rate[k] * durations_s[i]))
    return sized
