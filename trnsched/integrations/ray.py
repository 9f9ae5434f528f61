"""Ray: a result as placement groups, one per placed job, one bundle per node
it was pinned to, each bundle held to its rack and node by
`bundle_label_selector` (Ray 2.47+) on the labels `trnsched.io/rack` and
`trnsched.io/node`, which each Ray node is started with (`ray start --labels
trnsched.io/rack=<rack>,trnsched.io/node=<node>`, docs/INTEGRATION.md).
A bundle asks `GPU` for Nvidia chips and `neuron_cores` for Trainium (chips x
NeuronCores per chip, from the instance table).  Written as JSON and as a
Python script that creates the groups and waits until they are placed.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

from trnsched.inputs.fleet import Fleet
from trnsched.integrations.instances import builtin_instance_types
from trnsched.integrations.pinning import pin

NODE_LABEL = "trnsched.io/node"
RACK_LABEL = "trnsched.io/rack"


def neuron_cores_per_chip(chip_type: str) -> int:
    """NeuronCores Ray counts per chip of this type (the instance table's, at
    the default logical-core setting); 1 where no instance type says."""
    for kind in builtin_instance_types().values():
        if kind.chip_type == chip_type and kind.neuron_cores_per_chip:
            return kind.neuron_cores_per_chip
    return 1


def label_value(name: str) -> str:
    """A Ray label value (as Kubernetes': 63 characters of letters, digits, '-',
    '_' and '.', starting and ending alphanumeric)."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:63].strip("_.-")
    return value or "x"


def placement_groups(result: Mapping[str, Any], fleet: Fleet) -> list[dict]:
    """Per placed job: name, strategy, bundles and their label selectors."""
    groups = []
    for p in pin(result, fleet):
        neuron = fleet.chip_types[p.chip_type].stack == "neuron"
        bundles, selectors = [], []
        for s in p.slots:
            bundles.append({"neuron_cores": s.chips * neuron_cores_per_chip(p.chip_type)} if neuron
                           else {"GPU": s.chips})
            selectors.append({RACK_LABEL: label_value(s.rack.id), NODE_LABEL: label_value(s.node)})
        groups.append({"name": f"trnsched-{p.job}", "job": p.job, "chip_type": p.chip_type,
                       "strategy": "STRICT_PACK" if len(bundles) == 1 else "STRICT_SPREAD",
                       "bundles": bundles, "bundle_label_selector": selectors,
                       "layout": {k: int(v) for k, v in (p.placement.get("layout") or {}).items()
                                  if k in ("tp", "pp", "dp", "ep")}})
    return groups


SCRIPT = '''\
"""Placement groups for trnsched's placements (trnsched export --to ray).

Each Ray node must carry the labels trnsched.io/rack=<its rack> and
trnsched.io/node=<its node name> (the fleet file's names, with characters Ray
does not take as '_'):
    ray start --address=<head> --labels=trnsched.io/rack=<rack>,trnsched.io/node=$(hostname)
Run with RAY_ADDRESS set (or on a node of the cluster):  python placement_groups.py
Needs Ray 2.47 or later (bundle_label_selector).
"""
import json
import os

import ray
from ray.util.placement_group import placement_group

GROUPS = json.loads(r"""{groups}""")


def create(groups=GROUPS):
    """Create every group; returns {{job: PlacementGroup}}."""
    return {{g["job"]: placement_group(g["bundles"], strategy=g["strategy"], name=g["name"],
                                     bundle_label_selector=g["bundle_label_selector"])
            for g in groups}}


if __name__ == "__main__":
    ray.init(address=os.environ.get("RAY_ADDRESS", "auto"))
    created = create()
    for job, pg in created.items():
        ray.get(pg.ready(), timeout=float(os.environ.get("TRNSCHED_PG_TIMEOUT", "600")))
        print(f"{{job}}: placed")
'''


def files(result: Mapping[str, Any], fleet: Fleet) -> dict[str, str]:
    groups = placement_groups(result, fleet)
    return {"placement_groups.json": json.dumps(groups, indent=2) + "\n",
            "placement_groups.py": SCRIPT.format(groups=json.dumps(groups, indent=1))}
