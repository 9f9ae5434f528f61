"""trnsched: workload scheduler for mixed accelerator fleets."""
