"""Replay: the event loop of `trnsched simulate` on a RackLedger (loop.py), what
it reports (figures.py), and the traces it reads (traces.py)."""
from trnsched.replay.figures import Run, SimResult
from trnsched.replay.loop import simulate
from trnsched.replay.traces import Trace, load_trace

__all__ = ["Run", "SimResult", "Trace", "load_trace", "simulate"]
