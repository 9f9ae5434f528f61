"""The readable tables the commands print (their --json forms are the objects' own)."""
from __future__ import annotations

import sys
from typing import Mapping, Sequence

import click

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


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def scores(jobs: Sequence[Job], rows: Sequence[WhatIf]) -> None:
    """`trnsched score`: per job, one line per chip type and count."""
    for job in jobs:
        mine = [r for r in rows if r.job is job]
        click.echo(f"\n{job.id}  ({job.kind}, {job.model.name}, {job.precision})")
        if not mine:
            click.echo("  no allowed chip type")
            continue
        if job.is_train:
            head = (f"  {'chip':6} {'chips':>6} {'layout':>16} {'step s':>9} {'tok/s':>11} {'MFU':>5} {'days':>8} "
                    f"{'kW':>8} {'MWh':>9} {'k$':>9}  status")
        else:
            head = (f"  {'chip':6} {'chips':>6} {'layout':>10} {'TTFT ms':>9} {'TPOT ms':>8} {'batch':>5} "
                    f"{'out tok/s':>11} {'repl':>4} {'need':>4} {'kW':>7} {'$':>9}  status")
        click.echo(head)
        for r in mine:
            m, lay = r.to_dict()["metrics"], r.layout()
            status = "ok" if r.feasible else r.reason
            if job.is_train:
                layout = f"tp{lay['tp']} pp{lay['pp']} dp{lay['dp']}" + (f" ep{lay['ep']}" if lay['ep'] > 1 else "")
                ran = r.reason not in ("no_layout", "memory", "batch")
                click.echo(f"  {r.chip.name:6} {r.chips:>6} {layout:>16} "
                           f"{_fmt(m['step_time_s'] if ran else None, '9.2f')} "
                           f"{_fmt(m['tokens_per_s'] if ran else None, '11,.0f')} "
                           f"{_fmt(m['mfu'] if ran else None, '5.2f')} "
                           f"{_fmt(m['duration_h'] / 24 if ran else None, '8.1f')} "
                           f"{_fmt(m['power_kw'] if ran else None, '8.1f')} "
                           f"{_fmt(m['energy_kwh'] / 1e3 if ran else None, '9.1f')} "
                           f"{_fmt(m['cost_usd'] / 1e3 if ran else None, '9.1f')}  {status}")
            else:
                ran = r.reason not in ("no_layout", "memory")
                layout = f"tp{lay['tp']} pp{lay['pp']}"
                click.echo(f"  {r.chip.name:6} {r.chips:>6} {layout:>10} "
                           f"{_fmt(m['ttft_ms'] if ran else None, '9.1f')} "
                           f"{_fmt(m['tpot_ms'] if ran else None, '8.2f')} "
                           f"{_fmt(m['batch'] if ran else None, '5d')} "
                           f"{_fmt(m['output_tokens_per_s'] if ran else None, '11,.0f')} "
                           f"{_fmt(m['replicas'] if ran else None, '4d')} "
                           f"{_fmt(m['replicas_needed'] if ran else None, '4d')} "
                           f"{_fmt(m['power_kw'] if ran else None, '7.1f')} "
                           f"{_fmt(m['cost_usd'] if ran else None, '9.0f')}  {status}")


def chips(catalog: Mapping[str, ChipType]) -> None:
    click.echo(f"{'chip':6} {'stack':6} {'bf16 TF':>8} {'fp8 TF':>8} {'HBM GB':>7} {'TB/s':>5} {'W':>5} {'domain':>6} "
               f"{'up GB/s':>8} {'out GB/s':>8} {'$/chip-h':>8}")
    for c in catalog.values():
        click.echo(f"{c.name:6} {c.stack:6} {c.peak_bf16_tflops:8.0f} {c.peak_fp8_tflops:8.0f} {c.hbm_gb:7.1f} "
                   f"{c.hbm_tbps:5.2f} {c.tdp_w:5.0f} {c.domain_size:6d} {c.scaleup_gbps:8.0f} {c.scaleout_gbps:8.2f} "
                   f"{c.price_per_chip_hour:8.2f}")
    click.echo("figures marked estimate/unverified: see `trnsched chips --json` for status and source")


def models(catalog: Mapping[str, ModelSpec]) -> None:
    for m in catalog.values():
        moe = f" MoE {m.experts}x top-{m.top_k}" if m.is_moe else ""
        click.echo(f"{m.name:16} {m.params_b:7.1f}B active {m.active_params_b:6.1f}B  L{m.layers} h{m.hidden}{moe}")


def fleet(f: Fleet) -> None:
    totals = f.totals()
    click.echo(f"{f.name}: {len(f.racks)} racks, {sum(v['chips'] for v in totals.values())} chips, PUE {f.pue:g}")
    click.echo(f"{'pod':8} {'rack':16} {'chips':24} {'busy':16} {'cap kW':>7} {'idle kW':>8}")
    for r in f.racks:
        installed = " + ".join(f"{n} {t}" for t, n in r.chips.items())
        busy = " + ".join(f"{n} {t}" for t, n in r.used.items() if n) or "-"
        hybrid = " (hybrid)" if r.hybrid else ""
        click.echo(f"{r.pod:8} {r.id:16} {installed + hybrid:24} {busy:16} {r.power_cap_kw or 0:>7g} "
                   f"{f.baseline_kw(r):>8.1f}")
    click.echo(f"\n{'chip':6} {'racks':>5} {'chips':>6} {'busy':>6} {'free':>6}")
    for t, v in totals.items():
        click.echo(f"{t:6} {v['racks']:>5} {v['chips']:>6} {v['used']:>6} {v['free']:>6}")


def result(res: Result) -> None:
    """`trnsched solve`: the headline, the placements, the unplaced jobs and rack use."""
    t = res.totals
    timed = "horizon_h" in t
    bound = "" if res.best_bound is None else f", bound {res.best_bound:,.2f}"
    gap = "" if res.gap is None else f"; gap {res.gap:.2%}"
    most = "" if res.priority_bound is None else f", at most {res.priority_bound}"
    value = "-" if res.objective_value is None else f"{res.objective_value:,.2f} {UNITS[res.objective]}"
    name = res.objective if not timed else f"{res.objective} + weighted completion, in"
    click.echo(f"{res.policy} {res.status}: {t['jobs_placed']} placed, {t['jobs_unplaced']} unplaced "
               f"(priority {t['priority_placed']}/{t['priority_total']}{most}); {name} {value}{bound}{gap}; "
               f"{res.solve_time_s:.1f} s")
    click.echo(f"energy {t['energy_kwh']:,.0f} kWh, cost ${t['cost_usd']:,.0f}, {t['chips_used']} chips, "
               f"{t['power_kw']:,.0f} kW at the wall")
    if timed:
        click.echo(f"horizon {t['horizon_h']:g} h: makespan {t['makespan_h']:,.1f} h, mean wait "
                   f"{t['mean_wait_h']:,.2f} h, priority-weighted completion {t['weighted_completion_h']:,.1f} h")
    for note in res.notes:
        click.echo(f"note: {note}")
    if res.placements:
        when = f" {'start':>7} {'end':>7}" if timed else ""
        click.echo(f"\n{'job':28} {'pri':>3} {'chips':>12} {'racks':28} {'layout':>16} {'hours':>9}{when} {'MWh':>8} "
                   f"{'k$':>8}  key metric")
        for p in res.placements:
            lay = p.layout
            if p.job.is_train:
                layout = f"tp{lay['tp']:g} pp{lay['pp']:g} dp{lay['dp']:g}" + (f" ep{lay['ep']:g}" if lay["ep"] > 1 else "")
                key = f"MFU {p.metrics['mfu']:.2f}, {p.metrics['tokens_per_s']:,.0f} tok/s"
            else:
                layout = f"tp{lay['tp']:g} pp{lay['pp']:g} x{lay['replicas']:g}"
                key = f"TTFT {p.metrics['ttft_ms']:,.0f} ms, TPOT {p.metrics['tpot_ms']:.1f} ms"
            racks = ", ".join(f"{r}:{n}" for r, n in p.allocations)
            if len(racks) > 28:
                racks = f"{len(p.allocations)} racks ({p.allocations[0][0]}..)"
            when = f" {p.start_h:7.1f} {p.end_h:7.1f}" if timed else ""
            click.echo(f"{p.job.id[:28]:28} {p.job.priority:>3} {p.chips:>5} {p.chip_type:6} {racks:28} {layout:>16} "
                       f"{p.end_h - p.start_h:9.1f}{when} {p.metrics['energy_kwh'] / 1e3:8.1f} "
                       f"{p.metrics['cost_usd'] / 1e3:8.1f}  {key}")
    if res.unplaced:
        click.echo("\nunplaced:")
        for u in res.unplaced:
            click.echo(f"  {u.job.id} (priority {u.job.priority}): {u.reason}")
    used: dict[tuple[str, str], list[int]] = {}
    for row in res.racks:
        agg = used.setdefault((row["pod"], row["chip_type"]), [0, 0, 0, 0])
        agg[0] += 1
        agg[1] += row["capacity"]
        agg[2] += row["busy_before"]
        agg[3] += row["placed"]
    peak = " (peak at one instant)" if timed else ""
    click.echo(f"\n{'pod':8} {'chip':6} {'racks':>5} {'chips':>6} {'busy':>6} {'placed':>6} {'use':>5}{peak}")
    for (pod, chip), (n, cap, busy, placed) in sorted(used.items()):
        click.echo(f"{pod:8} {chip:6} {n:>5} {cap:>6} {busy:>6} {placed:>6} {(busy + placed) / cap:>5.0%}")
    capped = [r for r in res.racks if r["power_cap_kw"] and r["power_kw"] is not None
              and r["power_kw"] > 0.9 * r["power_cap_kw"]]
    for r in {r["rack"]: r for r in capped}.values():
        click.echo(f"rack {r['rack']} at {r['power_kw']:.1f} of {r['power_cap_kw']:g} kW power cap")


def replay(f: dict, policy: str) -> None:
    """`trnsched simulate`: the figures of a replay."""
    click.echo(f"{f['trace']} on {f['fleet']}: {policy}, {f['jobs_run']} jobs run, {f['decisions']} decisions "
               f"({f['solver_calls']} solver calls, {f['decide_s']:.2f} s deciding), {f['wall_s']:.1f} s in all")
    for key, label in (("completion_h", "completion"), ("wait_h", "queueing")):
        s = f[key]
        click.echo(f"{label:10} h: mean {s['mean']:10.3f}   p50 {s['p50']:10.3f}   p99 {s['p99']:10.3f}   "
                   f"max {s['max']:10.3f}")
    e = f["energy_kwh"]
    click.echo(f"makespan {f['makespan_h']:,.1f} h; energy {e['total']:,.0f} kWh ({e['jobs']:,.0f} running jobs, "
               f"{e['idle']:,.0f} idle chips); cost ${f['cost_usd']:,.0f}")
    click.echo(f"{'chip':6} {'jobs':>6} {'chip-h':>10} {'mean use':>8} {'peak use':>8}")
    for t, use in f["utilisation"].items():
        peak = max(f["utilisation_series"]["by_chip_type"].get(t) or [0.0])
        click.echo(f"{t:6} {f['runs_per_chip_type'][t]:>6} {f['chip_hours'].get(t, 0.0):>10,.0f} {use:>8.1%} "
                   f"{peak:>8.1%}")
    for note in f["notes"]:
        click.echo(f"note: {note}")
