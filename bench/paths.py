"""Where the bench scripts find the checkout and the shared data beside it
(../shared); each script takes an option to point elsewhere.  Found from this
file, so the scripts work after `pip install .` as well as `pip install -e .`."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CALIBRATION_CSV = SHARED / "validation" / "calibration.csv"
OPENB_TRACE = SHARED / "traces" / "alibaba-openb-2023" / "openb_pod_list_default.csv"
