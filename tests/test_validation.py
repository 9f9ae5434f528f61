"""The one validation layer (inputs/schema.py): every number finite, in range
and not null; input files regular UTF-8; fleets that can exist; library
arguments held to the command line's ranges; the published JSON Schemas."""
import dataclasses
import json
import math
import subprocess
import sys

import jsonschema
import pytest

from conftest import ROOT
from trnsched import parse_fleet, parse_jobs, solve, what_if
from trnsched.inputs.catalog import chip_catalog
from trnsched.inputs.errors import InputError
from trnsched.inputs.generate import generate_workload
from trnsched.inputs.schema import MAX_PRIORITY, json_schema

TRAIN = {"id": "t", "kind": "train", "model": "llama3-8b", "tokens": 1e10}
SERVE = {"id": "s", "kind": "infer", "model": "llama3-8b", "prompt_tokens": 512, "output_tokens": 128}
RACK = {"id": "r", "chips": {"h100": 8}}
INLINE = {"params_b": 7.0, "layers": 32, "hidden": 4096}


@pytest.mark.parametrize("job, field, words", [
    ({**TRAIN, "priority": None}, "priority", "must not be null"),
    ({**TRAIN, "arrival_h": None}, "arrival_h", "must not be null"),
    ({**TRAIN, "seq_len": None}, "seq_len", "must not be null"),
    ({**TRAIN, "batch_seqs": None}, "batch_seqs", "must not be null"),
    ({**SERVE, "duration_h": None}, "duration_h", "must not be null"),
    ({**TRAIN, "priority": 10 ** 18}, "priority", f"<= {MAX_PRIORITY}"),
    ({**TRAIN, "tokens": 10 ** 400}, "tokens", "must be a number"),
    ({**TRAIN, "tokens": 1e300}, "tokens", "<= 1e+18"),
    ({**TRAIN, "chips": 2 ** 63}, "chips", "<= 1048576"),
    ({**TRAIN, "chips": 8.5}, "chips", "whole number"),
    ({**TRAIN, "id": "\u200b"}, "id", "invisible"),
    ({**TRAIN, "id": "a\u202eb"}, "id", "invisible"),
    ({**TRAIN, "id": "\ud800"}, "id", "valid Unicode"),
    ({**TRAIN, "model": 5}, "model", "must be a preset name or an object, got 5"),
    ({**TRAIN, "chips": {"min": 2, "most": 4}}, "chips.most", "is not one of min, max"),
    ({**TRAIN, "model": {**INLINE, "experts": 8, "top_k": 8}}, "model.top_k", "dense model"),
    ({**TRAIN, "model": {**INLINE, "hidden": 2 ** 24}}, "model.heads", "its default, from the fields given"),
    ({**TRAIN, "chip_types": ["h100", "h100"]}, "chip_types", "lists 'h100' twice"),
    ({**SERVE, "rate_rps": None}, "rate_rps", "must not be null"),
    ({**TRAIN, "priority": True}, "priority", "whole number"),
    ({**TRAIN, "tokens": "1e10"}, "tokens", "must be a number"),
    ({**TRAIN, "model": {**INLINE, "params_b": math.nan}}, "model.params_b", "finite"),
    ({**TRAIN, "model": {**INLINE, "hidden": math.inf}}, "model.hidden", "whole number"),
    ({**TRAIN, "model": {**INLINE, "kv_heads": 64}}, "model.kv_heads", "exceeds heads"),
    ({**TRAIN, "id": "a\nb"}, "id", "no control or invisible characters"),
    ({**TRAIN, "id": "a\x1b[31m"}, "id", "no control or invisible characters"),
    ({**TRAIN, "chip_types": []}, "chip_types", "must not be empty"),
    ({**TRAIN, "parallelism": {"tp": 0}}, "parallelism.tp", "positive"),
    ({**SERVE, "slo": {"ttft_ms": -1}}, "slo.ttft_ms", "positive"),
    ({**TRAIN, "kind": None}, "kind", "must be one of train, infer"),
])
def test_bad_numbers_and_nulls_name_the_job_and_field(job, field, words):
    with pytest.raises(InputError) as err:
        parse_jobs({"jobs": [job]}, file="jobs.json")
    msg = str(err.value)
    assert f"field {field!r}" in msg and words in msg and "\n" not in msg, msg
    assert msg.startswith("jobs.json: job ")


@pytest.mark.parametrize("fleet, field, words", [
    ({"racks": [RACK], "pue": math.nan}, "pue", "finite"),
    ({"racks": [RACK], "pue": None}, "pue", None),
    ({"racks": [{**RACK, "power_cap_kw": math.inf}]}, "racks[r].power_cap_kw", "finite"),
    ({"racks": [{**RACK, "used": [1]}]}, "racks[r].used", "must be an object"),
    ({"racks": [{**RACK, "used": "h100"}]}, "racks[r].used", "must be an object"),
    ({"racks": [{**RACK, "chips": {"h100": 10 ** 30}}]}, "racks[r].chips.h100", "<= 1048576"),
    ({"racks": [{**RACK, "power_cap_kw": 4.0}]}, "racks[r].power_cap_kw", "below the 5.2 kW the rack draws"),
    ({"racks": [RACK], "chip_types": {"h100": {"tdp_w": math.nan}}}, "chip_types.h100.tdp_w", "finite"),
    ({"racks": [RACK], "chip_types": {"h100": {"domain_size": math.inf}}}, "chip_types.h100.domain_size",
     "finite"),
    ({"racks": [RACK], "chip_types": {"h100": {"tp_cores_per_chip": 0}}}, "chip_types.h100.tp_cores_per_chip",
     "positive"),
    ({"racks": [RACK], "chip_types": {"h100": {"tp_cores_per_chip": "x"}}}, "chip_types.h100.tp_cores_per_chip",
     "whole number"),
    ({"racks": [RACK], "chip_types": {"h100": {"idle_w": 2000}}}, "chip_types.h100.idle_w", "exceeds tdp_w"),
    ({"racks": [RACK], "network": {"scaleout_gbps_per_chip": math.nan}}, "network.scaleout_gbps_per_chip",
     "finite"),
    ({"racks": [{**RACK, "pod": "a\tb"}]}, "racks[r].pod", "no control or invisible characters"),
    # A chip type may be named like pydantic's union tags; the path keeps it.
    ({"racks": [RACK], "chip_types": {"range": {"tdp_w": -1}}}, "chip_types.range.tdp_w", "non-negative"),
    ({"racks": [RACK], "chip_types": {"h100": {"tdp_w": 0}}}, "chip_types.h100.tdp_w", "positive"),
    ({"racks": [RACK], "chip_types": {"h100": {"domain_size": 2e6}}}, "chip_types.h100.domain_size", "<= 1048576"),
    ({"racks": [RACK], "chip_types": {"h100": {"peak_fp8_tflops": 100}}}, "chip_types.h100.peak_fp8_tflops",
     "below peak_bf16_tflops"),
    ({"racks": [RACK], "chip_types": {"trn2": {"stack": "cuda"}}}, "chip_types.trn2.family", "give its family"),
    ({"racks": [RACK], "chip_types": {"a\nb": {"tdp_w": 5}}}, "chip_types", "has a bad key 'a\\nb'"),
    ({"racks": [RACK], "$schema": 5}, "$schema", "schema's address"),
])
def test_bad_fleets_name_the_field(fleet, field, words):
    if words is None:                       # null where the default is meant: refused, not defaulted
        words = "must not be null"
    with pytest.raises(InputError) as err:
        parse_fleet(fleet, file="fleet.json")
    msg = str(err.value)
    assert f"field {field!r}" in msg and words in msg and "\n" not in msg, msg
    assert msg.startswith("fleet.json: ")


def test_what_means_none_may_be_null_and_whole_numbers_may_be_written_as_floats():
    # null where it means "none" (no chips limit, SLO, hints, note, busy chips,
    # network); 8.0 where a whole number is meant (the published schema agrees).
    job = {**SERVE, "chips": None, "slo": None, "parallelism": None, "note": None, "name": None,
           "deadline_h": None, "priority": 5.0, "batch": 16.0}
    (parsed,) = parse_jobs([job])
    assert parsed.priority == 5 and isinstance(parsed.priority, int) and parsed.chips_min is None
    fleet = parse_fleet({"racks": [{**RACK, "used": None, "chips": {"h100": 8.0}, "note": None}], "network": None,
                         "chip_types": None, "note": None})
    assert fleet.racks[0].chips == {"h100": 8} and fleet.racks[0].used == {}
    jsonschema.validate({"jobs": [job]}, json_schema("jobs"))


def test_generated_fleets_are_valid_and_can_exist():
    # No rack over its scale-up domain or over its power cap before anything runs,
    # the fully busy hybrid racks included (the generator once made them).
    for seed in range(4):
        for ultracluster in (False, True):
            _, fleet = generate_workload(10, 400, seed=seed, ultracluster=ultracluster)
            parsed = parse_fleet(fleet, file="generated")
            assert all(r.power_cap_kw is None or parsed.baseline_kw(r) <= r.power_cap_kw for r in parsed.racks)


@pytest.mark.parametrize("kwargs, field", [
    ({"time_limit": -1}, "time_limit"), ({"time_limit": 0}, "time_limit"), ({"time_limit": math.nan}, "time_limit"),
    ({"time_limit": math.inf}, "time_limit"), ({"time_limit": "10"}, "time_limit"),
    ({"workers": 0}, "workers"), ({"workers": -3}, "workers"), ({"workers": 2.0}, "workers"),
    ({"seed": 2 ** 31}, "seed"), ({"seed": None}, "seed"), ({"horizon_h": math.nan}, "horizon_h"),
    ({"time_weight": -1.0}, "time_weight"), ({"backend": "slurm"}, "backend"), ({"on_interrupt": 1}, "on_interrupt"),
])
def test_library_arguments_are_held_to_the_cli_ranges(kwargs, field):
    with pytest.raises(InputError) as err:
        solve([TRAIN], None, **kwargs)
    assert f"field {field!r}" in str(err.value)


def test_library_job_objects_are_checked_like_a_file():
    job = parse_jobs([TRAIN])[0]
    with pytest.raises(InputError, match="duplicate id"):
        solve([job, job], time_limit=1.0)
    with pytest.raises(InputError, match=r"field 'priority': must be <= 1000000"):
        solve([dataclasses.replace(job, priority=10 ** 18)], time_limit=1.0)
    with pytest.raises(InputError, match=r"field 'tokens': must be a finite number"):
        solve([dataclasses.replace(job, tokens=math.nan)], time_limit=1.0)
    with pytest.raises(InputError, match=r"field 'count': must be positive"):
        what_if([job], chip_catalog(), count=-4)
    with pytest.raises(InputError, match="unknown chip type"):
        what_if([job], chip_catalog(), chip_type="tpu")


def test_library_job_objects_are_held_to_the_cross_field_rules_too():
    train, serve = parse_jobs([TRAIN, SERVE])
    for job, field in [(dataclasses.replace(train, kind="infer"), "prompt_tokens"),
                       (dataclasses.replace(train, precision="fp4"), "precision"),
                       (dataclasses.replace(train, parallelism={"tp": 3}), "parallelism.tp"),
                       (dataclasses.replace(train, seq_len=0), "seq_len"),
                       (dataclasses.replace(serve, chip_types=["h100", "h100"]), "chip_types"),
                       (dataclasses.replace(train, model=dataclasses.replace(train.model, experts=8, top_k=8)),
                        "model.top_k"),
                       (dataclasses.replace(train, model=dataclasses.replace(train.model, kv_heads=64)),
                        "model.kv_heads")]:
        with pytest.raises(InputError, match=f"field '{field}'"):
            solve([job], time_limit=1.0)


def test_what_validate_passes_solve_takes_without_a_second_opinion(tmp_path):
    # The command reads the files once; the library does not check its own
    # parse again (nor name "<input>" for what the file said).
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps({"jobs": [{**TRAIN, "model": {"params_b": 100, "layers": 32, "hidden": 2 ** 23}}]}))
    for args in (["validate", str(jobs)], ["solve", str(jobs), "--policy", "greedy"]):
        res = subprocess.run([sys.executable, "-m", "trnsched", *args], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def test_library_fleet_objects_are_checked_like_a_file():
    fleet = parse_fleet({"racks": [RACK]})
    rack = dataclasses.replace(fleet.racks[0], power_cap_kw=math.nan)
    with pytest.raises(InputError, match=r"racks\[r\].power_cap_kw'?: must be a finite number"):
        solve([TRAIN], dataclasses.replace(fleet, racks=(rack,)), time_limit=1.0)


@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe{\x00}\x00", "is not UTF-8 text: byte 0xff at offset 0"),
    (b'{"jobs": [{"id": "caf\xe9"}]}', "is not UTF-8 text: byte 0xe9"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"jobs": [{"id": "a", "kind": "train", "model": "llama3-8b", "tokens": NaN}]}', "NaN is not a JSON number"),
    (b'{"jobs": [{"id": "a", "kind": "train", "model": "llama3-8b", "tokens": -Infinity}]}', "-Infinity is not"),
    (b'{"jobs": [{"id": "a", "id": "b", "kind": "train", "model": "llama3-8b", "tokens": 1}]}', "gives 'id' twice"),
    (b'{"jobs": [{"id": "a", "kind": "train", "model": "llama3-8b", "tokens": ' + b"9" * 5000 + b"}]}",
     "malformed JSON: Exceeds the limit"),
])
def test_unreadable_files_are_one_line_errors(tmp_path, content, words):
    path = tmp_path / "jobs.json"
    path.write_bytes(content)
    res = subprocess.run([sys.executable, "-m", "trnsched", "validate", str(path)], capture_output=True, text=True)
    assert res.returncode == 2 and words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_a_bom_is_fine_and_a_fifo_is_refused_without_waiting(tmp_path):
    import os
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps({"jobs": [TRAIN]}).encode())
    assert subprocess.run([sys.executable, "-m", "trnsched", "validate", str(bom)]).returncode == 0
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    res = subprocess.run([sys.executable, "-m", "trnsched", "validate", str(fifo)], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 2 and "is not a regular file" in res.stderr


@pytest.mark.parametrize("option", [["--horizon", "nan"], ["--horizon", "inf"], ["--time-weight", "-inf"],
                                    ["--time-limit", "nan"], ["--time-limit", "1e400"], ["--seed", "2147483648"]])
def test_non_finite_options_are_usage_errors(option):
    res = subprocess.run([sys.executable, "-m", "trnsched", "solve", str(ROOT / "examples" / "jobs.json"), *option],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "Invalid value" in res.stderr and "Traceback" not in res.stderr


def test_published_schemas_accept_the_examples_and_refuse_what_trnsched_refuses(tmp_path):
    jobs_schema, fleet_schema = json_schema("jobs"), json_schema("fleet")
    jsonschema.Draft202012Validator.check_schema(jobs_schema)
    for name in ("jobs.json", "arrivals.json", "score.json"):
        jsonschema.validate(json.loads((ROOT / "examples" / name).read_text()), jobs_schema)
    for name in ("fleet.json", "openb_fleet.json"):
        jsonschema.validate(json.loads((ROOT / "examples" / name).read_text()), fleet_schema)
    jsonschema.validate({"$schema": "trnsched-jobs.json", "jobs": [TRAIN, SERVE]}, jobs_schema)
    for bad in ({"jobs": [{**TRAIN, "priority": None}]}, {"jobs": [{**TRAIN, "rate_rps": 2}]},
                {"jobs": [{**SERVE, "duration_h": 0}]}, {"jobs": [{**TRAIN, "kind": "serve"}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, jobs_schema)
        with pytest.raises(InputError):
            parse_jobs(bad)
    # The command prints the same schema; with $schema named, the file still reads.
    res = subprocess.run([sys.executable, "-m", "trnsched", "schema", "fleet"], capture_output=True, text=True)
    assert json.loads(res.stdout) == fleet_schema
    assert parse_jobs({"$schema": "trnsched-jobs.json", "jobs": [TRAIN]})[0].id == "t"


def test_sums_the_solver_cannot_hold_exactly_are_input_errors_before_any_model():
    # The ranges keep files and library objects far inside 2^53; this is the
    # backstop, reached here only by building jobs past the validation.
    from trnsched.candidates import generate
    from trnsched.objective import prune_and_price
    from trnsched.policies.cpsat.model import check_integer_range
    from trnsched.problem import Problem, SolverConfig
    fleet = parse_fleet({"racks": [RACK]})
    jobs = [dataclasses.replace(parse_jobs([{**TRAIN, "id": f"t{i}"}])[0], priority=2 ** 52) for i in range(2)]
    cset = generate(jobs, fleet)
    cands, costs = prune_and_price(cset.candidates, "energy")
    with pytest.raises(InputError, match=r"priorities sum to 9.01e\+15, more than the solver holds exactly"):
        check_integer_range(Problem.whole(jobs, fleet, cands, costs, SolverConfig()))
    check_integer_range(Problem.whole(jobs[:1], fleet, cands, costs, SolverConfig()))


def test_an_entry_may_stand_for_several_equal_scale_up_domains(tmp_path):
    # 16 H100 nodes written as one entry of 128 chips, 32 busy, 163.2 kW: 16
    # racks of 8 (2 busy, 10.2 kW each), placed on and checked like any other.
    from checker import check
    fleet = {"racks": [{"id": "h100-pod", "chips": {"h100": 128}, "used": {"h100": 32}, "power_cap_kw": 163.2,
                        "domains": 16}]}
    parsed = parse_fleet(fleet)
    assert len(parsed.racks) == 16 and parsed.racks[3].id == "h100-pod/3"
    assert parsed.racks[3].chips == {"h100": 8} and parsed.racks[3].used == {"h100": 2}
    assert parsed.racks[3].power_cap_kw == pytest.approx(10.2)
    jobs = {"jobs": [{**TRAIN, "chips": 32}]}
    result = solve(jobs, fleet, time_limit=2.0, workers=1, deterministic=True).to_dict()
    check(jobs, fleet, result)
    assert result["placements"] and all("/" in a["rack"] for a in result["placements"][0]["allocations"])
    with pytest.raises(InputError, match="do not split evenly into 3 domains"):
        parse_fleet({"racks": [{"id": "x", "chips": {"h100": 16}, "domains": 3}]})
    with pytest.raises(InputError, match='give "domains": 16 if they are equal'):
        parse_fleet({"racks": [{"id": "x", "chips": {"h100": 128}}]})
