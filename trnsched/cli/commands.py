"""Command line: `trnsched solve`, `simulate`, `score`, `fleet` (and `fleet import`), `export`, `report`,
`generate`, `validate`, `schema`, `chips`, `models`."""
from __future__ import annotations

import json
import os
import sys
import time

import click

from trnsched.cli import render
from trnsched.cli.options import (Finite, Guarded, Seconds, fleet_option, html_option, json_option, objective_option,
                                  output_option, policy_option, quiet_option, seed_option)
from trnsched.inputs.catalog import builtin_models, chip_catalog
from trnsched.inputs.errors import InputError, OutputError
from trnsched.inputs.fleet import load_fleet, parse_fleet
from trnsched.inputs.generate import generate_workload
from trnsched.inputs.io import read_json, read_text, write_atomic
from trnsched.policies.cpsat.backends import BACKENDS
from trnsched.inputs.jobs import load_jobs
from trnsched.integrations import kubernetes, ray as ray_export, slurm
from trnsched.integrations.instances import instance_table
from trnsched.integrations.kubernetes import fleet_from_kubectl
from trnsched.integrations.slurm import fleet_from_scontrol
from trnsched.inputs.schema import MAX_CHIPS, MAX_HOURS, json_schema
from trnsched.inputs.validate import validate_result
from trnsched.replay import load_trace, simulate as replay
from trnsched.report import render_html, render_simulation_html
from trnsched.interrupts import EXIT_CODES, catching
from trnsched.solve import ON_INTERRUPT, solve as solve_jobs
from trnsched.racks import unit_racks
from trnsched.splits import ROLES
from trnsched.whatif import what_if

JOBS = click.argument("jobs_file", metavar="JOBS", type=click.Path(dir_okay=False))


@click.group(cls=Guarded, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trnsched")
def main() -> None:
    """trnsched: place training and inference jobs on mixed Trainium / Nvidia fleets."""


@main.command()
@JOBS
@fleet_option()
@objective_option()
@policy_option("solve")
@click.option("--time-limit", type=Seconds(0.1), default=10.0, show_default=True,
              help="Wall-clock seconds for the whole command, reading and writing included; the best answer "
                   "found by then is returned.")
@click.option("--deterministic", is_flag=True,
              help="Results that depend only on the inputs and settings, never on load: --time-limit then counts "
                   "CP-SAT deterministic seconds (one is 1-3 s of wall time on a 2-core machine).")
@click.option("--workers", type=click.IntRange(min=1, max=256), default=2, show_default=True,
              help="CP-SAT workers, and sub-problems solved side by side.")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True,
              help="Where the search's independent sub-problems run: local processes, or Ray "
                   "(pip install 'trnsched[ray]').")
@click.option("--ray-address", metavar="ADDRESS",
              help="With --backend ray: join this Ray cluster (default: start a local Ray for the command).")
@seed_option()
@click.option("--horizon", "horizon_h", type=Finite(0.0, MAX_HOURS, above=True, unit="number of hours"),
              help="Schedule in time over this many hours: jobs start at or after arrival_h and within the "
                   "horizon, capacity and power hold at every instant (default: place everything now).")
@click.option("--time-weight", type=Finite(0.0, 1e6), default=1.0, show_default=True,
              help="With --horizon: weight of priority-weighted completion time in the objective "
                   "(1 = holding every job for the whole horizon costs as much as running them all).")
@click.option("--on-interrupt", type=click.Choice(ON_INTERRUPT), default="stop", show_default=True,
              help="On Ctrl-C or SIGTERM: stop and write nothing, or return the best answer so far (marked "
                   "\"interrupted\"); the exit code is 130 or 143 either way.")
@json_option("Print the result as JSON.")
@output_option("Write the JSON result here (atomically).")
@html_option()
@quiet_option()
def solve(jobs_file, fleet_file, objective, policy, time_limit, deterministic, workers, backend, ray_address, seed,
          horizon_h, time_weight, on_interrupt, as_json, output, html_file, quiet):
    """Place jobs on the fleet; explain every job that cannot be placed."""
    began = time.perf_counter()
    with catching() as interrupts:
        fleet = load_fleet(fleet_file)
        jobs = load_jobs(jobs_file, chip_names=fleet.chip_types)
        live = render.LiveProgress(began) if policy == "cpsat" and sys.stderr.isatty() and not quiet else None
        try:
            result = solve_jobs(jobs, fleet, objective=objective, policy=policy, time_limit=time_limit,
                                workers=workers, seed=seed, horizon_h=horizon_h, time_weight=time_weight,
                                deterministic=deterministic, began=began, trace=live, backend=backend,
                                ray_address=ray_address, on_interrupt=on_interrupt)
        finally:
            if live is not None:
                live.close()
        text = json.dumps(result.to_dict(), indent=1)
        if on_interrupt == "stop":
            interrupts.check()          # a signal while the result was built: still nothing written
        if output:
            write_atomic(output, text + "\n")
        if html_file:
            write_atomic(html_file, render_html(json.loads(text), fleet))
        if as_json:
            click.echo(text)
        elif not quiet:
            render.result(result)
        if interrupts.requested:
            sys.exit(EXIT_CODES[interrupts.signal])


@main.command()
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@fleet_option()
@policy_option("replay")
@objective_option()
@click.option("--batch-s", type=Finite(0.0, 1e7, unit="number of seconds"), default=60.0, show_default=True,
              help="Decision window: events within this many seconds of the first are decided together.")
@click.option("--time-limit", type=Seconds(0.01), default=0.5, show_default=True,
              help="CP-SAT work limit per decision, deterministic seconds (replays repeat exactly).")
@click.option("--chips-per-gpu", type=click.IntRange(min=1, max=1024), default=1, show_default=True,
              help="openb traces: chips per requested GPU (the trace's scale factor).")
@seed_option()
@json_option("Print the figures as JSON.")
@output_option("Write the figures and every job's run as JSON here (atomically).")
@html_option()
@quiet_option()
def simulate(trace_file, fleet_file, policy, objective, batch_s, time_limit, chips_per_gpu, seed, as_json, output,
             html_file, quiet):
    """Replay a job trace (jobs file with arrival_h, or the Alibaba openb pod list .csv)
    under a policy; report completion times, queueing, utilisation, energy and cost."""
    fleet = load_fleet(fleet_file)
    trace = load_trace(trace_file, chips_per_gpu=chips_per_gpu, chip_names=fleet.chip_types)
    # Ctrl-C ends the replay between events: one line, nothing written, exit 130/143.
    with catching(), render.replay_progress(len(trace.jobs), f"{policy}: replaying", quiet=quiet) as advance:
        result = replay(trace.jobs, fleet, policy=policy, objective=objective, batch_s=batch_s,
                        time_limit=time_limit, seed=seed, progress=advance)
    figures = {"trace": trace.describe(), "fleet": fleet.name, **result.figures()}
    runs = [{"job": r.job.id, "arrival_h": r.job.arrival_h, "start_h": r.start_h, "end_h": r.end_h,
             "chip_type": r.candidate.chip_type, "chips": r.candidate.chips,
             "allocations": [{"rack": fleet.racks[k].id, "chips": n} for k, n in sorted(r.racks.items())],
             "energy_kwh": r.candidate.energy_kwh, "cost_usd": r.candidate.cost_usd,
             **({"pools": [{"role": role, "chip_type": u.chip_type, "chips": u.chips,
                            "allocations": [{"rack": fleet.racks[k].id, "chips": n} for k, n in sorted(part.items())],
                            "energy_kwh": u.energy_kwh, "cost_usd": u.cost_usd}
                           for role, (u, part) in zip(ROLES, unit_racks(r.candidate, r.racks))]}
                if r.candidate.pools else {})} for r in result.runs]
    if output:
        write_atomic(output, json.dumps({**figures, "runs": runs}, indent=1) + "\n")
    if html_file:
        write_atomic(html_file, render_simulation_html(json.loads(json.dumps({**figures, "runs": runs})), fleet))
    if as_json:
        click.echo(json.dumps(figures, indent=1))
    elif not quiet:
        render.replay(figures, policy)


@main.command()
@JOBS
@click.option("--chip-type", "chip_type", help="Only this chip type.")
@click.option("--chips", "count", type=click.IntRange(min=1, max=MAX_CHIPS), help="Exactly this many chips.")
@fleet_option("Fleet file: its chip_types overrides and pue apply.")
@json_option("Print JSON rows instead of a table.")
@click.option("--feasible-only", is_flag=True, help="Hide candidates that cannot run.")
def score(jobs_file, chip_type, count, fleet_file, as_json, feasible_only):
    """Predicted metrics for each job per chip type and chip count (what-if view)."""
    fleet = load_fleet(fleet_file) if fleet_file else None
    catalog = fleet.chip_types if fleet else chip_catalog()
    if chip_type is not None and chip_type not in catalog:
        raise InputError(f"unknown chip type {chip_type!r}; known: {', '.join(sorted(catalog))}", field="--chip-type")
    jobs = load_jobs(jobs_file, chip_names=catalog)
    rows = what_if(jobs, catalog, chip_type=chip_type, count=count, pue=fleet.pue if fleet else None)
    if feasible_only:
        rows = [r for r in rows if r.feasible]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=1))
    else:
        render.scores(jobs, rows)


@main.command()
@JOBS
@fleet_option()
def validate(jobs_file, fleet_file):
    """Check a jobs file (and fleet file) without scoring."""
    fleet = load_fleet(fleet_file)
    jobs = load_jobs(jobs_file, chip_names=fleet.chip_types)
    where = fleet_file or "the default fleet"
    click.echo(f"{jobs_file}: {len(jobs)} jobs OK; {where}: {len(fleet.racks)} racks OK")


@main.command()
@click.argument("which", type=click.Choice(["jobs", "fleet"]))
@output_option("Write the schema here (atomically).")
def schema(which, output):
    """Print the JSON Schema of a jobs or fleet file, for editors that check
    files as you type (VS Code: "json.schemas"; a file may name it in "$schema")."""
    text = json.dumps(json_schema(which), indent=1)
    if output:
        write_atomic(output, text + "\n")
    else:
        click.echo(text)


@main.command()
@fleet_option("Fleet file: its chip_types overrides apply.")
@json_option()
def chips(fleet_file, as_json):
    """The chip catalog, with each figure's status and source."""
    catalog = load_fleet(fleet_file).chip_types if fleet_file else chip_catalog()
    if as_json:
        click.echo(json.dumps({n: c.to_dict() for n, c in catalog.items()}, indent=1))
    else:
        render.chips(catalog)


@main.command()
@json_option()
def models(as_json):
    """The model presets."""
    catalog = builtin_models()
    if as_json:
        click.echo(json.dumps({n: m.to_dict() for n, m in catalog.items()}, indent=1))
    else:
        render.models(catalog)


@main.group(invoke_without_command=True)
@fleet_option()
@json_option()
@click.pass_context
def fleet(ctx, fleet_file, as_json):
    """Show a fleet: racks per pod and chip type, busy and free chips, power caps
    (`trnsched fleet import` reads one from a cluster)."""
    if ctx.invoked_subcommand is not None:
        if fleet_file or as_json:
            raise click.UsageError(f"--fleet and --json are for showing a fleet, not for `fleet "
                                   f"{ctx.invoked_subcommand}`")
        return
    f = load_fleet(fleet_file)
    if as_json:
        click.echo(json.dumps({"fleet": f.to_dict(), "totals": f.totals()}, indent=1))
    else:
        render.fleet(f)


@fleet.command("import")
@click.option("--kubectl", "nodes_file", type=click.Path(dir_okay=False),
              help="`kubectl get nodes -o json` output.")
@click.option("--pods", "pods_file", type=click.Path(dir_okay=False),
              help="With --kubectl: `kubectl get pods -A -o json` output, for the chips already busy.")
@click.option("--slurm", "slurm_file", type=click.Path(dir_okay=False),
              help="`scontrol show node --json` (Slurm 23.02+), `sinfo --json` or `scontrol show node -o` output.")
@click.option("--instance-types", "types_file", type=click.Path(dir_okay=False),
              help="JSON {instance type: {chip_type, chips?}} added to the built-in table.")
@click.option("--rack-label", help="Kubernetes: the node label whose value names a node's rack (scale-up domain).")
@click.option("--pod-label", help="Kubernetes: the node label whose value names a node's pod (default: "
                                  "topology.k8s.aws/network-node-layer-2).")
@output_option("Write the fleet file here (atomically); default: print it.")
@quiet_option()
def fleet_import(nodes_file, pods_file, slurm_file, types_file, rack_label, pod_label, output, quiet):
    """Read a fleet from a cluster: Kubernetes nodes (and pods) or Slurm nodes.
    Chip types from instance types or GRES, racks and pods from topology labels,
    busy chips from running work; each rack keeps its nodes and labels, so
    exports can pin work to it (docs/INTEGRATION.md)."""
    if (nodes_file is None) == (slurm_file is None):
        raise click.UsageError("give one of --kubectl NODES.json or --slurm NODES")
    if pods_file and not nodes_file:
        raise click.UsageError("--pods goes with --kubectl")
    extra = read_json(types_file) if types_file else None
    if isinstance(extra, dict) and isinstance(extra.get("instance_types"), dict):
        extra = extra["instance_types"]             # the built-in table's own shape
    if extra is not None and not isinstance(extra, dict):
        raise InputError("must be an object {instance type: {chip_type, chips?}}", file=types_file)
    table = instance_table(extra, file=types_file)
    source = nodes_file or slurm_file
    try:
        if nodes_file:
            pods = read_json(pods_file) if pods_file else None
            data = fleet_from_kubectl(read_json(nodes_file), pods, file=nodes_file, pods_file=pods_file,
                                      instance_types=table, rack_label=rack_label, pod_label=pod_label)
        else:
            data = fleet_from_scontrol(read_text(slurm_file), file=slurm_file, instance_types=table)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        # Cluster output is untyped JSON: a shape the reader did not expect is
        # bad input, said in one line, not an internal error.
        if isinstance(exc, InputError):
            raise
        what = "`kubectl get nodes/pods -o json`" if nodes_file else "`scontrol show node` or `sinfo --json`"
        raise InputError(f"does not read as {what} output ({type(exc).__name__}: {exc})", file=source) from None
    parsed = parse_fleet(data, file=source)        # what the import made is held to a fleet file's rules
    text = json.dumps(data, indent=1) + "\n"
    if output:
        write_atomic(output, text)
        if quiet:
            return
        totals = parsed.totals()
        click.echo(f"wrote {output}: {len(parsed.racks)} racks, "
                   + ", ".join(f"{row['chips']} {t} ({row['used']} busy)" for t, row in totals.items()), err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("source", metavar="RESULT|FLEET", type=click.Path(dir_okay=False))
@click.option("--to", "target", type=click.Choice(["kueue", "jobset", "slurm", "slurm-conf", "ray"]), required=True,
              help="kueue/jobset: Kubernetes manifests; slurm: sbatch scripts; ray: placement groups (all from a "
                   "RESULT); slurm-conf: slurm.conf, topology.conf and gres.conf (from a FLEET file).")
@fleet_option("The fleet the result was solved on (default: built-in fleet).")
@click.option("--queue", default="trnsched", show_default=True, help="kueue/jobset: the LocalQueue.")
@click.option("--namespace", default="default", show_default=True, help="kueue/jobset: the namespace.")
@click.option("--image", default="REPLACE-ME/trainer:latest", show_default=True, help="kueue/jobset: the image.")
@click.option("--partition", help="slurm: the partition to submit to.")
@click.option("--rack-label", help="kueue/jobset: the node label naming a rack (default: the one the fleet's racks "
                                   "carry, from fleet import).")
@click.option("--pod-label", help="kueue/jobset: the node label naming a pod (default: as --rack-label).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for the files (created if missing; files of the same names are replaced atomically).")
@quiet_option()
def export(source, target, fleet_file, queue, namespace, image, partition, rack_label, pod_label, out_dir, quiet):
    """Write a result (or, for slurm-conf, a fleet) where a cluster takes it:
    Kueue Jobs or JobSets, sbatch scripts, Ray placement groups, or a Slurm
    configuration.  Every job is pinned to the nodes of the racks it was placed
    on (docs/INTEGRATION.md)."""
    if target == "slurm-conf":
        files = slurm.slurm_conf(load_fleet(source))
    else:
        result = validate_result(read_json(source), file=source)
        fleet = load_fleet(fleet_file)
        try:
            if target in ("kueue", "jobset"):
                files = {name: kubernetes.dumps(m) for name, m in kubernetes.manifests(
                    result, fleet, kind=target, queue=queue, namespace=namespace, image=image,
                    rack_label=rack_label, pod_label=pod_label).items()}
            elif target == "slurm":
                files = slurm.sbatch_scripts(result, fleet, partition=partition)
            else:
                files = ray_export.files(result, fleet)
        except InputError as exc:
            raise exc.located(file=source) from None
        bare = sorted({a["rack"] for p in result["placements"] for a in p["allocations"]}
                      & {r.id for r in fleet.racks if not r.nodes})
        if bare and not quiet:
            click.echo(f"note: {len(bare)} rack(s) list no nodes ({', '.join(bare[:3])}{'...' if len(bare) > 3 else ''}"
                       f"): their work is pinned to a host named after the rack (trnsched fleet import records "
                       f"real nodes)", err=True)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise OutputError(out_dir, exc.strerror or str(exc)) from None
    for name, text in files.items():
        write_atomic(os.path.join(out_dir, name), text)
    if not quiet:
        click.echo(f"wrote {len(files)} files to {out_dir}", err=True)


@main.command()
@click.argument("result_file", metavar="RESULT", type=click.Path(dir_okay=False))
@fleet_option("The fleet the result was made on (default: built-in fleet).")
@output_option("Write the page here (atomically); default: print it.")
def report(result_file, fleet_file, output):
    """A self-contained HTML page of a result (`solve -o`) or a replay
    (`simulate -o`): the fleet's pods, racks and chips coloured by job, use and
    power against caps, energy and cost, unplaced jobs and why, a Gantt chart
    for timed results, the bound and gap.  No network needed to view it."""
    data = read_json(result_file)
    fleet = load_fleet(fleet_file)
    try:
        if isinstance(data, dict) and isinstance(data.get("placements"), list):
            page = render_html(data, fleet)
        elif isinstance(data, dict) and "utilisation_series" in data:
            page = render_simulation_html(data, fleet)
        else:
            raise InputError("is neither a trnsched result (placements) nor a replay (utilisation_series)",
                             file=result_file)
    except ValueError as exc:               # a rack the fleet does not have: another fleet's result
        raise InputError(str(exc), file=result_file) from None
    if output:
        write_atomic(output, page)
    else:
        click.echo(page, nl=False)


@main.command()
@click.option("--jobs", "n_jobs", type=click.IntRange(min=1, max=10 ** 7), required=True, help="How many jobs.")
@click.option("--racks", "n_racks", type=click.IntRange(min=1, max=10 ** 6), required=True,
              help="How many racks (~40 chips each; ~90 with --ultracluster).")
@click.option("--ultracluster", is_flag=True,
              help="An UltraCluster: pods of 64 racks, most of them Trn3 UltraServers (13,000 racks: ~1.1M chips), "
                   "and pre-training jobs sized for it.")
@seed_option()
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for jobs.json and fleet.json (created if missing).")
def generate(n_jobs, n_racks, ultracluster, seed, out_dir):
    """Write a seeded synthetic workload: jobs.json and fleet.json (distributions: trnsched/inputs/generate.py)."""
    jobs, fleet = generate_workload(n_jobs, n_racks, seed, ultracluster)
    os.makedirs(out_dir, exist_ok=True)
    write_atomic(os.path.join(out_dir, "jobs.json"), json.dumps(jobs, indent=1) + "\n")
    write_atomic(os.path.join(out_dir, "fleet.json"), json.dumps(fleet, indent=1) + "\n")
    total = sum(sum(r["chips"].values()) for r in fleet["racks"])
    click.echo(f"wrote {out_dir}/jobs.json ({n_jobs} jobs) and {out_dir}/fleet.json ({n_racks} racks, {total} chips)")
