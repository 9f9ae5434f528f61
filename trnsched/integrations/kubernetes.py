"""Kubernetes: a fleet read from `kubectl get nodes -o json` (and pods, for
busy chips), and a result written as Kueue-managed Jobs or JobSets.

Conventions (docs/INTEGRATION.md has them with their sources):
- chips are the node's allocatable `aws.amazon.com/neuron` (whole Trainium
  devices) or `nvidia.com/gpu`; the chip type comes from the instance type
  label `node.kubernetes.io/instance-type` (instances.py's table);
- a rack (scale-up domain) is the nodes sharing the first of: the label the
  user names, `nvidia.com/gpu.clique` (a GB200 NVL72), the Neuron device
  plugin's `neuron.amazonaws.com/ultraserver-server-id-4` or `-2` (a Trn
  UltraServer), `topology.k8s.aws/ultraserver-id` (SageMaker HyperPod); else a
  node is a rack of its own;
- a pod (jobs never span two) is the nodes sharing `--pod-label`, by default
  `topology.k8s.aws/network-node-layer-2` (EC2's instance topology, layer 1
  the broadest), else `topology.k8s.aws/capacity-block-id`;
- busy chips are the requests of pods bound to the node and not finished.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

from trnsched.inputs.errors import InputError
from trnsched.inputs.fleet import Fleet, Rack
from trnsched.integrations.instances import InstanceType, instance_table
from trnsched.integrations.pinning import Pinned, pin, unique_name

RESOURCES = {"neuron": "aws.amazon.com/neuron", "cuda": "nvidia.com/gpu"}
INSTANCE_LABEL = "node.kubernetes.io/instance-type"
HOSTNAME_LABEL = "kubernetes.io/hostname"
RACK_LABELS = ("nvidia.com/gpu.clique", "neuron.amazonaws.com/ultraserver-server-id-4",
               "neuron.amazonaws.com/ultraserver-server-id-2", "topology.k8s.aws/ultraserver-id")
POD_LABELS = ("topology.k8s.aws/network-node-layer-2", "topology.k8s.aws/capacity-block-id")
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
REQUIRED_TOPOLOGY = "kueue.x-k8s.io/podset-required-topology"
PREFERRED_TOPOLOGY = "kueue.x-k8s.io/podset-preferred-topology"


# ------------------------------------------------------------------ import

def fleet_from_kubectl(nodes: Any, pods: Any = None, *, file: str, pods_file: str | None = None,
                       instance_types: Mapping[str, InstanceType] | None = None, rack_label: str | None = None,
                       pod_label: str | None = None) -> dict:
    """A fleet file's contents from decoded `kubectl get nodes -o json` (a List
    of Nodes) and, optionally, `kubectl get pods -A -o json`."""
    table = instance_table() if instance_types is None else instance_types
    busy = _busy_chips(pods, pods_file) if pods is not None else {}
    racks: dict[str, dict] = {}
    for i, node in enumerate(_items(nodes, file, "Node")):
        meta = node.get("metadata") or {}
        name, labels = meta.get("name"), meta.get("labels") or {}
        if not isinstance(name, str) or not isinstance(labels, dict):
            raise InputError("a node needs metadata.name and metadata.labels", file=file, field=f"items[{i}]")
        status = node.get("status") or {}
        allocatable = status.get("allocatable") if isinstance(status, dict) else None
        if not isinstance(allocatable, dict):
            raise InputError("a node needs status.allocatable as an object", file=file, field=f"items[{i}]")
        counts = {stack: _quantity(allocatable.get(res), file, f"items[{i}] ({name}).status.allocatable.{res}")
                  for stack, res in RESOURCES.items()}
        if not any(counts.values()):
            continue                                    # a CPU node: not part of the fleet
        instance = labels.get(INSTANCE_LABEL)
        kind = table.get(instance) if isinstance(instance, str) else None
        if kind is None:
            raise InputError(f"node {name}: unknown instance type {instance!r}; known: {', '.join(sorted(table))} "
                             f"(add it with --instance-types)", file=file, field=f"items[{i}].metadata.labels")
        chips = counts["neuron"] or counts["cuda"]
        if kind.chips is not None and chips > kind.chips:
            raise InputError(f"node {name}: {chips} allocatable chips, but a {instance} has {kind.chips}", file=file,
                             field=f"items[{i}].status.allocatable")
        rack_key = next((k for k in ([rack_label] if rack_label else list(RACK_LABELS)) if k in labels), None)
        rack_id = str(labels[rack_key]) if rack_key else name
        pod_key = next((k for k in ([pod_label] if pod_label else list(POD_LABELS)) if k in labels), None)
        pod = labels[pod_key] if pod_key else "default"
        rack = racks.setdefault(rack_id, {"id": rack_id, "pod": pod, "chips": {}, "used": {},
                                          "nodes": [], "labels": {rack_key: labels[rack_key]} if rack_key else
                                          {HOSTNAME_LABEL: labels.get(HOSTNAME_LABEL, name)}})
        if pod_key:
            rack["labels"][pod_key] = pod
        if rack["pod"] != pod:
            raise InputError(f"node {name} is in pod {pod!r} but its rack {rack_id!r} is in {rack['pod']!r}",
                             file=file, field=f"items[{i}].metadata.labels")
        spec = node.get("spec") if isinstance(node.get("spec"), dict) else {}
        conditions = status.get("conditions") or []
        ready = any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
                    for c in conditions) or not conditions
        # A cordoned or not-ready node takes no work: its chips count as busy.
        used = chips if spec.get("unschedulable") is True or not ready else min(busy.get(name, 0), chips)
        t = kind.chip_type
        rack["chips"][t] = rack["chips"].get(t, 0) + chips
        if used:
            rack["used"][t] = rack["used"].get(t, 0) + used
        rack["nodes"].append({"name": name, "chip_type": t, "chips": chips, "used": used})
    if not racks:
        raise InputError(f"no node has allocatable {' or '.join(RESOURCES.values())}", file=file)
    return {"name": f"imported from {file}", "racks": list(racks.values())}


def _items(data: Any, file: str, kind: str) -> list[dict]:
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise InputError(f"expected `kubectl get {kind.lower()}s -o json` output (a List with items)", file=file,
                         field="items")
    return items


def _busy_chips(pods: Any, file: str | None) -> dict[str, int]:
    """Chips requested by pods bound to each node and not finished."""
    busy: dict[str, int] = {}
    for i, pod in enumerate(_items(pods, file or "<pods>", "Pod")):
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        if not isinstance(spec, dict) or not isinstance(status, dict):
            raise InputError("a pod needs spec and status objects", file=file, field=f"items[{i}]")
        node, phase = spec.get("nodeName"), status.get("phase")
        if not node or phase in ("Succeeded", "Failed"):
            continue
        total = 0
        for c in spec.get("containers") or []:
            res = c.get("resources") if isinstance(c, dict) else None
            if not isinstance(res, dict):
                continue
            res = {k: v for k, v in res.items() if isinstance(v, dict)}
            for res_name in RESOURCES.values():
                amount = (res.get("requests") or {}).get(res_name, (res.get("limits") or {}).get(res_name))
                total += _quantity(amount, file or "<pods>", f"items[{i}].spec.containers.resources.{res_name}")
        busy[node] = busy.get(node, 0) + total
    return busy


def _quantity(value: Any, file: str, field: str) -> int:
    """A Kubernetes quantity of whole devices ("8", 8); absent is 0."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,7}", value):
        return int(value)
    raise InputError(f"must be a whole number of devices, got {value!r}", file=file, field=field)


# ------------------------------------------------------------------ export

def manifests(result: Mapping[str, Any], fleet: Fleet, *, kind: str = "kueue", queue: str = "trnsched",
              namespace: str = "default", image: str = "REPLACE-ME/trainer:latest",
              rack_label: str | None = None, pod_label: str | None = None) -> dict[str, dict]:
    """One manifest per placed job, by file name; plus the WorkloadPriorityClass
    objects they name.  kind "kueue": a batch/v1 Job when every pod asks the
    same chips, else a JobSet; kind "jobset": always a JobSet."""
    out: dict[str, dict] = {}
    names: set[str] = set()
    priorities: set[int] = set()
    for p in pin(result, fleet):
        name = unique_name(_dns_name(p.job), names)
        priority = int(p.placement.get("priority", 1))
        priorities.add(priority)
        uniform = len(p.groups()) == 1
        manifest = (_job(p, fleet, name, namespace, queue, priority, image, rack_label, pod_label)
                    if kind == "kueue" and uniform else
                    _jobset(p, fleet, name, namespace, queue, priority, image, rack_label, pod_label))
        out[f"{name}.json"] = manifest
    out["priority-classes.json"] = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "WorkloadPriorityClass",
         "metadata": {"name": priority_class(v)}, "value": v,
         "description": f"trnsched priority {v}: placed priority is maximised first"} for v in sorted(priorities)]}
    return out


def priority_class(priority: int) -> str:
    return f"trnsched-priority-{priority}"


def _metadata(p: Pinned, name: str, namespace: str, queue: str, priority: int) -> dict:
    annotations = {"trnsched.io/job": p.job, "trnsched.io/chip-type": p.chip_type,
                   "trnsched.io/racks": ",".join(r.id for r in p.racks)}
    if "role" in p.placement:     # one pool of a disaggregated service
        annotations.update({"trnsched.io/service": p.placement["service"], "trnsched.io/role": p.placement["role"]})
    start_h = float(p.placement.get("start_h") or 0.0)
    if start_h > 0:
        # Kueue has no start time; the job is meant to start this long after the
        # result was made (a --horizon schedule): submit it then (docs/INTEGRATION.md).
        annotations["trnsched.io/start-after-hours"] = f"{start_h:g}"
    return {"name": name, "namespace": namespace,
            "labels": {QUEUE_LABEL: queue, PRIORITY_LABEL: priority_class(priority),
                       "app.kubernetes.io/managed-by": "trnsched"},
            "annotations": annotations}


def _pod_template(p: Pinned, fleet: Fleet, slots: list, chips: int, image: str, rack_label: str | None,
                  pod_label: str | None) -> dict:
    stack = fleet.chip_types[p.chip_type].stack
    resource = RESOURCES[stack]
    layout = p.placement.get("layout") or {}
    env = [{"name": f"TRNSCHED_{k.upper()}", "value": str(int(layout[k]))} for k in ("tp", "pp", "dp", "ep")
           if k in layout]
    env += [{"name": "TRNSCHED_JOB", "value": p.job}, {"name": "TRNSCHED_CHIPS", "value": str(p.placement["chips"])}]
    rack_key, pod_key = topology_keys(p.racks[0], rack_label, pod_label)
    if len(p.racks) == 1:
        topology = {REQUIRED_TOPOLOGY: rack_key}            # one scale-up domain, as placed
    else:
        topology = {REQUIRED_TOPOLOGY: pod_key} if pod_key else {PREFERRED_TOPOLOGY: rack_key}
    job_label = {"trnsched.io/job-name": _dns_name(p.job)}
    return {
        "metadata": {"annotations": topology, "labels": {"app.kubernetes.io/managed-by": "trnsched", **job_label}},
        "spec": {
            "restartPolicy": "Never",
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In",
                                           "values": [s.node for s in slots]}]}]}},
                # one pod per pinned node: two of the job's pods on one node would
                # take chips pinned to another job
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": job_label}, "topologyKey": HOSTNAME_LABEL}]}},
            "tolerations": [{"key": resource, "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "worker", "image": image, "env": env,
                            "resources": {"requests": {resource: str(chips)}, "limits": {resource: str(chips)}}}],
        },
    }


def _job(p: Pinned, fleet: Fleet, name: str, namespace: str, queue: str, priority: int, image: str,
         rack_label: str | None, pod_label: str | None) -> dict:
    (chips, slots), = p.groups()
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(p, name, namespace, queue, priority),
            "spec": {"parallelism": len(slots), "completions": len(slots), "completionMode": "Indexed",
                     "backoffLimit": 0,
                     "template": _pod_template(p, fleet, slots, chips, image, rack_label, pod_label)}}


def _jobset(p: Pinned, fleet: Fleet, name: str, namespace: str, queue: str, priority: int, image: str,
            rack_label: str | None, pod_label: str | None) -> dict:
    replicated = []
    for chips, slots in p.groups():
        replicated.append({"name": f"chips-{chips}", "replicas": 1, "template": {"spec": {
            "parallelism": len(slots), "completions": len(slots), "completionMode": "Indexed", "backoffLimit": 0,
            "template": _pod_template(p, fleet, slots, chips, image, rack_label, pod_label)}}})
    return {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet",
            "metadata": _metadata(p, name, namespace, queue, priority),
            "spec": {"replicatedJobs": replicated}}


def topology_keys(rack: Rack, rack_label: str | None = None, pod_label: str | None = None
                  ) -> tuple[str, str | None]:
    """The node labels naming a rack's scale-up domain and its pod, for Kueue's
    topology annotations: the ones given, else the ones the import recorded on
    the rack (the pod's is the label whose value is the rack's pod), else the
    built-in ones it carries; a rack without labels is its own host."""
    pod_key = pod_label or next((k for k, v in rack.labels.items() if v == rack.pod and k != rack_label),
                                None)
    rack_key = rack_label or next((k for k in rack.labels if k != pod_key), None) or HOSTNAME_LABEL
    return rack_key, pod_key


def _dns_name(job: str) -> str:
    """A Kubernetes object name (RFC 1123 label, 63 characters at most)."""
    name = re.sub(r"[^a-z0-9-]+", "-", job.lower()).strip("-")[:63].strip("-")
    return name or "job"


def dumps(manifest: dict) -> str:
    return json.dumps(manifest, indent=2) + "\n"
