"""Bad input: one line naming file, job and field; exit 2; no traceback."""
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from trnsched.cli import main
from trnsched.inputs.errors import InputError
from trnsched.inputs.jobs import load_jobs, parse_jobs

GOOD = {"id": "a", "kind": "train", "model": "llama3-8b", "tokens": 1e10}


def write(tmp_path, data, name="jobs.json"):
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


@pytest.mark.parametrize("job, field, words", [
    ({**GOOD, "model": "gpt-9"}, "model", "unknown model"),
    ({**GOOD, "kind": "serve"}, "kind", "must be one of"),
    ({**GOOD, "chips": -4}, "chips", "positive"),
    ({**GOOD, "chips": {"min": 8, "max": 4}}, "chips", "below min"),
    ({**GOOD, "chip_types": ["tpu9"]}, "chip_types", "unknown chip type"),
    ({**GOOD, "precision": "int3"}, "precision", "must be one of"),
    ({**GOOD, "tokens": "lots"}, "tokens", "must be a number"),
    ({**GOOD, "priority": 0}, "priority", "positive"),
    ({**GOOD, "rate_rps": 3}, "rate_rps", "inference job"),
    ({**GOOD, "parallelism": {"tp": 3}}, "parallelism.tp", "power of two"),
    ({**GOOD, "model": {"params_b": -1, "layers": 2, "hidden": 64}}, "model.params_b", "positive"),
    ({"id": "b", "kind": "infer", "model": "llama3-8b", "output_tokens": 10}, "prompt_tokens", "required"),
    ({"id": "b", "kind": "infer", "model": "llama3-8b", "prompt_tokens": 1, "output_tokens": 1,
      "slo": {"ttft": 5}}, "slo.ttft", "not one of"),
    ({"id": "b", "kind": "infer", "model": "llama3-8b", "prompt_tokens": 1, "output_tokens": 1,
      "offline": "yes"}, "offline", "true or false"),
    ({**GOOD, "offline": True}, "offline", "inference job"),
])
def test_invalid_job_names_file_job_and_field(tmp_path, job, field, words):
    path = write(tmp_path, {"jobs": [job]})
    with pytest.raises(InputError) as err:
        load_jobs(path, chip_names=["h100", "trn3"])
    msg = str(err.value)
    assert str(path) in msg and repr(job["id"]) in msg and repr(field) in msg and words in msg
    assert "\n" not in msg


def test_duplicate_ids():
    with pytest.raises(InputError, match="duplicate id"):
        parse_jobs([GOOD, GOOD], file="x.json")


def test_bare_list_and_object_accepted():
    assert len(parse_jobs([GOOD])) == len(parse_jobs({"jobs": [GOOD]})) == 1


@pytest.mark.parametrize("content, words", [
    ("{not json", "malformed JSON at line 1"),
    (json.dumps({"work": []}), "'jobs' list"),
    (json.dumps({"jobs": [{**GOOD, "chips": 0}]}), "field 'chips'"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, content, words):
    path = write(tmp_path, content)
    res = subprocess.run([sys.executable, "-m", "trnsched", "score", str(path)], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in res.stderr


def test_cli_missing_file_and_bad_fleet(tmp_path):
    r = CliRunner().invoke(main, ["score", str(tmp_path / "nope.json")])
    assert r.exit_code == 2 and "cannot read" in r.output
    jobs = write(tmp_path, {"jobs": [GOOD]})
    fleet = write(tmp_path, {"chip_types": {"h100": {"hbm_gb": -80}}}, "fleet.json")
    r = CliRunner().invoke(main, ["score", str(jobs), "--fleet", str(fleet)])
    assert r.exit_code == 2 and "chip_types.h100.hbm_gb" in r.output
    r = CliRunner().invoke(main, ["score", str(jobs), "--chip-type", "tpu"])
    assert r.exit_code == 2 and "unknown chip type" in r.output


def test_bounds_are_rounded_the_way_that_keeps_them_bounds():
    from trnsched.inputs.io import json_number
    assert json_number(2.3143008345) == 2.314301
    assert json_number(2.3143008345, "down") == 2.3143
    assert json_number(0.1000001, "up") == 0.100001
    assert json_number(float("inf"), "down") is None


def test_a_rack_larger_than_its_chips_scale_up_domain_is_refused():
    from trnsched.inputs.fleet import parse_fleet
    with pytest.raises(InputError, match=r"fleet.json: field 'racks\[big\].chips.h100': 128 h100 exceed one "
                                         r"scale-up domain of 8: a rack is one domain, so list it as 16 racks"):
        parse_fleet({"racks": [{"id": "big", "chips": {"h100": 128}}]}, file="fleet.json")
    assert parse_fleet({"racks": [{"id": "nvl72", "chips": {"gb200": 72}}]}).racks[0].chips == {"gb200": 72}
