"""From decision to cluster: a fleet imported from `kubectl get nodes` (and
Slurm), solved on, and exported to Slurm (accepted by a real slurmctld's
`sbatch --test-only`), Kueue/JobSet (loaded into the official Kubernetes
client's models) and Ray (placement groups placed on a real local Ray)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from checker import check
from conftest import ROOT
from trnsched.inputs.errors import InputError
from trnsched.inputs.fleet import parse_fleet
from trnsched.integrations import kubernetes as k8s, ray as ray_export, slurm
from trnsched.integrations.kubernetes import fleet_from_kubectl
from trnsched.integrations.pinning import nodes_of, pin
from trnsched.integrations.slurm import fleet_from_scontrol
from trnsched.result import workloads
from trnsched.solve import solve

DATA = ROOT / "tests" / "data"
NODES, PODS = json.loads((DATA / "nodes.json").read_text()), json.loads((DATA / "pods.json").read_text())
NEEDS_SLURM = os.environ.get("TRNSCHED_REQUIRE_SLURM") == "1"


def trnsched(*args, check_rc=True):
    res = subprocess.run([sys.executable, "-m", "trnsched", *map(str, args)], capture_output=True, text=True,
                         cwd=ROOT)
    if check_rc:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def imported():
    return fleet_from_kubectl(NODES, PODS, file="nodes.json", pods_file="pods.json")


@pytest.fixture(scope="module")
def solved(imported):
    """examples/jobs.json solved on the imported fleet (the fleet, the result)."""
    fleet = parse_fleet(imported, file="nodes.json")
    jobs = json.loads((ROOT / "examples" / "jobs.json").read_text())
    result = solve(jobs, fleet, time_limit=5.0, workers=1, deterministic=True).to_dict()
    check(jobs, imported, result)
    assert len(result["placements"]) >= 10
    return fleet, result


# ------------------------------------------------------------------ import

def test_kubectl_import_finds_every_scale_up_domain_its_chips_and_busy_ones(imported):
    racks = {r["id"]: r for r in imported["racks"]}
    by_type = Counter()
    for r in imported["racks"]:
        for t, n in r["chips"].items():
            by_type[t] += n
    # Trn2 UltraServer (4 x 16), Trn3 Gen2 UltraServer (36 x 4), 4 p5 (8 each), an NVL72 (18 x 4); no CPU node
    assert by_type == {"trn2": 64, "trn3": 144, "h100": 32, "gb200": 72}
    assert len(racks) == 7
    assert racks["trn2-us-7f3a"]["used"] == {"trn2": 8} and len(racks["trn2-us-7f3a"]["nodes"]) == 4
    nvl = racks["5c2e6b1a-90d4-4c1e-8f0a-3b7d2e9c4f11.1"]
    assert nvl["chips"] == {"gb200": 72} and nvl["labels"]["nvidia.com/gpu.clique"].endswith(".1")
    p5_busy = sorted(r["used"].get("h100", 0) for r in imported["racks"] if "h100" in r["chips"])
    assert p5_busy == [0, 0, 4, 8], "running pods count; a Succeeded one does not"
    pods = {r["pod"] for r in imported["racks"]}
    assert pods == {"nn-7f1e2d3c4b5a0011", "nn-7f1e2d3c4b5a0022"}, "pods from network-node-layer-2"
    parse_fleet(imported)            # a valid fleet file


def test_kubectl_import_from_the_command_line(tmp_path):
    out = tmp_path / "fleet.json"
    res = trnsched("fleet", "import", "--kubectl", DATA / "nodes.json", "--pods", DATA / "pods.json", "-o", out)
    assert "7 racks" in res.stderr and "64 trn2 (8 busy)" in res.stderr
    shown = trnsched("fleet", "--fleet", out, "--json")
    assert json.loads(shown.stdout)["totals"]["gb200"]["chips"] == 72


@pytest.mark.parametrize("change, words", [
    (lambda n: n["items"][0]["metadata"]["labels"].update({"node.kubernetes.io/instance-type": "x9.huge"}),
     "unknown instance type 'x9.huge'"),
    (lambda n: n["items"][0]["status"]["allocatable"].update({"aws.amazon.com/neuron": "lots"}),
     "must be a whole number of devices"),
    (lambda n: n["items"][0]["status"]["allocatable"].update({"aws.amazon.com/neuron": "32"}),
     "32 allocatable chips, but a trn2u.48xlarge has 16"),
    (lambda n: n.pop("items"), "a List with items"),
])
def test_kubectl_import_bad_input_is_one_line_naming_the_file(tmp_path, change, words):
    nodes = json.loads(json.dumps(NODES))
    change(nodes)
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps(nodes))
    res = trnsched("fleet", "import", "--kubectl", path, "-o", tmp_path / "fleet.json", check_rc=False)
    assert res.returncode == 2 and words in res.stderr and str(path) in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "fleet.json").exists()


def test_a_rack_label_the_user_names_groups_nodes_into_racks():
    nodes = json.loads(json.dumps(NODES))
    for n in nodes["items"][40:44]:        # the four p5: one rack label -> would be 32 h100 in one 8-domain
        n["metadata"]["labels"]["example.com/rack"] = "r1"
    fleet = fleet_from_kubectl(nodes, file="nodes.json", rack_label="example.com/rack")
    rack = next(r for r in fleet["racks"] if r["id"] == "r1")
    assert rack["chips"] == {"h100": 32}
    with pytest.raises(InputError, match="32 h100 exceed one scale-up domain of 8"):
        parse_fleet(fleet, file="nodes.json")


SCONTROL_JSON = {"meta": {"plugin": {"type": "openapi/v0.0.39"}}, "nodes": [
    {"name": "gpu-a-0", "gres": "gpu:h100:8", "gres_used": "gpu:h100:4(IDX:0-3)",
     "features": ["rack_a", "pod_p0"], "active_features": ["rack_a", "pod_p0"], "partitions": ["gpu"]},
    {"name": "trn-u0-0", "gres": "neuron:trn2:16", "gres_used": "neuron:trn2:0", "features": "rack_u0,pod_p0",
     "active_features": "rack_u0,pod_p0"},
    {"name": "trn-u0-1", "gres": "neuron:trn2:16", "gres_used": "neuron:trn2:16", "features": "rack_u0,pod_p0",
     "active_features": "rack_u0,pod_p0"},
    {"name": "login", "gres": "", "gres_used": "", "features": []},
]}


def test_slurm_import_reads_scontrols_json_and_its_one_line_form():
    fleet = fleet_from_scontrol(json.dumps(SCONTROL_JSON), file="nodes.json")
    racks = {r["id"]: r for r in fleet["racks"]}
    assert racks["a"]["chips"] == {"h100": 8} and racks["a"]["used"] == {"h100": 4}
    assert racks["u0"]["chips"] == {"trn2": 32} and racks["u0"]["used"] == {"trn2": 16}
    assert {r["pod"] for r in fleet["racks"]} == {"p0"} and "login" not in json.dumps(fleet)
    parse_fleet(fleet)
    text = ("NodeName=gpu-b-0 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 AvailableFeatures=rack_b,pod_p1 "
            "ActiveFeatures=rack_b,pod_p1 Gres=gpu:b200:8 NodeAddr=10.0.0.7 State=IDLE GresUsed=gpu:b200:0\n"
            "NodeName=gpu-b-1 CoresPerSocket=1 AvailableFeatures=rack_b,pod_p1 ActiveFeatures=rack_b,pod_p1 "
            "Gres=gpu:b200:8 State=MIXED GresUsed=gpu:b200:2(IDX:0-1)\n")
    (rack,) = fleet_from_scontrol(text, file="nodes.txt")["racks"]
    assert rack["id"] == "b" and rack["chips"] == {"b200": 16} and rack["used"] == {"b200": 2}
    with pytest.raises(InputError, match="line 1 is not `scontrol show node -o` output"):
        fleet_from_scontrol("hello\n", file="nodes.txt")


# ------------------------------------------------------------------ pinning

def test_pinning_never_gives_two_jobs_the_same_chips(solved):
    fleet, result = solved
    pinned = pin(result, fleet)
    free = {n.name: n.chips - n.used for r in fleet.racks for n in nodes_of(r)}
    taken = Counter()
    for p in pinned:
        assert sum(s.chips for s in p.slots) == p.placement["chips"]
        for s in p.slots:
            taken[s.node] += s.chips
        assert {s.rack.id for s in p.slots} == {a["rack"] for a in p.placement["allocations"]}
    assert all(taken[n] <= free[n] for n in taken), "no node over its free chips"
    assert [p.slots for p in pin(result, fleet)] == [p.slots for p in pinned], "deterministic"


def test_a_result_from_another_fleet_is_refused(solved, tmp_path):
    _, result = solved
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    res = trnsched("export", path, "--to", "slurm", "-o", tmp_path / "out", check_rc=False)   # default fleet
    assert res.returncode == 2 and "is not in the fleet" in res.stderr and str(path) in res.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ Slurm

@pytest.fixture(scope="module")
def slurmctld(tmp_path_factory, solved):
    """A real slurmctld configured from the exported slurm.conf (nodes as CLOUD
    nodes: no slurmd needed for --test-only), stopped by its PID."""
    if shutil.which("slurmctld") is None or shutil.which("sbatch") is None:
        if NEEDS_SLURM:
            raise RuntimeError("slurmctld/sbatch not found: apt-get install slurm-wlm")
        pytest.skip("Slurm is not installed (Debian: apt-get install slurm-wlm)")
    fleet, _ = solved
    folder = tmp_path_factory.mktemp("slurm")
    (folder / "state").mkdir()
    port = 17000 + os.getpid() % 2000
    site = textwrap.dedent(f"""\
        SlurmctldPort={port}
        SlurmdPort={port + 1}
        StateSaveLocation={folder}/state
        SlurmdSpoolDir={folder}/spool
        SlurmctldPidFile={folder}/slurmctld.pid
        SlurmctldLogFile={folder}/slurmctld.log
        SlurmUser={os.environ.get("USER") or "root"}
        AuthType=auth/none
        CredType=cred/none
        ProctrackType=proctrack/linuxproc
        TaskPlugin=task/none
        SchedulerType=sched/backfill
        SuspendProgram=/bin/true
        ResumeProgram=/bin/true
        SuspendTime=600
        ResumeTimeout=600""")
    for name, text in slurm.slurm_conf(fleet, extra=site, node_extra="NodeAddr=127.0.0.1 State=CLOUD").items():
        (folder / name).write_text(text)
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    proc = subprocess.Popen(["slurmctld", "-D", "-f", str(folder / "slurm.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(100):
            if subprocess.run(["scontrol", "ping"], env=env, capture_output=True, text=True).stdout.count("UP"):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"slurmctld did not come up: {(folder / 'slurmctld.log').read_text()[-2000:]}")
        yield env
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_every_exported_sbatch_script_is_accepted_by_a_real_slurmctld(solved, slurmctld, tmp_path):
    fleet, result = solved
    scripts = slurm.sbatch_scripts(result, fleet)
    # A disaggregated service runs as two jobs, one per pool.
    assert len(scripts) == sum(len(workloads(p)) for p in result["placements"])
    assert any(p.get("pools") for p in result["placements"]), "the example places a split service"
    for name, text in scripts.items():
        path = tmp_path / name
        path.write_text(text)
        res = subprocess.run(["sbatch", "--test-only", str(path)], env=slurmctld, capture_output=True, text=True)
        assert res.returncode == 0 and "to start at" in res.stderr, f"{name}: {res.stderr}\n{text}"
        placement = next(w for p in result["placements"] for w in workloads(p)
                         if f"{slurm._safe(w['job'])}.sbatch" == name)
        started_on = res.stderr.split(" on nodes ")[-1]
        for alloc_node in {s.node for p in pin(result, fleet) if p.job == placement["job"] for s in p.slots}:
            assert alloc_node.split(".")[0] in started_on, "Slurm starts it on the pinned nodes"


def test_slurm_refuses_what_the_fleet_cannot_hold(solved, slurmctld, tmp_path):
    # The controller really checks: more GPUs on a node than it has is refused.
    fleet, result = solved
    name, text = next(iter(slurm.sbatch_scripts(result, fleet).items()))
    broken = text.replace(":8 ", ":9 ").replace(":4 ", ":9 ").replace(":16 ", ":99 ")
    path = tmp_path / name
    path.write_text(broken)
    res = subprocess.run(["sbatch", "--test-only", str(path)], env=slurmctld, capture_output=True, text=True)
    assert res.returncode != 0 and "not available" in res.stderr


def test_heterogeneous_chip_counts_become_a_het_job(solved):
    fleet, result = solved
    pinned = pin(result, fleet)
    scripts = slurm.sbatch_scripts(result, fleet)
    for p in pinned:
        text = scripts[f"{slurm._safe(p.job)}.sbatch"]
        assert text.count("#SBATCH hetjob") == len(p.groups()) - 1
        if len(p.groups()) > 1:      # srun runs on component 0 alone unless told
            assert f"srun --het-group=0-{len(p.groups()) - 1} " in text


# ------------------------------------------------------------------ Kubernetes

def _client_model(manifest: dict, model: str):
    """Load a manifest into the official client's model, as `kubectl` would."""
    import inspect

    from kubernetes.client import ApiClient
    client, text = ApiClient(), json.dumps(manifest)
    if "response_text" in inspect.signature(client.deserialize).parameters:     # the client's newer API
        return client.deserialize(text, model, "application/json")

    class Response:
        data = text

    return client.deserialize(Response(), model)


JOBSET_SCHEMA = {   # the JobSet fields trnsched writes (jobset.x-k8s.io/v1alpha2)
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {"apiVersion": {"const": "jobset.x-k8s.io/v1alpha2"}, "kind": {"const": "JobSet"},
                   "spec": {"type": "object", "required": ["replicatedJobs"], "additionalProperties": False,
                            "properties": {"replicatedJobs": {"type": "array", "minItems": 1, "items": {
                                "type": "object", "required": ["name", "replicas", "template"],
                                "additionalProperties": False,
                                "properties": {"name": {"type": "string", "pattern": "^[a-z0-9-]{1,63}$"},
                                               "replicas": {"type": "integer", "minimum": 1},
                                               "template": {"type": "object"}}}}}}},
}


@pytest.mark.parametrize("kind", ["kueue", "jobset"])
def test_kueue_and_jobset_manifests_load_into_the_kubernetes_models(solved, kind):
    import jsonschema
    fleet, result = solved
    manifests = k8s.manifests(result, fleet, kind=kind, queue="team-a")
    classes = manifests.pop("priority-classes.json")["items"]
    assert {c["value"] for c in classes} == {p["priority"] for p in result["placements"]}
    pinned = {p.job: p for p in pin(result, fleet)}
    for name, m in manifests.items():
        meta = m["metadata"]
        assert meta["labels"][k8s.QUEUE_LABEL] == "team-a"
        assert meta["labels"][k8s.PRIORITY_LABEL].startswith("trnsched-priority-")
        job = pinned[meta["annotations"]["trnsched.io/job"]]
        if m["kind"] == "Job":
            model = _client_model(m, "V1Job")
            templates = [model.spec.template]
            assert model.spec.parallelism == len(job.slots)
        else:
            jsonschema.validate(m, JOBSET_SCHEMA)
            templates = [_client_model(r["template"], "V1JobTemplateSpec").spec.template
                         for r in m["spec"]["replicatedJobs"]]
        nodes, chips = [], 0
        for t in templates:
            container, = t.spec.containers
            resource = k8s.RESOURCES[fleet.chip_types[job.chip_type].stack]
            term, = t.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution \
                .node_selector_terms
            values = term.match_expressions[0].values
            nodes += values
            chips += int(container.resources.limits[resource]) * len(values)
            assert t.spec.tolerations[0].key == resource
            assert set(t.metadata.annotations) & {k8s.REQUIRED_TOPOLOGY, k8s.PREFERRED_TOPOLOGY}
            env = {e.name: e.value for e in container.env}
            assert env["TRNSCHED_JOB"] == job.job and "TRNSCHED_TP" in env
        assert sorted(nodes) == sorted(s.node for s in job.slots) and chips == job.placement["chips"]
        if kind == "jobset":
            assert m["kind"] == "JobSet"


# ------------------------------------------------------------------ Ray

def test_ray_placement_groups_are_placed_on_a_real_local_ray(tmp_path):
    """One h100 node with its label on a local Ray: the exported script's groups
    for a job pinned there become ready."""
    pytest.importorskip("ray")
    fleet = parse_fleet({"racks": [{"id": "r0", "chips": {"h100": 8}, "nodes": [
        {"name": "node-0", "chip_type": "h100", "chips": 8}]}]})
    jobs = {"jobs": [{"id": "ft", "kind": "train", "model": "llama3-8b", "tokens": 1e8, "chips": 4}]}
    result = solve(jobs, fleet, time_limit=2.0, workers=1, deterministic=True).to_dict()
    files = ray_export.files(result, fleet)
    (tmp_path / "placement_groups.py").write_text(files["placement_groups.py"])
    groups = json.loads(files["placement_groups.json"])
    assert groups[0]["bundles"] == [{"GPU": 4}] and groups[0]["bundle_label_selector"] == [
        {ray_export.RACK_LABEL: "r0", ray_export.NODE_LABEL: "node-0"}]
    labels = {ray_export.RACK_LABEL: "r0", ray_export.NODE_LABEL: "node-0"}
    driver = textwrap.dedent(f"""\
        import runpy, ray
        ray.init(address="local", num_cpus=1, num_gpus=8, labels={labels!r}, include_dashboard=False)
        script = runpy.run_path("placement_groups.py", run_name="trnsched_test")
        for job, pg in script["create"]().items():
            ray.get(pg.ready(), timeout=60)
            print("placed", job)
        ray.shutdown()
        """)
    proc = subprocess.Popen([sys.executable, "-c", driver], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    assert "placed ft" in out


def test_export_from_the_command_line_end_to_end(tmp_path):
    fleet = tmp_path / "fleet.json"
    trnsched("fleet", "import", "--kubectl", DATA / "nodes.json", "--pods", DATA / "pods.json", "-o", fleet)
    result = tmp_path / "result.json"
    trnsched("solve", ROOT / "examples" / "jobs.json", "--fleet", fleet, "--policy", "greedy", "-o", result)
    # One workload per placement, two per disaggregated one (a job per pool).
    placed = sum(len(workloads(p)) for p in json.loads(result.read_text())["placements"])
    for target, count in (("slurm", placed), ("kueue", placed + 1), ("jobset", placed + 1), ("ray", 2)):
        res = trnsched("export", result, "--fleet", fleet, "--to", target, "-o", tmp_path / target)
        assert len(list((tmp_path / target).iterdir())) == count, res.stderr
    trnsched("export", fleet, "--to", "slurm-conf", "-o", tmp_path / "conf")
    assert {p.name for p in (tmp_path / "conf").iterdir()} == {"slurm.conf", "topology.conf", "gres.conf"}


def test_over_a_horizon_a_job_gets_the_chips_an_earlier_one_freed(tmp_path):
    # Two 8-chip jobs, one rack of 8: a --horizon schedule runs them one after
    # the other on the same node, and export pins both there.
    fleet = parse_fleet({"racks": [{"id": "r0", "chips": {"h100": 8}, "nodes": [
        {"name": "node-0", "chip_type": "h100", "chips": 8}]}]})
    jobs = {"jobs": [{"id": f"j{i}", "kind": "train", "model": "llama3-8b", "tokens": 1e9, "chips": 8}
                     for i in range(2)]}
    result = solve(jobs, fleet, time_limit=2.0, workers=1, deterministic=True, horizon_h=100.0).to_dict()
    assert len(result["placements"]) == 2
    pinned = pin(result, fleet)
    assert [s.node for p in pinned for s in p.slots] == ["node-0", "node-0"]
    scripts = slurm.sbatch_scripts(result, fleet)
    assert sum("--begin=now+" in text for text in scripts.values()) == 1


def test_pinning_fits_a_small_job_into_a_partly_used_node_before_breaking_a_whole_one():
    fleet = parse_fleet({"racks": [{"id": "r", "chips": {"trn2": 48}, "used": {"trn2": 8}, "nodes": [
        {"name": "a", "chip_type": "trn2", "chips": 16},
        {"name": "b", "chip_type": "trn2", "chips": 16, "used": 8},
        {"name": "c", "chip_type": "trn2", "chips": 16}]}]})
    result = {"placements": [
        {"job": "small", "chip_type": "trn2", "chips": 2, "allocations": [{"rack": "r", "chips": 2}]},
        {"job": "big", "chip_type": "trn2", "chips": 32, "allocations": [{"rack": "r", "chips": 32}]}]}
    small, big = pin(result, fleet)
    assert [(s.node, s.chips) for s in small.slots] == [("b", 2)]
    assert sorted((s.node, s.chips) for s in big.slots) == [("a", 16), ("c", 16)], "whole nodes stay whole"


def test_kueue_topology_follows_the_labels_the_import_recorded(imported):
    nodes = json.loads(json.dumps(NODES))
    for n in nodes["items"][44:62]:                    # the NVL72's nodes, under a site's own rack label
        n["metadata"]["labels"].pop("nvidia.com/gpu.clique")
        n["metadata"]["labels"]["example.com/rack"] = "nvl-a"
    data = fleet_from_kubectl(nodes, file="nodes.json", rack_label="example.com/rack")
    fleet = parse_fleet(data)
    result = {"placements": [{"job": "j", "chip_type": "gb200", "chips": 16,
                              "allocations": [{"rack": "nvl-a", "chips": 16}]}]}
    (manifest,) = [m for name, m in k8s.manifests(result, fleet).items() if name != "priority-classes.json"]
    template = manifest["spec"]["template"]
    assert template["metadata"]["annotations"] == {k8s.REQUIRED_TOPOLOGY: "example.com/rack"}
    anti = template["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == k8s.HOSTNAME_LABEL, "one pod per pinned node"


def test_unavailable_nodes_count_as_busy():
    nodes = json.loads(json.dumps(NODES))
    nodes["items"][40]["spec"] = {"unschedulable": True}                       # a cordoned p5
    nodes["items"][41]["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    data = fleet_from_kubectl(nodes, file="nodes.json")
    busy = {n["name"]: n["used"] for r in data["racks"] for n in r["nodes"]}
    assert busy[nodes["items"][40]["metadata"]["name"]] == 8 and busy[nodes["items"][41]["metadata"]["name"]] == 8
    text = "NodeName=g0 Gres=gpu:h100:8 State=DOWN+DRAIN GresUsed=gpu:h100:0\nNodeName=g1 Gres=gpu:h100:8 State=IDLE\n"
    used = {n["name"]: n["used"] for r in fleet_from_scontrol(text, file="n")["racks"] for n in r["nodes"]}
    assert used == {"g0": 8, "g1": 0}


def test_exports_and_tables_take_any_job_id(tmp_path):
    # Ids that differ only in characters a file name cannot hold get their own
    # files; rich markup in an id is printed as text.
    fleet = parse_fleet({"racks": [{"id": "r", "chips": {"h100": 8}}]})
    result = {"placements": [
        {"job": job, "chip_type": "h100", "chips": 2, "allocations": [{"rack": "r", "chips": 2}]}
        for job in ("ft/a", "ft:a", "sweep[/]")]}
    assert len(slurm.sbatch_scripts(result, fleet)) == 3
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps({"jobs": [{"id": "lr[red]0.1[/]", "kind": "train", "model": "llama3-8b",
                                          "tokens": 1e8}]}))
    res = trnsched("solve", jobs, "--policy", "greedy")
    assert "lr[red]0.1[/]" in res.stdout


@pytest.mark.parametrize("change, words", [
    (lambda r: r["placements"][0]["allocations"][0].update(chips=-8), "must be positive"),
    (lambda r: r["placements"][0].update(chips=r["placements"][0]["chips"] + 1), "allocations sum to"),
    (lambda r: r["placements"][0].pop("chip_type"), "is required"),
])
def test_a_bad_result_file_is_one_line_naming_it(solved, tmp_path, change, words):
    fleet, result = solved
    broken = json.loads(json.dumps(result))
    change(broken)
    path = tmp_path / "result.json"
    path.write_text(json.dumps(broken))
    fleet_file = tmp_path / "fleet.json"
    fleet_file.write_text(json.dumps(fleet.to_dict()))
    res = trnsched("export", path, "--fleet", fleet_file, "--to", "slurm", "-o", tmp_path / "out", check_rc=False)
    assert res.returncode == 2 and words in res.stderr and str(path) in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
