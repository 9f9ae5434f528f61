"""The performance model in plain Python: the readable specification.

The compiled core computes exactly these formulas over whole arrays of
candidates, file for file: this module is `_core.pyx`'s `score_one` and
`score`, common.py its `_common.pxi`, training.py `_training.pxi` and
serving.py `_serving.pxi`.  `tests/test_core.py` holds the two to a relative
tolerance of 1e-9.  The physics and the sources behind each term are written
up in docs/MODEL.md.

One candidate = one job on `chips` chips of one type spread over `domains`
scale-up domains.  For each tensor-parallel degree the model derives the
rest of the layout (pipeline depth from memory, data/expert parallel from
what is left), evaluates it, and keeps the layout that got furthest through
the checks (memory, batch, SLOs, rate, deadline) and, among those, scores best.
"""
from __future__ import annotations

import math

from trnsched.perf.columns import C_DOMAIN, C_HBM, C_MEM_RESERVE, J_EXPERTS, J_HEADS, J_HINT_TP, J_KIND, MEMORY, OK, OUTPUTS, TP_OPTIONS
from trnsched.perf.reference.common import Layout, memory_floor
from trnsched.perf.reference.serving import choose, infer_layout, replica
from trnsched.perf.reference.training import train_layout, train_setup


def score_one(job, chip, chips: int, domains: int) -> Layout:
    """Best layout for one job (a job-table row) on one chip-table row.

    Tensor-parallel degrees are tried in increasing order, every one of them: a
    wider tp can free the memory for a shallower pipeline (a smaller bubble) or a
    smaller expert group, so a slower degree may be followed by a faster one.
    Training falls back to activation recompute only when the plain layout does
    not fit.  Inference evaluates every degree and chooses among them as
    serving.choose() says.  (The core skips the degrees that a lower bound shows
    cannot win.)
    """
    best = Layout()
    if chips < 1 or domains < 1:
        return best
    # Hopeless at any layout: even with every byte of state spread over all chips.
    floor_bytes = memory_floor(job) / chips
    if floor_bytes > chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE]):
        best.reason = MEMORY
        best.mem_per_chip = floor_bytes
        return best
    per_domain = min(chip[C_DOMAIN], math.ceil(chips / domains))
    hint_tp = job[J_HINT_TP]
    serving: list[Layout] = []        # inference: every tp's layout and replica, chosen among at the end
    reps: list = []
    tp = 1.0
    for _ in TP_OPTIONS:
        if tp > per_domain or tp > chips or tp > job[J_HEADS]:
            break
        if hint_tp <= 0 or tp == hint_tp:
            if job[J_KIND] == 0:
                cand = train_layout(job, chip, chips, per_domain, train_setup(job, chip, tp, 0))
                if cand.reason == MEMORY:
                    again = train_layout(job, chip, chips, per_domain, train_setup(job, chip, tp, 1))
                    if again.beats(cand):
                        cand = again
                if cand.beats(best):
                    best = cand
            else:
                reps.append(replica(job, chip, per_domain, tp))
                serving.append(infer_layout(job, chip, chips, reps[-1]))
        tp *= 2.0
    if job[J_KIND] != 0:
        best = choose(job, chip, chips, serving, reps)
    best.feasible = 1 if best.reason == OK else 0
    return best


def score(job_table, chip_table, job_index, chip_index, chips, domains) -> dict:
    """Score every candidate; returns {output name: list} in OUTPUTS order."""
    results = {name: [] for name in OUTPUTS}
    for i in range(len(job_index)):
        best = score_one(job_table[job_index[i]], chip_table[chip_index[i]],
                         int(chips[i]), int(domains[i]))
        for name in OUTPUTS:
            results[name].append(getattr(best, name))
    return results
