"""Where the bench scripts find the checkout and the shared data beside it
(../shared); each script takes an option to point elsewhere.  Found from this
file, so the scripts work after `pip install .` as well as `pip install -e .`."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CALIBRATION_CSV = SHARED / "validation" / "calibration.csv"
OPENB_TRACE = SHARED / "traces" / "alibaba-openb-2023" / "openb_pod_list_default.csv"
CALIBRATION_JSON = ROOT / "trnsched" / "data" / "calibration.json"   # the fitted constants, in the checkout


def csv_option(parser) -> None:
    """--csv: the calibration rows (argparse)."""
    parser.add_argument("--csv", default=str(CALIBRATION_CSV), help="default: ../shared/validation/calibration.csv")
