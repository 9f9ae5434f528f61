"""Slurm: sbatch scripts for a result, slurm.conf/topology.conf for a fleet,
and a fleet read from `scontrol show node`.

Conventions (docs/INTEGRATION.md has them with their sources):
- a rack's nodes are Slurm nodes; GRES `gpu:<chip type>:<n>` for Nvidia chips
  and `neuron:<chip type>:<n>` for Trainium (what `GresTypes=gpu,neuron` names);
- a job is `--nodes`/`--nodelist` of its pinned nodes with `--gres` per node;
  nodes holding different chip counts make a heterogeneous job, one component
  per count (`#SBATCH hetjob`);
- topology is `topology/tree`: one switch per rack, one per pod above its racks;
  a job on one rack asks `--switches=1` (Slurm 22.05 has no `--segment`);
- `--begin=now+<minutes>` carries a `--horizon` start; the job's priority and
  trnsched's layout travel as `--comment` and environment variables.
"""
from __future__ import annotations

import json
import math
import re
import shlex
from typing import Any, Mapping

from trnsched.inputs.errors import InputError
from trnsched.inputs.fleet import Fleet
from trnsched.integrations.instances import InstanceType, chip_for
from trnsched.integrations.pinning import Pinned, nodes_of, pin, unique_name

GRES = {"cuda": "gpu", "neuron": "neuron"}
RACK_FEATURE, POD_FEATURE = "rack_", "pod_"       # node features naming a node's rack and pod
# What a node in a generated slurm.conf declares besides its chips: Slurm needs
# CPUs and memory; these are placeholders the site replaces (documented).
NODE_DEFAULTS = "CPUs=192 RealMemory=2000000"


def gres(fleet: Fleet, chip_type: str, chips: int) -> str:
    return f"{GRES[fleet.chip_types[chip_type].stack]}:{chip_type}:{chips}"


def sbatch_scripts(result: Mapping[str, Any], fleet: Fleet, *, partition: str | None = None,
                   command: str = "srun ./train.sh") -> dict[str, str]:
    """One sbatch script per placed job, by file name."""
    taken: set[str] = set()
    return {f"{unique_name(_safe(p.job), taken, 200)}.sbatch": _script(p, fleet, partition, command)
            for p in pin(result, fleet)}


def _script(p: Pinned, fleet: Fleet, partition: str | None, command: str) -> str:
    layout = p.placement.get("layout") or {}
    lines = ["#!/bin/bash",
             f"# trnsched: {p.job} on {p.placement['chips']} {p.chip_type} "
             f"({', '.join(r.id for r in p.racks)}; pod {p.pod})",
             f"#SBATCH --job-name={_safe(p.job)}"]
    start_h = float(p.placement.get("start_h") or 0.0)
    if start_h > 0:
        lines.append(f"#SBATCH --begin=now+{math.ceil(start_h * 60)}minutes")
    lines.append(f"#SBATCH --comment={shlex.quote('trnsched job ' + p.job)}")
    groups = p.groups()
    for i, (chips, slots) in enumerate(groups):
        if i:
            lines.append("#SBATCH hetjob")
        nodes = ",".join(s.node for s in slots)
        component = [f"--nodes={len(slots)}", f"--nodelist={nodes}", f"--gres={gres(fleet, p.chip_type, chips)}",
                     "--exclusive" if all(s.chips == _node_chips(s) for s in slots) else None]
        if partition:
            component.append(f"--partition={partition}")
        if len(p.racks) == 1 and i == 0:
            component.append("--switches=1")           # all on one rack: one leaf switch
        lines.append("#SBATCH " + " ".join(c for c in component if c))
    lines += ["", "# trnsched's layout for the framework to use"]
    for key in ("tp", "pp", "dp", "ep"):
        if key in layout:
            lines.append(f"export TRNSCHED_{key.upper()}={int(layout[key])}")
    lines += [f"export TRNSCHED_JOB={shlex.quote(p.job)}", f"export TRNSCHED_CHIP_TYPE={p.chip_type}",
              f"export TRNSCHED_CHIPS={p.placement['chips']}", ""]
    if len(groups) > 1 and command.startswith("srun "):
        # srun runs on het-group 0 alone unless told: every component, one step
        command = f"srun --het-group=0-{len(groups) - 1} {command[len('srun '):]}"
    lines += [command, ""]
    return "\n".join(lines)


def _node_chips(slot) -> int:
    return next(n.chips for n in nodes_of(slot.rack) if n.name == slot.node)


def slurm_conf(fleet: Fleet, *, cluster: str = "trnsched", controller: str = "localhost", extra: str = "",
               node_extra: str = "") -> dict[str, str]:
    """slurm.conf (the nodes and a partition of all), topology.conf (a switch per
    rack, one per pod above its racks) and gres.conf for the fleet.  `extra`
    goes into slurm.conf's head (a site's paths, auth), `node_extra` onto every
    NodeName line (NodeAddr=, State=)."""
    node_lines, gres_lines, rack_switches = [], [], []
    pods: dict[str, list[str]] = {}
    for rack in fleet.racks:
        names = []
        for node in nodes_of(rack):
            kind = GRES[fleet.chip_types[node.chip_type].stack]
            node_lines.append(f"NodeName={node.name} {NODE_DEFAULTS} Gres={kind}:{node.chip_type}:{node.chips} "
                              f"Feature={RACK_FEATURE}{_safe(rack.id)},{POD_FEATURE}{_safe(rack.pod)},{node.chip_type}"
                              + (f" {node_extra}" if node_extra else ""))
            gres_lines.append(f"NodeName={node.name} Name={kind} Type={node.chip_type} Count={node.chips}")
            names.append(node.name)
        rack_switches.append(f"SwitchName=rack_{_safe(rack.id)} Nodes={','.join(names)}")
        pods.setdefault(rack.pod, []).append(f"rack_{_safe(rack.id)}")
    pod_switches = [f"SwitchName=pod_{_safe(pod)} Switches={','.join(racks)}" for pod, racks in pods.items()]
    partitions = ["PartitionName=all Nodes=ALL Default=YES MaxTime=INFINITE State=UP"]
    conf = "\n".join([
        "# slurm.conf written by trnsched from its fleet; CPUs and RealMemory are placeholders.",
        f"ClusterName={cluster}", f"SlurmctldHost={controller}",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "TopologyPlugin=topology/tree", "GresTypes=gpu,neuron",
        *([extra] if extra else []), "", *node_lines, "", *partitions, ""])
    return {"slurm.conf": conf, "topology.conf": "\n".join(rack_switches + pod_switches) + "\n",
            "gres.conf": "\n".join(gres_lines) + "\n"}


def fleet_from_scontrol(text: str, *, file: str, instance_types: Mapping[str, InstanceType] | None = None) -> dict:
    """A fleet file's contents from `scontrol show node --json` (Slurm 23.02+)
    or `scontrol show node -o` (one line per node, any version).  A node's chip
    type is its GRES type (`gpu:h100:8`), else an instance type among its
    features; its rack is the feature starting `rack_` (else the node alone),
    its pod the one starting `pod_` (else "default"); busy chips are its GRES in
    use."""
    nodes = _scontrol_nodes(text, file)
    racks: dict[str, dict] = {}
    for node in nodes:
        name = node["name"]
        chip_type, chips = _node_chips_from_gres(node["gres"], node["features"], instance_types, file, name)
        if chips == 0:
            continue                                    # a node without accelerators: not part of the fleet
        # A node down, drained or failing takes no work: its chips count as busy.
        used = chips if node["unavailable"] else _gres_used(node["gres_used"], chip_type)
        rack_id = next((f[len(RACK_FEATURE):] for f in node["features"] if f.startswith(RACK_FEATURE)), name)
        pod = next((f[len(POD_FEATURE):] for f in node["features"] if f.startswith(POD_FEATURE)), "default")
        rack = racks.setdefault(rack_id, {"id": rack_id, "pod": pod, "chips": {}, "used": {}, "nodes": [],
                                          "labels": {"slurm.feature": f"{RACK_FEATURE}{rack_id}"}
                                          if rack_id != name else {}})
        if rack["pod"] != pod:
            raise InputError(f"node {name} is in pod {pod!r}, its rack {rack_id!r} in {rack['pod']!r}", file=file,
                             field="nodes")
        rack["chips"][chip_type] = rack["chips"].get(chip_type, 0) + chips
        if used:
            rack["used"][chip_type] = rack["used"].get(chip_type, 0) + used
        rack["nodes"].append({"name": name, "chip_type": chip_type, "chips": chips, "used": used})
    if not racks:
        raise InputError("no node has accelerator GRES (gpu or neuron) or a known instance type", file=file)
    return {"name": f"imported from {file}", "racks": list(racks.values())}


def _scontrol_nodes(text: str, file: str) -> list[dict]:
    """Nodes as {name, gres, gres_used, features} from either output form."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", file=file) \
                from None
        raw_nodes = data.get("nodes") if isinstance(data, dict) else None
        if not isinstance(raw_nodes, list):
            raise InputError("expected scontrol's JSON with a 'nodes' list", file=file, field="nodes")
        out = []
        for i, n in enumerate(raw_nodes):
            if not isinstance(n, dict) or not isinstance(n.get("name"), str):
                raise InputError("a node needs a 'name'", file=file, field=f"nodes[{i}]")
            features = n.get("active_features", n.get("features", []))
            if isinstance(features, str):
                features = [f for f in features.split(",") if f]
            if not isinstance(features, list):
                raise InputError("features must be a list or a comma-separated string", file=file,
                                 field=f"nodes[{i}].features")
            state = n.get("state", "")
            flags = [str(x) for x in (state if isinstance(state, list) else [state])] + \
                [str(x) for x in n.get("state_flags") or [] if isinstance(n.get("state_flags"), list)]
            out.append({"name": n["name"], "gres": str(n.get("gres") or ""), "gres_used": str(n.get("gres_used") or ""),
                        "features": [str(f) for f in features], "unavailable": _unavailable(flags)})
        return out
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "NodeName" not in fields:
            raise InputError(f"line {lineno} is not `scontrol show node -o` output (no NodeName=)", file=file)
        features = fields.get("ActiveFeatures") or fields.get("AvailableFeatures") or ""
        out.append({"name": fields["NodeName"], "gres": "" if fields.get("Gres") == "(null)" else fields.get("Gres", ""),
                    "gres_used": fields.get("GresUsed", ""),
                    "features": [f for f in features.split(",") if f and f != "(null)"],
                    "unavailable": _unavailable(re.split(r"[+*~#!%$@^-]", fields.get("State", "")))})
    return out


def _unavailable(states: list[str]) -> bool:
    return any(s.strip().upper() in ("DOWN", "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING", "NOT_RESPONDING",
                                     "INVALID_REG", "MAINTENANCE", "RESERVED")
               for s in states)


def _node_chips_from_gres(spec: str, features: list[str], instance_types: Mapping[str, InstanceType] | None, file: str,
                          node: str) -> tuple[str, int]:
    count = None
    for item in filter(None, spec.split(",")):
        parts = re.sub(r"\(.*\)", "", item).split(":")
        if parts[0] in ("gpu", "neuron") and len(parts) == 3 and re.fullmatch(r"[0-9]{1,7}", parts[2]):
            return parts[1], int(parts[2])
        if parts[0] in ("gpu", "neuron") and len(parts) == 2 and re.fullmatch(r"[0-9]{1,7}", parts[1]):
            count = int(parts[1])               # a count without a type: the instance type must say which
            break
    for feature in features:
        found = chip_for(feature, instance_types)
        if found is not None and (count or found.chips):
            return found.chip_type, count or found.chips
    if any(item.startswith(("gpu", "neuron")) for item in spec.split(",")):
        raise InputError(f"node {node}: GRES {spec!r} names no chip type and no feature is a known instance type "
                         f"(give GRES as gpu:<type>:<n>, or map the instance type with --instance-types)",
                         file=file, field="gres")
    return "", 0


def _gres_used(spec: str, chip_type: str) -> int:
    used = 0
    for item in filter(None, spec.split(",")):
        parts = re.sub(r"\(.*\)", "", item).split(":")
        if parts[0] in ("gpu", "neuron") and parts[-1].isdigit() and (len(parts) < 3 or parts[1] == chip_type):
            used += int(parts[-1])
    return used


def _safe(name: str) -> str:
    """A name Slurm and file systems take: letters, digits, '-', '_', '.'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
