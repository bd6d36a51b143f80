"""Backends: ways to run one layer-direction, all with the same contract (contract.py).

reference (the cell's step in a Python loop), native (torch's fused RNN ops), fused (hand-derived BPTT,
its LSTM and GRU time loops compiled on the CPU), scan (minGRU/minLSTM, every step at once). Each is proven equal to `reference` in tests. They are
listed once, in registry.BACKENDS; `"auto"` runs the first that supports the configuration in the order
`auto.preference` gives (measured speed). `backend_report()` says what each can serve here.
"""

from .contract import Backend, BackendChoice, BatchLayout, RunOptions
from .registry import backend_names, choose, get
from .report import backend_report

__all__ = ["Backend", "BackendChoice", "BatchLayout", "RunOptions", "backend_names", "backend_report", "choose", "get"]
