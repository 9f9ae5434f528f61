"""The command line: the commands (commands.py), the options and error handling
they share (options.py), and how results are printed (render.py)."""
from trnsched.cli.commands import main

__all__ = ["main"]
