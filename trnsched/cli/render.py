"""The readable tables the commands print (their --json forms are the objects' own), drawn with rich:
colours on a terminal only, and a replay's progress bar."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping, Sequence

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from trnsched.inputs.catalog import ChipType, ModelSpec
from trnsched.inputs.fleet import Fleet
from trnsched.inputs.jobs import Job
from trnsched.result import Result
from trnsched.whatif import WhatIf

UNITS = {"energy": "kWh", "cost": "USD", "time": "job-hours", "balanced": "(relative)"}


class LiveProgress(list):
    """The solver's trace (driver._Progress appends to it), echoed as one line
    that rewrites itself on stderr: phase, incumbent, bound, gap, seconds.  The
    CLI uses it only when stderr is a terminal."""

    def __init__(self, began: float) -> None:
        super().__init__()
        self.began = began
        self.shown = False

    def append(self, entry) -> None:
        super().append(entry)
        at, phase, value, bound = entry
        if phase == 1:
            line = f"placing: priority {value:,.0f}, bound {bound:,.0f}"
        else:
            what = "objective" if phase == 2 else "neighbourhood search, objective"
            line = f"{what} {value:,.2f}"
            if bound is not None and value:
                line += f", bound {bound:,.2f}, gap {abs(value - bound) / abs(value):.2%}"
        sys.stderr.write(f"\r\x1b[K{at:7.1f} s  {line}")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def console() -> Console:
    """Where tables go: stdout as it is now (click's test runner swaps it).  On a
    terminal, its width and colours; piped, no colour codes and a width no
    table needs to fold in (a file or `less -S` has room)."""
    out = sys.stdout
    tty = out.isatty()
    return Console(file=out, width=None if tty else 240, highlight=False, soft_wrap=False, markup=False,
                   emoji=False, color_system="auto" if tty else None)     # job ids are text, never markup


def _table(*columns: str, title: str | None = None) -> Table:
    """A table: numbers right-aligned (a column whose name ends in ">")."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in columns:
        right = name.endswith(">")
        table.add_column(name.rstrip(">"), justify="right" if right else "left", no_wrap=True)
    return table


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _status(ok: bool, text: str) -> Text:
    return Text(text, style="green" if ok else "yellow")


def scores(jobs: Sequence[Job], rows: Sequence[WhatIf]) -> None:
    """`trnsched score`: per job, one row per chip type and count."""
    out = console()
    for job in jobs:
        mine = [r for r in rows if r.job is job]
        title = f"{job.id}  ({job.kind}, {job.model.name}, {job.precision})"
        if not mine:
            out.print(f"\n{title}\n  no allowed chip type")
            continue
        if job.is_train:
            table = _table("chip", "chips>", "layout", "step s>", "tok/s>", "MFU>", "days>", "kW>", "MWh>", "k$>",
                           "status", title=title)
        else:
            table = _table("chip", "chips>", "layout", "TTFT ms>", "TPOT ms>", "batch>", "out tok/s>", "repl>",
                           "need>", "kW>", "$>", "status", title=title)
        for r in mine:
            m, lay = r.to_dict()["metrics"], r.layout()
            status = _status(r.feasible, "ok" if r.feasible else r.reason)
            if job.is_train:
                layout = f"tp{lay['tp']} pp{lay['pp']} dp{lay['dp']}" + (f" ep{lay['ep']}" if lay['ep'] > 1 else "")
                ran = r.reason not in ("no_layout", "memory", "batch")
                table.add_row(r.chip.name, str(r.chips), layout,
                              _fmt(m["step_time_s"] if ran else None, ".2f"),
                              _fmt(m["tokens_per_s"] if ran else None, ",.0f"),
                              _fmt(m["mfu"] if ran else None, ".2f"),
                              _fmt(m["duration_h"] / 24 if ran else None, ".1f"),
                              _fmt(m["power_kw"] if ran else None, ".1f"),
                              _fmt(m["energy_kwh"] / 1e3 if ran else None, ".1f"),
                              _fmt(m["cost_usd"] / 1e3 if ran else None, ".1f"), status)
            else:
                ran = r.reason not in ("no_layout", "memory")
                table.add_row(r.chip.name, str(r.chips), f"tp{lay['tp']} pp{lay['pp']}",
                              _fmt(m["ttft_ms"] if ran else None, ".1f"),
                              _fmt(m["tpot_ms"] if ran else None, ".2f"),
                              _fmt(m["batch"] if ran else None, "d"),
                              _fmt(m["output_tokens_per_s"] if ran else None, ",.0f"),
                              _fmt(m["replicas"] if ran else None, "d"),
                              _fmt(m["replicas_needed"] if ran else None, "d"),
                              _fmt(m["power_kw"] if ran else None, ".1f"),
                              _fmt(m["cost_usd"] if ran else None, ".0f"), status)
        out.print()
        out.print(table)


def chips(catalog: Mapping[str, ChipType]) -> None:
    table = _table("chip", "stack", "bf16 TF>", "fp8 TF>", "HBM GB>", "TB/s>", "W>", "domain>", "up GB/s>",
                   "out GB/s>", "$/chip-h>")
    for c in catalog.values():
        table.add_row(c.name, c.stack, f"{c.peak_bf16_tflops:.0f}", f"{c.peak_fp8_tflops:.0f}", f"{c.hbm_gb:.1f}",
                      f"{c.hbm_tbps:.2f}", f"{c.tdp_w:.0f}", str(c.domain_size), f"{c.scaleup_gbps:.0f}",
                      f"{c.scaleout_gbps:.2f}", f"{c.price_per_chip_hour:.2f}")
    out = console()
    out.print(table)
    out.print("figures marked estimate/unverified: see `trnsched chips --json` for status and source")


def models(catalog: Mapping[str, ModelSpec]) -> None:
    table = _table("model", "params B>", "active B>", "layers>", "hidden>", "MoE")
    for m in catalog.values():
        table.add_row(m.name, f"{m.params_b:.1f}", f"{m.active_params_b:.1f}", str(m.layers), str(m.hidden),
                      f"{m.experts}x top-{m.top_k}" if m.is_moe else "")
    console().print(table)


def fleet(f: Fleet) -> None:
    totals = f.totals()
    out = console()
    out.print(f"{f.name}: {len(f.racks)} racks, {sum(v['chips'] for v in totals.values())} chips, PUE {f.pue:g}")
    racks = _table("pod", "rack", "chips", "busy", "cap kW>", "idle kW>")
    for r in f.racks:
        installed = " + ".join(f"{n} {t}" for t, n in r.chips.items()) + (" (hybrid)" if r.hybrid else "")
        busy = " + ".join(f"{n} {t}" for t, n in r.used.items() if n) or "-"
        racks.add_row(r.pod, r.id, installed, busy, "-" if r.power_cap_kw is None else f"{r.power_cap_kw:g}",
                      f"{f.baseline_kw(r):.1f}")
    out.print(racks)
    by_type = _table("chip", "racks>", "chips>", "busy>", "free>")
    for t, v in totals.items():
        by_type.add_row(t, str(v["racks"]), str(v["chips"]), str(v["used"]), str(v["free"]))
    out.print(by_type)


def result(res: Result) -> None:
    """`trnsched solve`: the headline, the placements, the unplaced jobs and rack use."""
    out = console()
    t = res.totals
    timed = "horizon_h" in t
    bound = "" if res.best_bound is None else f", bound {res.best_bound:,.2f}"
    gap = "" if res.gap is None else f"; gap {res.gap:.2%}"
    most = "" if res.priority_bound is None else f", at most {res.priority_bound}"
    value = "-" if res.objective_value is None else f"{res.objective_value:,.2f} {UNITS[res.objective]}"
    name = res.objective if not timed else f"{res.objective} + weighted completion, in"
    status = Text(f"{res.policy} {res.status}", style="bold green" if res.status == "OPTIMAL" else "bold")
    out.print(status, Text(f": {t['jobs_placed']} placed, {t['jobs_unplaced']} unplaced "
                           f"(priority {t['priority_placed']}/{t['priority_total']}{most}); {name} {value}{bound}{gap}; "
                           f"{res.solve_time_s:.1f} s"), sep="")
    out.print(f"energy {t['energy_kwh']:,.0f} kWh, cost ${t['cost_usd']:,.0f}, {t['chips_used']} chips, "
              f"{t['power_kw']:,.0f} kW at the wall")
    if timed:
        out.print(f"horizon {t['horizon_h']:g} h: makespan {t['makespan_h']:,.1f} h, mean wait "
                  f"{t['mean_wait_h']:,.2f} h, priority-weighted completion {t['weighted_completion_h']:,.1f} h")
    for note in res.notes:
        out.print(f"note: {note}", style="dim")
    if res.placements:
        when = ("start>", "end>") if timed else ()
        table = _table("job", "pri>", "chips>", "chip", "racks", "layout", "hours>", *when, "MWh>", "k$>",
                       "key metric")
        for p in res.placements:
            lay = p.layout
            if p.pools:       # one line per pool
                times = (f"{p.start_h:.1f}", f"{p.end_h:.1f}") if timed else ()
                for k, pool in enumerate(p.pools):
                    racks = ", ".join(f"{r}:{n}" for r, n in pool.allocations)
                    pl = pool.layout
                    layout = f"{pool.role} tp{pl['tp']:g} pp{pl['pp']:g} x{pl['replicas']:g}"
                    if pool.role == "prefill":
                        key = f"TTFT {p.metrics['ttft_ms']:,.0f} ms (KV {p.metrics['kv_transfer_ms']:.1f} ms, {p.link})"
                    else:
                        key = f"TPOT {p.metrics['tpot_ms']:.1f} ms"
                    first = k == 0
                    table.add_row(p.job.id if first else "", str(p.job.priority) if first else "", str(pool.chips),
                                  pool.chip_type, racks, layout, f"{p.end_h - p.start_h:.1f}" if first else "",
                                  *(times if first else ("",) * len(times)),
                                  f"{pool.metrics['energy_kwh'] / 1e3:.1f}", f"{pool.metrics['cost_usd'] / 1e3:.1f}", key)
                continue
            if p.job.is_train:
                layout = f"tp{lay['tp']:g} pp{lay['pp']:g} dp{lay['dp']:g}" + (f" ep{lay['ep']:g}" if lay["ep"] > 1 else "")
                key = f"MFU {p.metrics['mfu']:.2f}, {p.metrics['tokens_per_s']:,.0f} tok/s"
            else:
                layout = f"tp{lay['tp']:g} pp{lay['pp']:g} x{lay['replicas']:g}"
                key = f"TTFT {p.metrics['ttft_ms']:,.0f} ms, TPOT {p.metrics['tpot_ms']:.1f} ms"
            racks = ", ".join(f"{r}:{n}" for r, n in p.allocations)
            if len(p.allocations) > 3:
                racks = f"{len(p.allocations)} racks ({p.allocations[0][0]}..)"
            times = (f"{p.start_h:.1f}", f"{p.end_h:.1f}") if timed else ()
            table.add_row(p.job.id, str(p.job.priority), str(p.chips), p.chip_type, racks, layout,
                          f"{p.end_h - p.start_h:.1f}", *times, f"{p.metrics['energy_kwh'] / 1e3:.1f}",
                          f"{p.metrics['cost_usd'] / 1e3:.1f}", key)
        out.print()
        out.print(table)
    if res.unplaced:
        out.print("\nunplaced:", style="bold yellow")
        for u in res.unplaced:
            out.print(f"  {u.job.id} (priority {u.job.priority}): {u.reason}")
    used: dict[tuple[str, str], list[int]] = {}
    for row in res.racks:
        agg = used.setdefault((row["pod"], row["chip_type"]), [0, 0, 0, 0])
        agg[0] += 1
        agg[1] += row["capacity"]
        agg[2] += row["busy_before"]
        agg[3] += row["placed"]
    table = _table("pod", "chip", "racks>", "chips>", "busy>", "placed>", "use>",
                   title="rack use (peak at one instant)" if timed else None)
    for (pod, chip), (n, cap, busy, placed) in sorted(used.items()):
        table.add_row(pod, chip, str(n), str(cap), str(busy), str(placed), f"{(busy + placed) / cap:.0%}")
    out.print()
    out.print(table)
    capped = [r for r in res.racks if r["power_cap_kw"] and r["power_kw"] is not None
              and r["power_kw"] > 0.9 * r["power_cap_kw"]]
    for r in {r["rack"]: r for r in capped}.values():
        out.print(f"rack {r['rack']} at {r['power_kw']:.1f} of {r['power_cap_kw']:g} kW power cap")


def replay(f: dict, policy: str) -> None:
    """`trnsched simulate`: the figures of a replay."""
    out = console()
    out.print(f"{f['trace']} on {f['fleet']}: {policy}, {f['jobs_run']} jobs run, {f['decisions']} decisions "
              f"({f['solver_calls']} solver calls, {f['decide_s']:.2f} s deciding), {f['wall_s']:.1f} s in all")
    hours = _table("hours", "mean>", "p50>", "p99>", "max>")
    for key, label in (("completion_h", "completion"), ("wait_h", "queueing")):
        s = f[key]
        hours.add_row(label, f"{s['mean']:.3f}", f"{s['p50']:.3f}", f"{s['p99']:.3f}", f"{s['max']:.3f}")
    out.print(hours)
    e = f["energy_kwh"]
    out.print(f"makespan {f['makespan_h']:,.1f} h; energy {e['total']:,.0f} kWh ({e['jobs']:,.0f} running jobs, "
              f"{e['idle']:,.0f} idle chips); cost ${f['cost_usd']:,.0f}")
    use = _table("chip", "jobs>", "chip-h>", "mean use>", "peak use>")
    for t, share in f["utilisation"].items():
        peak = max(f["utilisation_series"]["by_chip_type"].get(t) or [0.0])
        use.add_row(t, str(f["runs_per_chip_type"][t]), f"{f['chip_hours'].get(t, 0.0):,.0f}", f"{share:.1%}",
                    f"{peak:.1%}")
    out.print(use)
    for note in f["notes"]:
        out.print(f"note: {note}", style="dim")


@contextmanager
def replay_progress(total: int, label: str, *, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar for a replay on stderr's terminal (nothing when piped or
    quiet); yields the function the replay calls with jobs arrived."""
    err = Console(file=sys.stderr)
    if quiet or not err.is_terminal:
        yield lambda n: None
        return
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
