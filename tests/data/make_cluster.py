"""Writes nodes.json and pods.json: a realistic EKS cluster as `kubectl get
nodes -o json` and `kubectl get pods -A -o json` show it, from the documented
label conventions (docs/INTEGRATION.md): a Trn2 UltraServer (4 trn2u.48xlarge),
a Trn3 Gen2 UltraServer (36 servers x 4 chips), four p5.48xlarge and a GB200
NVL72 (18 p6e-gb200.36xlarge), plus a CPU node; two network spines.
Run it to regenerate the files: python tests/data/make_cluster.py"""
import json
from pathlib import Path

HERE = Path(__file__).parent


def node(name, instance, allocatable, **labels):
    base = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": instance, "topology.kubernetes.io/zone": "us-east-2b"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {**base, **labels}},
            "status": {"capacity": dict(allocatable), "allocatable": dict(allocatable)}}


def layers(spine, leaf):
    return {"topology.k8s.aws/network-node-layer-1": "nn-a1b2c3d4e5f60001",
            "topology.k8s.aws/network-node-layer-2": spine, "topology.k8s.aws/network-node-layer-3": leaf}


def nodes():
    out, ip = [], iter(range(10, 250))
    trn_spine, gpu_spine = "nn-7f1e2d3c4b5a0011", "nn-7f1e2d3c4b5a0022"
    cpu = {"cpu": "191450m", "memory": "2097152Ki", "pods": "737"}
    for i in range(4):
        out.append(node(f"ip-10-1-0-{next(ip)}.us-east-2.compute.internal", "trn2u.48xlarge",
                        {**cpu, "aws.amazon.com/neuron": "16", "aws.amazon.com/neuroncore": "64"},
                        **layers(trn_spine, "nn-leaf-trn2-0"),
                        **{"neuron.amazonaws.com/ultraserver-mode": "4",
                           "neuron.amazonaws.com/ultraserver-server-id-4": "trn2-us-7f3a",
                           "neuron.amazonaws.com/ultraserver-node-id-4": str(i)}))
    for i in range(36):
        out.append(node(f"ip-10-1-1-{next(ip)}.us-east-2.compute.internal", "trn3.48xlarge",
                        {**cpu, "aws.amazon.com/neuron": "4", "aws.amazon.com/neuroncore": "32"},
                        **layers(trn_spine, f"nn-leaf-trn3-{i // 12}"),
                        **{"topology.k8s.aws/ultraserver-id": "trn3-us-2c91"}))
    for i in range(4):
        out.append(node(f"ip-10-2-0-{next(ip)}.us-east-2.compute.internal", "p5.48xlarge",
                        {**cpu, "nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "32"},
                        **layers(gpu_spine, "nn-leaf-p5-0")))
    for i in range(18):
        out.append(node(f"ip-10-2-1-{next(ip)}.us-east-2.compute.internal", "p6e-gb200.36xlarge",
                        {**cpu, "nvidia.com/gpu": "4", "vpc.amazonaws.com/efa": "17"},
                        **layers(gpu_spine, f"nn-leaf-gb200-{i // 9}"),
                        **{"nvidia.com/gpu.clique": "5c2e6b1a-90d4-4c1e-8f0a-3b7d2e9c4f11.1",
                           "nvidia.com/gpu.imex-domain": "5c2e6b1a-90d4-4c1e-8f0a-3b7d2e9c4f11.1",
                           "nvidia.com/gpu.product": "NVIDIA-GB200"}))
    out.append(node("ip-10-3-0-5.us-east-2.compute.internal", "m7i.8xlarge",
                    {"cpu": "31850m", "memory": "128000Mi", "pods": "234"}, **layers(gpu_spine, "nn-leaf-cpu")))
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": out}


def pod(name, node_name, resources, phase="Running"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ml"},
            "spec": {"nodeName": node_name, "containers": [
                {"name": "main", "image": "example/trainer:1", "resources": {"requests": resources,
                                                                             "limits": resources}}]},
            "status": {"phase": phase}}


def pods(node_list):
    names = [n["metadata"]["name"] for n in node_list["items"]]
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
        pod("ft-llama-0", names[0], {"aws.amazon.com/neuron": "8"}),
        pod("serve-mixtral-0", names[40], {"nvidia.com/gpu": "8"}),
        pod("serve-mixtral-1", names[41], {"nvidia.com/gpu": "4"}),
        pod("done-eval", names[42], {"nvidia.com/gpu": "8"}, phase="Succeeded"),
        pod("web", names[-1], {"cpu": "2"}),
    ]}


if __name__ == "__main__":
    n = nodes()
    (HERE / "nodes.json").write_text(json.dumps(n, indent=1) + "\n")
    (HERE / "pods.json").write_text(json.dumps(pods(n), indent=1) + "\n")
