"""The bad-input contract under fuzzing (tests/fuzzing.py says what is mutated
and what must hold).  CI runs a bounded number of examples; `python
bench/fuzz.py --examples 5000` runs the long version."""
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from fuzzing import Case, cases, run_case


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_fuzzed_inputs_keep_the_bad_input_contract(case: Case):
    with tempfile.TemporaryDirectory() as folder:
        _, broken = run_case(case, Path(folder))
    assert broken is None, f"{case.what}: {broken}"
