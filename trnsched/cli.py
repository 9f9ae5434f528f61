"""Command line: `trnsched score`, `validate`, `chips`, `models`."""
from __future__ import annotations

import functools
import json
import sys

import click

from trnsched.catalog import builtin_models
from trnsched.errors import InputError
from trnsched.fleet import load_fleet_chips
from trnsched.jobs import load_jobs
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
@click.option("--fleet", "fleet_file", type=click.Path(dir_okay=False), help="Fleet file with chip_types overrides and pue.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
@click.option("--feasible-only", is_flag=True, help="Hide candidates that cannot run.")
@_guarded
def score(jobs_file, chip_type, count, fleet_file, as_json, feasible_only):
    """Predicted metrics for each job per chip type and chip count (what-if view)."""
    chips, pue = load_fleet_chips(fleet_file)
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
    chips, _ = load_fleet_chips(fleet_file)
    jobs = load_jobs(jobs_file, chip_names=chips)
    click.echo(f"{jobs_file}: {len(jobs)} jobs OK")


@main.command()
@click.option("--fleet", "fleet_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@_guarded
def chips(fleet_file, as_json):
    """The chip catalog, with each figure's status and source."""
    catalog, _ = load_fleet_chips(fleet_file)
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
