"""Where the bench scripts find the checkout and the shared data beside it
(../shared); each script takes an option to point elsewhere.  Found from this
file, so the scripts work after `pip install .` as well as `pip install -e .`."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CALIBRATION_CSV = SHARED / "validation" / "calibration.csv"
OPENB_TRACE = SHARED / "traces" / "alibaba-openb-2023" / "openb_pod_list_default.csv"
CALIBRATION_JSON = ROOT / "trnsched" / "data" / "calibration.json"   # the fitted constants, in the checkout
PACKAGE_ROWS = ROOT / "trnsched" / "data" / "calibration_rows.csv"     # the package's own measurements


def csv_option(parser) -> None:
    """--csv (repeatable): the calibration rows (argparse); default both sets."""
    parser.add_argument("--csv", action="append", metavar="PATH",
                        help="default: ../shared/validation/calibration.csv and trnsched/data/calibration_rows.csv")


def calibration_rows(paths) -> list[dict]:
    """The rows of every --csv file, or of both default sets."""
    from trnsched.perf.validation import load_rows
    rows = []
    for path in paths or (CALIBRATION_CSV, PACKAGE_ROWS):
        rows.extend(load_rows(path))
    return rows
