"""Backends: ways to run one layer-direction, all with the same contract (registry.py).

Each is proven equal to `reference` in tests; `"auto"` picks the first able one in AUTO_ORDER.
"""

from . import reference  # noqa: F401  (registers "reference")
from . import native  # noqa: F401  (registers "native", ahead of reference in AUTO_ORDER)
from . import fused  # noqa: F401  (registers "fused")
from .registry import AUTO_ORDER, Backend, BackendChoice, RunOptions, backend_names, choose, get, register

__all__ = ["AUTO_ORDER", "Backend", "BackendChoice", "RunOptions", "backend_names", "choose", "get", "register"]
from .report import backend_report  # noqa: E402

__all__ += ["backend_report"]
