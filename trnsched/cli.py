"""Command line: `trnsched solve`, `simulate`, `score`, `fleet`, `generate`, `validate`, `chips`, `models`."""
from __future__ import annotations

import functools
import json
import sys

import click

import os
import tempfile

from trnsched.catalog import builtin_models, chip_catalog
from trnsched.errors import InputError
from trnsched.fleet import load_fleet
from trnsched.jobs import load_jobs
from trnsched.placement import Result, solve as solve_jobs
from trnsched.simulate import SIM_POLICIES, simulate as replay
from trnsched.solver import OBJECTIVES, POLICIES
from trnsched.traces import load_trace
from trnsched.whatif import what_if


def _guarded(fn):
    """Bad input: one line on stderr, exit 2.  Anything else: one line, exit 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except BrokenPipeError:  # output piped into `head`: not an error
            sys.stderr.close()
            sys.exit(0)
        except (click.ClickException, click.exceptions.Exit, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the contract is one line, no traceback
            click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
            sys.exit(1)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trnsched")
def main() -> None:
    """trnsched: place training and inference jobs on mixed Trainium / Nvidia fleets."""


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


@main.command()
@click.argument("jobs_file", metavar="JOBS", type=click.Path(dir_okay=False))
@click.option("--chip-type", "chip_type", help="Only this chip type.")
@click.option("--chips", "count", type=click.IntRange(min=1), help="Exactly this many chips.")
@click.option("--fleet", "fleet_file", type=click.Path(dir_okay=False), help="Fleet file: its chip_types overrides and pue apply.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@click.option("--feasible-only", is_flag=True, help="Hide candidates that cannot run.")
@_guarded
def score(jobs_file, chip_type, count, fleet_file, as_json, feasible_only):
    """Predicted metrics for each job per chip type and chip count (what-if view)."""
    fleet_data = load_fleet(fleet_file) if fleet_file else None
    chips = fleet_data.chip_types if fleet_data else chip_catalog()
    pue = fleet_data.pue if fleet_data else None
    if chip_type is not None and chip_type not in chips:
        raise InputError(f"unknown chip type {chip_type!r}; known: {', '.join(sorted(chips))}", field="--chip-type")
    jobs = load_jobs(jobs_file, chip_names=chips)
    rows = what_if(jobs, chips, chip_type=chip_type, count=count, pue=pue)
    if feasible_only:
        rows = [r for r in rows if r.feasible]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=1))
        return
    for job in jobs:
        mine = [r for r in rows if r.job is job]
        click.echo(f"\n{job.id}  ({job.kind}, {job.model.name}, {job.precision})")
        if not mine:
            click.echo("  no allowed chip type")
            continue
        if job.is_train:
            head = f"  {'chip':6} {'chips':>6} {'layout':>16} {'step s':>9} {'tok/s':>11} {'MFU':>5} {'days':>8} {'kW':>8} {'MWh':>9} {'k$':>9}  status"
        else:
            head = f"  {'chip':6} {'chips':>6} {'layout':>10} {'TTFT ms':>9} {'TPOT ms':>8} {'batch':>5} {'out tok/s':>11} {'repl':>4} {'need':>4} {'kW':>7} {'$':>9}  status"
        click.echo(head)
        for r in mine:
            m, lay = r.to_dict()["metrics"], r.layout()
            status = "ok" if r.feasible else r.reason
            if job.is_train:
                layout = f"tp{lay['tp']} pp{lay['pp']} dp{lay['dp']}" + (f" ep{lay['ep']}" if lay['ep'] > 1 else "")
                ran = r.reason not in ("no_layout", "memory", "batch")
                click.echo(f"  {r.chip.name:6} {r.chips:>6} {layout:>16} "
                           f"{_fmt(m['step_time_s'] if ran else None, '9.2f')} {_fmt(m['tokens_per_s'] if ran else None, '11,.0f')} "
                           f"{_fmt(m['mfu'] if ran else None, '5.2f')} {_fmt(m['duration_h'] / 24 if ran else None, '8.1f')} "
                           f"{_fmt(m['power_kw'] if ran else None, '8.1f')} {_fmt(m['energy_kwh'] / 1e3 if ran else None, '9.1f')} "
                           f"{_fmt(m['cost_usd'] / 1e3 if ran else None, '9.1f')}  {status}")
            else:
                ran = r.reason not in ("no_layout", "memory")
                layout = f"tp{lay['tp']} pp{lay['pp']}"
                click.echo(f"  {r.chip.name:6} {r.chips:>6} {layout:>10} "
                           f"{_fmt(m['ttft_ms'] if ran else None, '9.1f')} {_fmt(m['tpot_ms'] if ran else None, '8.2f')} "
                           f"{_fmt(m['batch'] if ran else None, '5d')} {_fmt(m['output_tokens_per_s'] if ran else None, '11,.0f')} "
                           f"{_fmt(m['replicas'] if ran else None, '4d')} {_fmt(m['replicas_needed'] if ran else None, '4d')} "
                           f"{_fmt(m['power_kw'] if ran else None, '7.1f')} {_fmt(m['cost_usd'] if ran else None, '9.0f')}  {status}")


@main.command()
@click.argument("jobs_file", metavar="JOBS", type=click.Path(dir_okay=False))
@click.option("--fleet", "fleet_file", type=click.Path(dir_okay=False))
@_guarded
def validate(jobs_file, fleet_file):
    """Check a jobs file (and fleet file) without scoring."""
    fleet = load_fleet(fleet_file)
    jobs = load_jobs(jobs_file, chip_names=fleet.chip_types)
    where = fleet_file or "the default fleet"
    click.echo(f"{jobs_file}: {len(jobs)} jobs OK; {where}: {len(fleet.racks)} racks OK")


@main.command()
@click.option("--fleet", "fleet_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@_guarded
def chips(fleet_file, as_json):
    """The chip catalog, with each figure's status and source."""
    catalog = load_fleet(fleet_file).chip_types if fleet_file else chip_catalog()
    if as_json:
        click.echo(json.dumps({n: c.to_dict() for n, c in catalog.items()}, indent=1))
        return
    click.echo(f"{'chip':6} {'stack':6} {'bf16 TF':>8} {'fp8 TF':>8} {'HBM GB':>7} {'TB/s':>5} {'W':>5} {'domain':>6} {'up GB/s':>8} {'out GB/s':>8} {'$/chip-h':>8}")
    for c in catalog.values():
        click.echo(f"{c.name:6} {c.stack:6} {c.peak_bf16_tflops:8.0f} {c.peak_fp8_tflops:8.0f} {c.hbm_gb:7.1f} "
                   f"{c.hbm_tbps:5.2f} {c.tdp_w:5.0f} {c.domain_size:6d} {c.scaleup_gbps:8.0f} {c.scaleout_gbps:8.2f} "
                   f"{c.price_per_chip_hour:8.2f}")
    click.echo("figures marked estimate/unverified: see `trnsched chips --json` for status and source")


@main.command()
@click.option("--json", "as_json", is_flag=True)
def models(as_json):
    """The model presets."""
    cat = builtin_models()
    if as_json:
        click.echo(json.dumps({n: m.to_dict() for n, m in cat.items()}, indent=1))
        return
    for m in cat.values():
        moe = f" MoE {m.experts}x top-{m.top_k}" if m.is_moe else ""
        click.echo(f"{m.name:16} {m.params_b:7.1f}B active {m.active_params_b:6.1f}B  L{m.layers} h{m.hidden}{moe}")


def write_atomic(path: str, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: no half-written output."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError("folder does not exist", file=path)
    fd, tmp = tempfile.mkstemp(prefix=".trnsched-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _render(result: Result) -> None:
    t = result.totals
    bound = "" if result.best_bound is None else f", bound {result.best_bound:,.2f}, gap {result.gap:.2%}"
    unit = {"energy": "kWh", "cost": "USD", "time": "job-hours", "balanced": "(relative)"}[result.objective]
    value = "-" if result.objective_value is None else f"{result.objective_value:,.2f} {unit}"
    name = result.objective if "horizon_h" not in t else f"{result.objective} + weighted completion, in"
    click.echo(f"{result.policy} {result.status}: {t['jobs_placed']} placed, {t['jobs_unplaced']} unplaced "
               f"(priority {t['priority_placed']}/{t['priority_total']}); {name} {value}{bound}; "
               f"{result.solve_time_s:.1f} s")
    click.echo(f"energy {t['energy_kwh']:,.0f} kWh, cost ${t['cost_usd']:,.0f}, {t['chips_used']} chips, "
               f"{t['power_kw']:,.0f} kW at the wall")
    if "horizon_h" in t:
        click.echo(f"horizon {t['horizon_h']:g} h: makespan {t['makespan_h']:,.1f} h, mean wait {t['mean_wait_h']:,.2f} h, "
                   f"priority-weighted completion {t['weighted_completion_h']:,.1f} h")
    for note in result.notes:
        click.echo(f"note: {note}")
    timed = "horizon_h" in t
    if result.placements:
        when = f" {'start':>7} {'end':>7}" if timed else ""
        click.echo(f"\n{'job':28} {'pri':>3} {'chips':>12} {'racks':28} {'layout':>16} {'hours':>9}{when} {'MWh':>8} {'k$':>8}  key metric")
        for p in result.placements:
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
                       f"{p.end_h - p.start_h:9.1f}{when} {p.metrics['energy_kwh'] / 1e3:8.1f} {p.metrics['cost_usd'] / 1e3:8.1f}  {key}")
    if result.unplaced:
        click.echo("\nunplaced:")
        for u in result.unplaced:
            click.echo(f"  {u.job.id} (priority {u.job.priority}): {u.reason}")
    used: dict[tuple[str, str], list[int]] = {}
    for row in result.racks:
        key = (row["pod"], row["chip_type"])
        agg = used.setdefault(key, [0, 0, 0, 0])
        agg[0] += 1
        agg[1] += row["capacity"]
        agg[2] += row["busy_before"]
        agg[3] += row["placed"]
    peak = " (peak at one instant)" if timed else ""
    click.echo(f"\n{'pod':8} {'chip':6} {'racks':>5} {'chips':>6} {'busy':>6} {'placed':>6} {'use':>5}{peak}")
    for (pod, chip), (n, cap, busy, placed) in sorted(used.items()):
        click.echo(f"{pod:8} {chip:6} {n:>5} {cap:>6} {busy:>6} {placed:>6} {(busy + placed) / cap:>5.0%}")
    capped = [r for r in result.racks if r["power_cap_kw"] and r["power_kw"] is not None
              and r["power_kw"] > 0.9 * r["power_cap_kw"]]
    for r in {r["rack"]: r for r in capped}.values():
        click.echo(f"rack {r['rack']} at {r['power_kw']:.1f} of {r['power_cap_kw']:g} kW power cap")


@main.command()
@click.argument("jobs_file", metavar="JOBS", type=click.Path(dir_okay=False))
@click.option("--fleet", "fleet_file", type=click.Path(dir_okay=False), help="Fleet file (default: built-in fleet).")
@click.option("--objective", type=click.Choice(OBJECTIVES), default="energy", show_default=True)
@click.option("--policy", type=click.Choice(POLICIES), default="cpsat", show_default=True)
@click.option("--time-limit", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="CP-SAT work limit in deterministic seconds (results repeat exactly; "
                   "one unit is 1-3 s of wall time on a 2-core machine).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--horizon", "horizon_h", type=click.FloatRange(min=0.0, min_open=True),
              help="Schedule in time over this many hours: jobs start at or after arrival_h and within the "
                   "horizon, capacity and power hold at every instant (default: place everything now).")
@click.option("--time-weight", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="With --horizon: weight of priority-weighted completion time in the objective "
                   "(1 = holding every job for the whole horizon costs as much as running them all).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the JSON result here (atomically).")
@_guarded
def solve(jobs_file, fleet_file, objective, policy, time_limit, workers, seed, horizon_h, time_weight, as_json,
          output):
    """Place jobs on the fleet; explain every job that cannot be placed."""
    fleet = load_fleet(fleet_file)
    jobs = load_jobs(jobs_file, chip_names=fleet.chip_types)
    result = solve_jobs(jobs, fleet, objective=objective, policy=policy, time_limit=time_limit,
                        workers=workers, seed=seed, horizon_h=horizon_h, time_weight=time_weight)
    text = json.dumps(result.to_dict(), indent=1)
    if output:
        write_atomic(output, text + "\n")
    if as_json:
        click.echo(text)
    else:
        _render(result)


@main.command()
@click.option("--fleet", "fleet_file", type=click.Path(dir_okay=False), help="Fleet file (default: built-in fleet).")
@click.option("--json", "as_json", is_flag=True)
@_guarded
def fleet(fleet_file, as_json):
    """Show a fleet: racks per pod and chip type, busy and free chips, power caps."""
    f = load_fleet(fleet_file)
    totals = f.totals()
    if as_json:
        click.echo(json.dumps({"fleet": f.to_dict(), "totals": totals}, indent=1))
        return
    click.echo(f"{f.name}: {len(f.racks)} racks, {sum(v['chips'] for v in totals.values())} chips, PUE {f.pue:g}")
    click.echo(f"{'pod':8} {'rack':16} {'chips':24} {'busy':16} {'cap kW':>7} {'idle kW':>8}")
    for r in f.racks:
        chips = " + ".join(f"{n} {t}" for t, n in r.chips.items())
        busy = " + ".join(f"{n} {t}" for t, n in r.used.items() if n) or "-"
        hybrid = " (hybrid)" if r.hybrid else ""
        click.echo(f"{r.pod:8} {r.id:16} {chips + hybrid:24} {busy:16} {r.power_cap_kw or 0:>7g} {f.baseline_kw(r):>8.1f}")
    click.echo(f"\n{'chip':6} {'racks':>5} {'chips':>6} {'busy':>6} {'free':>6}")
    for t, v in totals.items():
        click.echo(f"{t:6} {v['racks']:>5} {v['chips']:>6} {v['used']:>6} {v['free']:>6}")


@main.command()
@click.option("--jobs", "n_jobs", type=click.IntRange(min=1), required=True, help="How many jobs.")
@click.option("--racks", "n_racks", type=click.IntRange(min=1), required=True, help="How many racks (~40 chips each).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for jobs.json and fleet.json (created if missing).")
@_guarded
def generate(n_jobs, n_racks, seed, out_dir):
    """Write a seeded synthetic workload: jobs.json and fleet.json (distributions: trnsched/generate.py)."""
    from trnsched.generate import generate_workload
    jobs, fleet = generate_workload(n_jobs, n_racks, seed)
    os.makedirs(out_dir, exist_ok=True)
    write_atomic(os.path.join(out_dir, "jobs.json"), json.dumps(jobs, indent=1) + "\n")
    write_atomic(os.path.join(out_dir, "fleet.json"), json.dumps(fleet, indent=1) + "\n")
    chips = sum(sum(r["chips"].values()) for r in fleet["racks"])
    click.echo(f"wrote {out_dir}/jobs.json ({n_jobs} jobs) and {out_dir}/fleet.json ({n_racks} racks, {chips} chips)")


@main.command()
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--fleet", "fleet_file", type=click.Path(dir_okay=False), help="Fleet file (default: built-in fleet).")
@click.option("--policy", type=click.Choice(SIM_POLICIES), default="cpsat", show_default=True)
@click.option("--objective", type=click.Choice(OBJECTIVES), default="energy", show_default=True)
@click.option("--batch-s", type=click.FloatRange(min=0.0), default=60.0, show_default=True,
              help="Decision window: events within this many seconds of the first are decided together.")
@click.option("--time-limit", type=click.FloatRange(min=0.01), default=0.5, show_default=True,
              help="CP-SAT work limit per decision, deterministic seconds.")
@click.option("--chips-per-gpu", type=click.IntRange(min=1), default=1, show_default=True,
              help="openb traces: chips per requested GPU (the trace's scale factor).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the figures and every job's run as JSON here (atomically).")
@_guarded
def simulate(trace_file, fleet_file, policy, objective, batch_s, time_limit, chips_per_gpu, seed, as_json, output):
    """Replay a job trace (jobs file with arrival_h, or the Alibaba openb pod list .csv)
    under a policy; report completion times, queueing, utilisation, energy and cost."""
    fleet = load_fleet(fleet_file)
    trace = load_trace(trace_file, chips_per_gpu=chips_per_gpu, chip_names=fleet.chip_types)
    with click.progressbar(length=len(trace.jobs), label=f"{policy}: replaying {len(trace.jobs)} jobs",
                           file=sys.stderr, show_pos=True) as bar:
        result = replay(trace.jobs, fleet, policy=policy, objective=objective, batch_s=batch_s,
                        time_limit=time_limit, seed=seed, progress=bar.update)
    figures = {"trace": trace.describe(), "fleet": fleet.name, **result.figures()}
    if output:
        runs = [{"job": r.job.id, "arrival_h": r.job.arrival_h, "start_h": r.start_h, "end_h": r.end_h,
                 "chip_type": r.candidate.chip_type, "chips": r.candidate.chips,
                 "allocations": [{"rack": fleet.racks[k].id, "chips": n} for k, n in sorted(r.racks.items())],
                 "energy_kwh": r.candidate.energy_kwh, "cost_usd": r.candidate.cost_usd} for r in result.runs]
        write_atomic(output, json.dumps({**figures, "runs": runs}, indent=1) + "\n")
    if as_json:
        click.echo(json.dumps(figures, indent=1))
        return
    f = figures
    click.echo(f"{f['trace']} on {f['fleet']}: {policy}, {f['jobs_run']} jobs run, {f['decisions']} decisions "
               f"({f['solver_calls']} solver calls, {f['decide_s']:.2f} s deciding), {f['wall_s']:.1f} s in all")
    for key, label in (("completion_h", "completion"), ("wait_h", "queueing")):
        s = f[key]
        click.echo(f"{label:10} h: mean {s['mean']:10.3f}   p50 {s['p50']:10.3f}   p99 {s['p99']:10.3f}   max {s['max']:10.3f}")
    e = f["energy_kwh"]
    click.echo(f"makespan {f['makespan_h']:,.1f} h; energy {e['total']:,.0f} kWh ({e['jobs']:,.0f} running jobs, "
               f"{e['idle']:,.0f} idle chips); cost ${f['cost_usd']:,.0f}")
    click.echo(f"{'chip':6} {'jobs':>6} {'chip-h':>10} {'mean use':>8} {'peak use':>8}")
    for t, use in f["utilisation"].items():
        peak = max(f["utilisation_series"]["by_chip_type"].get(t) or [0.0])
        click.echo(f"{t:6} {f['runs_per_chip_type'][t]:>6} {f['chip_hours'].get(t, 0.0):>10,.0f} {use:>8.1%} {peak:>8.1%}")
    for note in f["notes"]:
        click.echo(f"note: {note}")
