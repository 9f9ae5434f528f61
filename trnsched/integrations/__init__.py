"""From decision to cluster: fleets read from Kubernetes and Slurm, results
written as Kueue/JobSet manifests, sbatch scripts and Ray placement groups
(docs/INTEGRATION.md).  `pinning.py` is the one place a rack allocation
becomes node names."""
