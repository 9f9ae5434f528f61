"""Inputs: the chip and model catalogs, jobs and fleets as typed, validated objects,
JSON in and out, and seeded synthetic workloads."""
from trnsched.inputs.catalog import ChipType, ModelSpec, builtin_models, chip_catalog
from trnsched.inputs.errors import InputError
from trnsched.inputs.fleet import Fleet, Rack, default_fleet, load_fleet, parse_fleet
from trnsched.inputs.jobs import Job, load_jobs, parse_jobs

__all__ = ["ChipType", "Fleet", "InputError", "Job", "ModelSpec", "Rack", "builtin_models", "chip_catalog",
           "default_fleet", "load_fleet", "load_jobs", "parse_fleet", "parse_jobs"]
