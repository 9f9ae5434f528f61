# The compiled scoring core: the formulas of trnsched/perf/reference/ over
# whole arrays of candidates, one nogil loop, no Python objects inside.  This
# file holds the entry point and the search over layouts (reference/__init__.py);
# the formulas are included from _common.pxi, _training.pxi and _serving.pxi
# (reference/common.py, training.py, serving.py).  Keep the twins in step;
# tests/test_core.py compares them on random and edge-case inputs.  The column
# layout, reason codes and the Layout struct are declared in _core.pxd;
# directives are set in setup.py (one place each).
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from libc.math cimport INFINITY, ceil, exp, fabs, floor, fmod, log, pow

import numpy as np

cimport numpy as cnp

from trnsched.perf import constants

cnp.import_array()

# The modelling constants, as C doubles read once from constants.py.
cdef double ACT_BYTES_FULL = constants.ACT_BYTES_FULL
cdef double ACT_BYTES_RECOMPUTE = constants.ACT_BYTES_RECOMPUTE
cdef double LOGIT_BYTES = constants.LOGIT_BYTES
cdef double RECOMPUTE_FLOPS = constants.RECOMPUTE_FLOPS
cdef double STATE_BYTES = constants.STATE_BYTES
cdef double OPTIMIZER_BYTES = constants.OPTIMIZER_BYTES
cdef double DP_OVERLAP = constants.DP_OVERLAP
cdef double VIRTUAL_MAX = constants.VIRTUAL_MAX
cdef double CHUNK_LAYERS_MIN = constants.CHUNK_LAYERS_MIN
cdef double LATENCY_SLACK = constants.LATENCY_SLACK
cdef double SERVICE_TPOT_S = constants.SERVICE_TPOT_S
cdef int LOAD_STEPS = constants.LOAD_STEPS
cdef double LOAD_SETTLED = constants.LOAD_SETTLED
cdef double MEM_BOUND_POWER = constants.MEM_BOUND_POWER
cdef double PREFILL_UTIL = constants.PREFILL_UTIL
cdef double DECODE_UTIL = constants.DECODE_UTIL
cdef double LINK_UTIL = constants.LINK_UTIL
cdef int POOL_FIXED_POINT = constants.POOL_FIXED_POINT

# The numpy dtype of a Layout (fields, offsets and padding as the C compiler laid
# them out): score() returns one record per candidate.
cdef Layout _probe
LAYOUT_DTYPE = np.asarray(<Layout[:1]> &_probe).dtype
cdef Pools _pools_probe
POOLS_DTYPE = np.asarray(<Pools[:1]> &_pools_probe).dtype


include "_common.pxi"
include "_training.pxi"
include "_serving.pxi"
include "_pools.pxi"


ctypedef struct ReplicaCache:
    # What depends on the job, the chip type and tp but never on the chip count:
    # candidates arrive grouped by job and chip type, so consecutive ones reuse it.
    # Replicas also depend on whether their pipeline crosses domains (checked on use).
    Py_ssize_t job, chip
    bint ready[N_TP_OPTIONS]
    Replica rep[N_TP_OPTIONS]
    bint train_ready[N_TP_OPTIONS][2]
    TrainSetup train[N_TP_OPTIONS][2]
    Layout serving[N_TP_OPTIONS]          # inference: each tp's layout for the candidate at hand,
    const Replica* serving_rep[N_TP_OPTIONS]   # ... and its replica


cdef void score_one(const double* job, const double* chip, double chips, double domains,
                    Py_ssize_t job_id, Py_ssize_t chip_id, ReplicaCache* cache, Layout* slots) noexcept nogil:
    """Leaves the best layout in slots[0]; slots[1] and slots[2] are scratch.  Pointers
    swap instead of copying the struct."""
    cdef Layout* best = &slots[0]
    cdef Layout* cand = &slots[1]
    cdef Layout* spare = &slots[2]
    cdef Layout* tmp
    cdef double per_domain, tp, floor_bytes, hint_tp = job[J_HINT_TP]
    cdef int k, serving = 0
    layout_init(best)
    if chips >= 1.0 and domains >= 1.0:
        floor_bytes = memory_floor(job) / chips
        if floor_bytes > chip[C_HBM] * (1.0 - chip[C_MEM_RESERVE]):
            best.reason = MEMORY
            best.mem_per_chip = floor_bytes
        else:
            per_domain = fmin(chip[C_DOMAIN], ceil(chips / domains))
            if cache.job != job_id or cache.chip != chip_id:
                cache.job = job_id
                cache.chip = chip_id
                for k in range(N_TP_OPTIONS):
                    cache.ready[k] = False
                    cache.train_ready[k][0] = False
                    cache.train_ready[k][1] = False
            tp = 1.0
            for k in range(N_TP_OPTIONS):
                if tp > per_domain or tp > chips or tp > job[J_HEADS]:
                    break
                if hint_tp <= 0 or tp == hint_tp:
                    if job[J_KIND] == 0:
                        if not cache.train_ready[k][0]:
                            train_setup(job, chip, tp, 0, &cache.train[k][0])
                            cache.train_ready[k][0] = True
                        if ranked(best.reason) and train_floor(job, &cache.train[k][0], chips) > -best.score * (1.0 + 1e-12):
                            # No layout at this tp or above can be faster (and a slower one
                            # misses a deadline this one misses): skipping them leaves the
                            # reference's answer unchanged.
                            break
                        train_layout(job, chip, chips, per_domain, &cache.train[k][0], cand)
                        if cand.reason == MEMORY:
                            if not cache.train_ready[k][1]:
                                train_setup(job, chip, tp, 1, &cache.train[k][1])
                                cache.train_ready[k][1] = True
                            train_layout(job, chip, chips, per_domain, &cache.train[k][1], spare)
                            if beats(spare, cand):
                                tmp = cand; cand = spare; spare = tmp
                        if beats(cand, best):
                            tmp = best; best = cand; cand = tmp
                    else:
                        if not cache.ready[k] or cache.rep[k].crosses != (tp * cache.rep[k].pp > per_domain):
                            replica_init(job, chip, per_domain, tp, &cache.rep[k])
                            cache.ready[k] = True
                        infer_layout(job, chip, chips, &cache.rep[k], &cache.serving[serving])
                        cache.serving_rep[serving] = &cache.rep[k]
                        serving += 1
                tp *= 2.0
            if job[J_KIND] != 0:
                choose(job, chip, chips, cache.serving, cache.serving_rep, serving, best)
    if best != &slots[0]:
        slots[0] = best[0]


def check_rows(job_table, chip_table, job_index, chip_indexes, others):
    """The tables' widths, one length for every per-candidate array, and job and
    chip indexes within the tables (the loops read rows unchecked)."""
    n = job_index.shape[0]
    if job_table.shape[1] != JOB_COLUMNS or chip_table.shape[1] != CHIP_COLUMNS:
        raise ValueError(f"tables must have {JOB_COLUMNS} job and {CHIP_COLUMNS} chip columns")
    if any(a.shape[0] != n for a in chip_indexes + others):
        raise ValueError("candidate arrays must all have the same length")
    if n and (np.min(job_index) < 0 or np.max(job_index) >= job_table.shape[0]
              or min(np.min(a) for a in chip_indexes) < 0
              or max(np.max(a) for a in chip_indexes) >= chip_table.shape[0]):
        raise IndexError("job_index or chip_index out of range")


def score(const double[:, ::1] job_table not None, const double[:, ::1] chip_table not None,
          const cnp.intp_t[::1] job_index not None, const cnp.intp_t[::1] chip_index not None,
          const cnp.int64_t[::1] chips not None, const cnp.int64_t[::1] domains not None,
          int threads=1, out=None):
    """Score every candidate; returns (records, feasible): one Layout record per
    candidate, as a numpy array of LAYOUT_DTYPE, and reason == OK as uint8.

    `out`, the (records, feasible) of an earlier call with at least as many
    candidates, is reused instead of allocating (fresh memory costs page faults
    that rival the scoring itself); views of its first n rows are returned."""
    cdef Py_ssize_t n = job_index.shape[0], i
    check_rows(job_table, chip_table, job_index, (chip_index,), (chips, domains))
    if threads < 1:
        raise ValueError("threads must be >= 1")

    if out is not None and out[0].shape[0] >= n:
        records, feasible_a = out[0][:n], out[1][:n]
    else:
        records, feasible_a = np.empty(n, dtype=LAYOUT_DTYPE), np.empty(n, dtype=np.uint8)
    cdef Layout[::1] layouts = records
    cdef unsigned char[::1] feasible = feasible_a
    cdef Layout* best
    cdef ReplicaCache* cache

    with nogil, parallel(num_threads=threads):
        cache = <ReplicaCache*> malloc(sizeof(ReplicaCache) + 3 * sizeof(Layout))
        if cache == NULL:
            with gil:
                raise MemoryError()
        cache.job = -1
        for i in prange(n, schedule="static"):
            best = <Layout*> (cache + 1)
            score_one(&job_table[job_index[i], 0], &chip_table[chip_index[i], 0],
                      <double>chips[i], <double>domains[i], job_index[i], chip_index[i], cache, best)
            layouts[i] = best[0]
            feasible[i] = best.reason == OK
        free(cache)
    return records, feasible_a


def score_pools(const double[:, ::1] job_table not None, const double[:, ::1] chip_table not None,
                const cnp.intp_t[::1] job_index not None, const cnp.intp_t[::1] prefill_index not None,
                const cnp.intp_t[::1] decode_index not None, const cnp.int64_t[::1] link not None):
    """Size a prefill and a decode pool per (job, prefill chip type, decode chip
    type, link); returns one Pools record per row as a numpy array of POOLS_DTYPE."""
    cdef Py_ssize_t n = job_index.shape[0], i
    check_rows(job_table, chip_table, job_index, (prefill_index, decode_index), (link,))
    records = np.empty(n, dtype=POOLS_DTYPE)
    cdef Pools[::1] out = records
    with nogil:
        for i in range(n):
            pools_one(&job_table[job_index[i], 0], &chip_table[prefill_index[i], 0],
                      &chip_table[decode_index[i], 0], <int>link[i], &out[i])
    return records
