"""Rack use, recorded once.

- `Room`: free chips per (rack, chip type) and power headroom per rack, and how a
  candidate's chips are taken from it (`allocate` answers `Fit` or `Shortfall`).
- `RackLedger`: the room of a fleet as jobs are committed and released, and which
  job holds what.  Every policy, the packing after CP-SAT, the replay and the
  explanations keep rack use in one.
- `Timeline`: the ledger over time, for scheduling: the jobs' spans per rack;
  the room of a window is the free room less the peak the spans use inside it.

A split candidate (splits.py) takes chips through its two pools: its racks
are a `Split`, each pool's racks and, as a plain mapping, the chips both take
per rack; everything here that takes or gives back chips goes pool by pool
(`unit_racks`).

Power: a rack cap is IT power at the rack (PUE excluded).  A rack's baseline is
its busy chips at TDP, its free chips idle, and every chip's host share; a
placed chip adds what its candidate draws above that (`watts_per_chip`).
"""
from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

from trnsched.candidates import Candidate
from trnsched.inputs.fleet import Fleet

EPS = 1e-9      # hours: two instants closer than this are one


def watts_per_chip(c: Candidate, fleet: Fleet) -> int:
    """IT watts one chip of this candidate adds over its idle draw (rack caps are
    IT power: PUE excluded; the idle draw and the host share are already in the
    rack's baseline)."""
    chip = fleet.chip_types[c.chip_type]
    per_chip_kw = c.values["power_kw"] / c.chips / fleet.pue
    return max(0, round(per_chip_kw * 1000.0 - chip.idle_w - chip.host_w))


def draw_watts(c: Candidate, fleet: Fleet) -> int:
    """IT watts the whole candidate adds over idle (both pools of a split)."""
    return sum(watts_per_chip(u, fleet) * u.chips for u in c.units)


class Split(dict):
    """A split candidate's racks: rack -> chips of both pools together (all that
    code counting chips per rack needs), and `parts`, each pool's racks."""

    def __init__(self, parts: Iterable[dict[int, int]]) -> None:
        self.parts = tuple(dict(p) for p in parts)
        merged: dict[int, int] = {}
        for part in self.parts:
            for r, n in part.items():
                merged[r] = merged.get(r, 0) + n
        super().__init__(merged)

    def __reduce__(self):
        return Split, (self.parts,)


def unit_racks(c: Candidate, racks: dict[int, int]) -> list[tuple[Candidate, dict[int, int]]]:
    """(what takes chips, its racks): the candidate, or each pool of a split."""
    if not c.pools:
        return [(c, racks)]
    if not isinstance(racks, Split):
        raise TypeError(f"job {c.job}: a split candidate's racks must be a Split")
    return list(zip(c.pools, racks.parts))


def headroom_watts(fleet: Fleet, racks: Iterable[int] | None = None) -> list[int | None]:
    """Per rack (default: every rack), the IT watts its cap leaves above its
    baseline (None: no cap)."""
    chosen = fleet.racks if racks is None else [fleet.racks[i] for i in racks]
    return [None if r.power_cap_kw is None else int(r.power_cap_kw * 1000.0 - fleet.baseline_kw(r) * 1000.0)
            for r in chosen]


@dataclass(frozen=True)
class Fit:
    racks: dict[int, int]          # rack index -> chips


class Shortfall:
    """Why a candidate does not fit: `short`, the chips it lacks in the best place
    it could go (its roomiest rack, or its roomiest racks of one pod), by chip count
    alone, so `short <= 0` means the chips are there and the power cap is what
    blocks; and `holders`, the jobs holding chips of its type on its racks.

    It describes the ledger as it was: `holders` (worked out when first read, since
    most shortfalls are never explained) refuses to answer once the ledger changed."""

    def __init__(self, c: Candidate, short: int, ledger: "RackLedger | None" = None) -> None:
        self.candidate, self.short = c, short
        self._ledger = ledger
        self._version = None if ledger is None else ledger.version

    @property
    def reason(self) -> str:
        return "chips" if self.short > 0 else "power"

    @cached_property
    def holders(self) -> list[int]:
        """Jobs (in the order they were committed) holding chips of the candidate's
        type on racks it could use; none when the room has no ledger (a window)."""
        if self._ledger is None:
            return []
        if self._ledger.version != self._version:
            raise RuntimeError("the ledger changed since this shortfall: allocate again")
        return self._ledger.holders(self.candidate)


class FreeIndex:
    """The racks holding one chip type, in fleet order, with a max-tree over their
    free chips: the first rack from a position on with at least n free is found in
    O(log racks) instead of a scan (a full fleet of 10,000 racks made greedy scan
    thousands of racks per candidate)."""

    __slots__ = ("racks", "position", "size", "tree")

    def __init__(self, racks: list[int], free: list[int]) -> None:
        self.racks = racks
        self.position = {r: i for i, r in enumerate(racks)}
        self.size = 1
        while self.size < max(1, len(racks)):
            self.size *= 2
        self.tree = [0] * (2 * self.size)
        self.tree[self.size:self.size + len(free)] = free
        for i in range(self.size - 1, 0, -1):
            self.tree[i] = max(self.tree[2 * i], self.tree[2 * i + 1])

    def set(self, r: int, free: int) -> None:
        i = self.position[r] + self.size
        self.tree[i] = free
        i //= 2
        while i:
            self.tree[i] = max(self.tree[2 * i], self.tree[2 * i + 1])
            i //= 2

    def first(self, need: int, start: int = 0) -> int | None:
        """The first position >= start whose rack has at least `need` free."""
        tree, size = self.tree, self.size
        need = max(need, 1)         # the padding past the last rack holds 0
        if start >= len(self.racks) or tree[1] < need:
            return None
        i = start + size
        if tree[i] >= need:
            return start
        # Up while the rest of this subtree lacks room, then down the leftmost branch.
        while True:
            if i % 2 == 0 and tree[i + 1] >= need:
                i += 1
                break
            i //= 2
            if i <= 1:
                return None
        while i < size:
            i = 2 * i if tree[2 * i] >= need else 2 * i + 1
        return i - size


class Room:
    """Free chips per (rack, chip type) and power headroom (IT watts, None where
    uncapped) per rack.  A Room is a value: windows of a Timeline are Rooms; only
    a RackLedger changes its own, through `take`.  A long-lived room (`indexed`,
    a ledger's) builds the indexes that make `fit` fast on first use; a window,
    asked once or twice, scans."""

    __slots__ = ("fleet", "free", "watts", "indexed", "_index", "_pod_free", "_pod_most")

    def __init__(self, fleet: Fleet, free: list[dict[str, int]], watts: list[int | None],
                 indexed: bool = False) -> None:
        self.fleet, self.free, self.watts, self.indexed = fleet, free, watts, indexed
        self._index: dict[str, FreeIndex] = {}
        self._pod_free: dict[str, dict[str, int]] = {}     # chip type -> pod -> free chips
        self._pod_most: dict[str, int] = {}                 # chip type -> the most any pod has free

    @classmethod
    def of(cls, fleet: Fleet, indexed: bool = False) -> "Room":
        return cls(fleet, [{t: r.free(t) for t in r.chips} for r in fleet.racks], headroom_watts(fleet), indexed)

    def copy(self) -> "Room":
        return Room(self.fleet, [dict(f) for f in self.free], list(self.watts), self.indexed)

    def fits(self, r: int, c: Candidate, chips: int, watts: int) -> bool:
        """Whether rack r has `chips` chips of the candidate's type and the watts for them."""
        if self.free[r].get(c.chip_type, 0) < chips:
            return False
        return self.watts[r] is None or self.watts[r] >= watts * chips

    def holds(self, c: Candidate, racks: dict[int, int]) -> bool:
        """Whether these racks have the chips and watts for the candidate (both
        pools of a split together, where they share a rack)."""
        chips: dict[tuple[int, str], int] = {}
        watts: dict[int, int] = {}
        for u, part in unit_racks(c, racks):
            w = watts_per_chip(u, self.fleet)
            for r, n in part.items():
                chips[r, u.chip_type] = chips.get((r, u.chip_type), 0) + n
                watts[r] = watts.get(r, 0) + w * n
        return (all(self.free[r].get(t, 0) >= n for (r, t), n in chips.items())
                and all(self.watts[r] is None or self.watts[r] >= w for r, w in watts.items()))

    def fill(self, racks: Iterable[int], chip_type: str, need: int, most: int, watts: int,
             whole: bool = False) -> tuple[dict[int, int], int]:
        """Take `need` chips from at most `most` of these racks, roomiest first, as
        many from each as its chips and power headroom allow (`whole`: all from one
        rack).  Returns what was taken and the chips still missing."""
        taken: dict[int, int] = {}
        for r in sorted(racks, key=lambda r: -self.free[r].get(chip_type, 0)):
            if need == 0 or len(taken) == most:
                break
            room = self.free[r].get(chip_type, 0)
            if self.watts[r] is not None and watts > 0:
                room = min(room, self.watts[r] // watts)
            if whole and room < need:
                continue
            take = min(room, need)
            if take > 0:
                taken[r] = take
                need -= take
        return taken, need

    def take(self, r: int, chip_type: str, chips: int, watts: int) -> None:
        """Take (or, negative, give back) chips and watts on rack r."""
        self.free[r][chip_type] -= chips
        if self.watts[r] is not None:
            self.watts[r] -= watts
        if chip_type in self._index:
            self._index[chip_type].set(r, self.free[r][chip_type])
        if chip_type in self._pod_free:
            self._pod_free[chip_type][self.fleet.racks[r].pod] -= chips
            self._pod_most.pop(chip_type, None)

    def index(self, chip_type: str) -> FreeIndex:
        if chip_type not in self._index:
            racks = [r for r, f in enumerate(self.free) if chip_type in f]
            self._index[chip_type] = FreeIndex(racks, [self.free[r][chip_type] for r in racks])
        return self._index[chip_type]

    def pods_free(self, chip_type: str) -> dict[str, int]:
        """Free chips of this type per pod (kept up to date by `take`)."""
        if chip_type not in self._pod_free:
            sums: dict[str, int] = {}
            for r, f in enumerate(self.free):
                if chip_type in f:
                    name = self.fleet.racks[r].pod
                    sums[name] = sums.get(name, 0) + f[chip_type]
            self._pod_free[chip_type] = sums
        return self._pod_free[chip_type]

    def pod_free(self, chip_type: str, pod: str) -> int:
        return self.pods_free(chip_type).get(pod, 0)

    def most_pod_free(self, chip_type: str) -> int:
        if chip_type not in self._pod_most:
            self._pod_most[chip_type] = max(self.pods_free(chip_type).values(), default=0)
        return self._pod_most[chip_type]

    def fit(self, c: Candidate) -> dict[int, int] | None:
        """Where the candidate goes now, or None: a single-rack candidate on the
        first of its racks (fleet order) with room; a multi-rack one on the roomiest
        racks of the first of its pods that holds it."""
        if c.pools:
            return self.fit_split(c)
        watts = watts_per_chip(c, self.fleet)
        t = c.chip_type
        if not c.multi and not self.indexed:
            for r in c.racks:
                if self.fits(r, c, c.chips, watts):
                    return {r: c.chips}
            return None
        if not c.multi:
            index = self.index(t)
            at = index.first(c.chips)
            while at is not None:
                r = index.racks[at]
                # One of its racks (sorted): the fleet may have more room than when
                # the candidate was made.
                k = bisect_left(c.racks, r)
                if k < len(c.racks) and c.racks[k] == r and self.fits(r, c, c.chips, watts):
                    return {r: c.chips}
                at = index.first(c.chips, at + 1)
            return None
        if self.indexed and self.most_pod_free(t) < c.chips:
            return None         # no pod has the chips (a full fleet: most candidates end here)
        for racks in c.by_pod:
            if self.indexed and racks and self.pod_free(t, self.fleet.racks[racks[0]].pod) < c.chips:
                continue        # by chip count alone the pod cannot hold it
            taken, missing = self.fill(racks, t, c.chips, c.max_racks, watts)
            if missing == 0:
                return taken
        return None

    def fit_split(self, c: Candidate, racks_of: tuple[Iterable[int], Iterable[int]] | None = None) -> "Split | None":
        """Where a split goes now, or None: fused, the first rack (of its own, or
        of both `racks_of`) with room for both pools; else both pools in one pod,
        the larger where it fits first, then the other on what is left
        (`racks_of`: each pool's racks to choose from, roomiest first)."""
        if c.fused:
            shared = c.racks if racks_of is None else sorted(set(racks_of[0]) & set(racks_of[1]))
            for r in shared:
                both = Split(({r: c.pools[0].chips}, {r: c.pools[1].chips}))
                if self.holds(c, both):
                    return both
            return None
        big = 0 if c.pools[0].chips >= c.pools[1].chips else 1
        if racks_of is None:
            # The larger pool where it fits first, the other in that pod: one indexed
            # look-up, where most candidates of a full fleet end.
            first = self.fit(c.pools[big])
            if first is None:
                return None
            pod = self.fleet.racks[next(iter(first))].pod
            found = self._split_in(c, big, [r for r in c.pools[big].racks if self.fleet.racks[r].pod == pod],
                                   [r for r in c.pools[1 - big].racks if self.fleet.racks[r].pod == pod])
            if found is not None:
                return found
            racks_of = (c.pools[0].racks, c.pools[1].racks)
        by_pod: dict[str, tuple[list[int], list[int]]] = {}
        for k in range(2):
            for r in racks_of[k]:
                by_pod.setdefault(self.fleet.racks[r].pod, ([], []))[k].append(r)
        for lists in by_pod.values():
            if lists[0] and lists[1]:
                found = self._split_in(c, big, lists[big], lists[1 - big])
                if found is not None:
                    return found
        return None

    def _split_in(self, c: Candidate, big: int, big_racks: list[int], other_racks: list[int]) -> "Split | None":
        """Pool `big` on the roomiest of its racks that holds it, then the other pool
        beside it on the same rack if it has room (the KV cache then stays on the
        rack's fabric), else on the roomiest of its racks that holds it."""
        first, other = c.pools[big], c.pools[1 - big]
        taken, missing = self.fill(big_racks, first.chip_type, first.chips, 1, watts_per_chip(first, self.fleet),
                                   whole=True)
        if missing:
            return None
        (r, n), = taken.items()
        watts = watts_per_chip(first, self.fleet) * n
        self.take(r, first.chip_type, n, watts)
        try:
            watts_other = watts_per_chip(other, self.fleet)
            second, missing = self.fill([r] if r in other_racks else [], other.chip_type, other.chips, 1,
                                        watts_other, whole=True)
            if missing:
                second, missing = self.fill(other_racks, other.chip_type, other.chips, 1, watts_other, whole=True)
        finally:
            self.take(r, first.chip_type, -n, -watts)
        if missing:
            return None
        return Split((taken, second) if big == 0 else (second, taken))

    def allocate(self, c: Candidate, ledger: "RackLedger | None" = None) -> Fit | Shortfall:
        """`fit`, or when nothing fits, its `shortfall`."""
        found = self.fit(c)
        return Fit(found) if found is not None else self.shortfall(c, ledger)

    def shortfall(self, c: Candidate, ledger: "RackLedger | None" = None) -> Shortfall:
        """How far the candidate is from fitting by chip count: the chips it lacks in
        the best place it could go, and (from the ledger) who holds them.  The same
        for every candidate with its chip type, chips, rack count and pods."""
        if c.pools:
            return Shortfall(c, self._split_short(c), ledger)
        t = c.chip_type
        if not c.multi:
            have = max((self.free[r].get(t, 0) for r in c.racks), default=0)
        else:
            have = max((sum(sorted((self.free[r].get(t, 0) for r in racks), reverse=True)[:c.max_racks])
                        for racks in c.by_pod), default=0)
        return Shortfall(c, c.chips - have, ledger)


    def _split_short(self, c: Candidate) -> int:
        """A split's chips short where it comes closest: fused, on one of its racks
        (both pools there together); scale-out, in one of its pods (each pool on
        that pod's roomiest rack of its type)."""
        p, d = c.pools

        def lacking(r: int, u: Candidate, need: int) -> int:
            return need - self.free[r].get(u.chip_type, 0)

        if c.fused:
            if p.chip_type == d.chip_type:
                return min((lacking(r, p, p.chips + d.chips) for r in c.racks), default=c.chips)
            return min((max(lacking(r, p, p.chips), lacking(r, d, d.chips)) for r in c.racks), default=c.chips)
        most: dict[str, list[int]] = {}
        for k, u in enumerate(c.pools):
            for r in u.racks:
                have = most.setdefault(self.fleet.racks[r].pod, [0, 0])
                have[k] = max(have[k], self.free[r].get(u.chip_type, 0))
        return min((max(p.chips - have[0], d.chips - have[1]) for have in most.values()), default=c.chips)


class RackLedger:
    """The room of a fleet as jobs are committed and released, and which job holds
    what (by job index; a job holds one allocation at a time)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.room = Room.of(fleet, indexed=True)
        self.held: dict[int, tuple[Candidate, dict[int, int]]] = {}
        self.held_by_type: dict[str, dict[int, dict[int, int]]] = {}   # type -> job -> racks, in commit order
        self.drawn = [0] * len(fleet.racks)           # IT watts placed jobs add, per rack
        self.version = 0                              # counts commits and releases

    def copy(self) -> "RackLedger":
        other = RackLedger.__new__(RackLedger)
        other.fleet, other.room, other.held, other.drawn = self.fleet, self.room.copy(), dict(self.held), list(self.drawn)
        other.held_by_type = {t: dict(jobs) for t, jobs in self.held_by_type.items()}
        other.version = self.version
        return other

    def allocate(self, c: Candidate) -> Fit | Shortfall:
        return self.room.allocate(c, self)

    def fit(self, c: Candidate) -> dict[int, int] | None:
        return self.room.fit(c)

    def commit(self, c: Candidate, racks: dict[int, int]) -> None:
        if c.job in self.held:
            raise ValueError(f"job {c.job} already holds chips: release it first")
        self._take(c, racks, 1)
        self.held[c.job] = (c, racks)
        for u, part in unit_racks(c, racks):
            mine = self.held_by_type.setdefault(u.chip_type, {})
            mine[c.job] = {**mine.get(c.job, {}), **part} if c.job in mine else part

    def release(self, job: int) -> None:
        c, racks = self.held.pop(job)
        for u in c.units:
            self.held_by_type[u.chip_type].pop(job, None)
        self._take(c, racks, -1)

    def _take(self, c: Candidate, racks: dict[int, int], sign: int) -> None:
        self.version += 1
        for u, part in unit_racks(c, racks):
            watts = watts_per_chip(u, self.fleet)
            for r, n in part.items():
                self.room.take(r, u.chip_type, sign * n, sign * watts * n)
                self.drawn[r] += sign * watts * n

    def holders(self, c: Candidate) -> list[int]:
        """Jobs holding chips of the candidate's type (a split: either pool's) on
        racks it could use."""
        found: dict[int, None] = {}
        for u in c.units:
            mine = u.racks     # sorted

            def on_mine(r: int) -> bool:
                k = bisect_left(mine, r)
                return k < len(mine) and mine[k] == r

            found.update((j, None) for j, racks in self.held_by_type.get(u.chip_type, {}).items()
                         if any(map(on_mine, racks)))
        return list(found)

    def placed(self, r: int, chip_type: str) -> int:
        """Chips of this type committed on rack r."""
        return self.fleet.racks[r].free(chip_type) - self.room.free[r].get(chip_type, 0)

    def as_fleet(self) -> Fleet:
        """The fleet as this ledger leaves it: committed chips busy, each rack's
        power headroom exact (Fleet.with_busy)."""
        if not self.held:
            return self.fleet
        busy: dict[int, dict[str, int]] = {}
        watts: dict[int, float] = {}
        for c, racks in self.held.values():
            for u, part in unit_racks(c, racks):
                per_chip = watts_per_chip(u, self.fleet)
                for r, n in part.items():
                    chips = busy.setdefault(r, {})
                    chips[u.chip_type] = chips.get(u.chip_type, 0) + n
                    watts[r] = watts.get(r, 0.0) + per_chip * n
        return self.fleet.with_busy(busy, watts)


class Timeline:
    """Rack use over time: per rack, the (start, end, chip type, chips, watts) spans
    of the jobs placed on it, over the room the fleet leaves free.  The room of a
    window is that free room less the peak the spans use anywhere inside it, so
    whatever fits a window's room fits at every instant of it."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.base = Room.of(fleet)          # never changed: spans carry the use
        self.spans: list[list[tuple[float, float, str, int, int]]] = [[] for _ in fleet.racks]

    @classmethod
    def of(cls, fleet: Fleet, placed: Iterable[tuple[Candidate, dict[int, int], float]]) -> "Timeline":
        line = cls(fleet)
        for c, racks, start in placed:
            line.commit(c, racks, start)
        return line

    def copy(self) -> "Timeline":
        other = Timeline.__new__(Timeline)
        other.fleet, other.base, other.spans = self.fleet, self.base, [list(s) for s in self.spans]
        return other

    def room(self, t0: float, t1: float, racks: Iterable[int] | None = None) -> Room:
        """The room on `racks` (default: all) over [t0, t1)."""
        room = Room(self.fleet, list(self.base.free), list(self.base.watts))
        for r in range(len(self.spans)) if racks is None else racks:
            if not self.spans[r]:
                continue
            peak_chips, peak_watts = self._peak(r, t0, t1)
            room.free[r] = {t: n - peak_chips.get(t, 0) for t, n in room.free[r].items()}
            if room.watts[r] is not None:
                room.watts[r] -= peak_watts
        return room

    def _peak(self, r: int, t0: float, t1: float) -> tuple[dict[str, int], int]:
        """The most chips of each type, and watts, rack r's spans use at any one
        instant of [t0, t1); use only rises where a span starts, so those starts
        (and t0) are the instants to look at."""
        live = [s for s in self.spans[r] if s[0] < t1 - EPS and s[1] > t0 + EPS]
        peak_chips: dict[str, int] = {}
        peak_watts = 0
        for p in [t0] + [s[0] for s in live if s[0] > t0]:
            chips: dict[str, int] = {}
            watts = 0
            for s in live:
                if s[0] <= p + EPS and s[1] > p + EPS:
                    chips[s[2]] = chips.get(s[2], 0) + s[3]
                    watts += s[4]
            for t, n in chips.items():
                peak_chips[t] = max(peak_chips.get(t, 0), n)
            peak_watts = max(peak_watts, watts)
        return peak_chips, peak_watts

    def _starts(self, ready: float, last: float, racks: Iterable[int]) -> list[float]:
        """Room on these racks only grows when one of their spans ends, so the
        starts worth trying in [ready, last] are `ready` and those ends."""
        return [ready] + sorted({s[1] for r in racks for s in self.spans[r] if ready < s[1] <= last + EPS})

    def earliest(self, c: Candidate, ready: float, last: float) -> tuple[float, dict[int, int]] | None:
        """The earliest start in [ready, last] at which the candidate fits for its
        whole duration, and its racks."""
        if last < ready - EPS:
            return None
        for t in self._starts(ready, last, c.racks):
            fit = self.room(t, t + c.duration_h, c.racks).allocate(c)
            if isinstance(fit, Fit):
                return t, fit.racks
        return None

    def earliest_on(self, c: Candidate, racks: dict[int, int], ready: float, last: float) -> float | None:
        """The earliest start in [ready, last] at which these racks hold the candidate."""
        if last < ready - EPS:
            return None
        for t in self._starts(ready, last, racks):
            if self.room(t, t + c.duration_h, racks).holds(c, racks):
                return t
        return None

    def commit(self, c: Candidate, racks: dict[int, int], start: float) -> None:
        end = start + c.duration_h
        for u, part in unit_racks(c, racks):
            watts = watts_per_chip(u, self.fleet)
            for r, n in part.items():
                self.spans[r].append((start, end, u.chip_type, n, watts * n))

    def peak(self) -> list[dict[str, int]]:
        """Per rack, the most chips of each type placed at any one instant."""
        return [self._peak(r, -math.inf, math.inf)[0] if spans else {} for r, spans in enumerate(self.spans)]
