"""What every command shares: bad input handled once, and the options several
commands take, declared once."""
from __future__ import annotations

import math
import sys

import click

from trnsched.inputs.errors import InputError, OutputError
from trnsched.interrupts import EXIT_CODES, Interrupted
from trnsched.inputs.io import check_output
from trnsched.objective import OBJECTIVES
from trnsched.policies import offered
from trnsched.problem import SolverError


class Guarded(click.Group):
    """Bad input: one line on stderr, exit 2.  An output that cannot be written:
    one line naming it, exit 1.  Anything else: one line, exit 1.  No traceback
    either way."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OutputError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except Interrupted as exc:
            click.echo(f"{exc}: nothing written", err=True)
            sys.exit(EXIT_CODES[exc.signum])
        except BrokenPipeError:  # output piped into `head`: not an error
            sys.stderr.close()
            sys.exit(0)
        except KeyboardInterrupt:       # Ctrl-C before a command's own handling began
            click.echo("interrupted by SIGINT: nothing written", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except SolverError as exc:
            click.echo(f"error: solver failed: {one_line(exc)}", err=True)
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - the contract is one line, no traceback
            click.echo(f"internal error: {type(exc).__name__}: {one_line(exc)}", err=True)
            sys.exit(1)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (CP-SAT's and others' may span several)."""
    return " ".join(str(exc).split())


def fleet_option(help: str = "Fleet file (default: built-in fleet)."):
    return click.option("--fleet", "fleet_file", type=click.Path(dir_okay=False), help=help)


def json_option(help: str | None = None):
    return click.option("--json", "as_json", is_flag=True, help=help)


def _checked_output(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An output path, checked when the command line is read, before any work."""
    if value is not None:
        check_output(value)
    return value


def output_option(help: str):
    return click.option("-o", "--output", type=click.Path(dir_okay=False), callback=_checked_output, help=help)


def quiet_option():
    return click.option("-q", "--quiet", is_flag=True,
                        help="No progress display and no tables: errors only (and what --json or -o asks for).")


def html_option():
    """--html FILE: the self-contained HTML report, checked like -o."""
    return click.option("--html", "html_file", type=click.Path(dir_okay=False), callback=_checked_output,
                        help="Also write the HTML report here (atomically; `trnsched report` makes it later).")


def objective_option():
    return click.option("--objective", type=click.Choice(OBJECTIVES), default="energy", show_default=True)


def policy_option(command: str):
    """--policy, offering the registry's policies for this command."""
    return click.option("--policy", type=click.Choice(offered(command)), default="cpsat", show_default=True)


def seed_option():
    return click.option("--seed", type=click.IntRange(0, 2 ** 31 - 1), default=0, show_default=True)


class Finite(click.ParamType):
    """A finite number in [least, most] (click's FloatRange lets nan and inf
    through); `above` makes the lower end open.  The ranges are the library's
    (inputs/schema.py), which checks them again for callers from code."""
    name = "number"

    def __init__(self, least: float, most: float, *, above: bool = False, unit: str = "number") -> None:
        self.least, self.most, self.above, self.unit = least, most, above, unit

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a {self.unit}", param, ctx)
        low_ok = number > self.least if self.above else number >= self.least
        if not (math.isfinite(number) and low_ok and number <= self.most):
            side = ">" if self.above else ">="
            self.fail(f"{value!r} is not a finite {self.unit} {side} {self.least:g} and <= {self.most:g}", param, ctx)
        return number

    def get_metavar(self, param, ctx=None) -> str:
        return self.unit.split()[-1].upper()


def Seconds(least: float) -> Finite:
    """Seconds: finite, at least `least`, at most a million."""
    return Finite(least, 1e6, unit="number of seconds")
