"""The backends, listed once, and the one place a backend is chosen for a run.

BACKENDS names every backend in one explicit list (the contract each follows: contract.py). A layer asks
`choose(...)` on every forward for the backend that runs it: the one named, or for "auto" the first
that supports the configuration in the order `auto.preference` gives (measured speed, the only ordering
rule). A name is validated once, where a layer is built (rnnlab.layers.RecurrentConfig.check, against
`backend_names()`), not on every forward.
"""

from __future__ import annotations

import torch

from . import auto, fused, native, reference, scan
from .contract import Backend, BackendChoice, RunOptions

__all__ = ["BACKENDS", "backend_names", "choose", "get"]

# Every backend, by name. Adding one: its module exposes BACKEND, and it goes here and in auto.preference.
BACKENDS: dict[str, Backend] = {b.name: b for b in (reference.BACKEND, native.BACKEND, fused.BACKEND, scan.BACKEND)}
_BACKENDS = BACKENDS  # the name tests/test_benchmark_smoke.py patches


def backend_names() -> tuple[str, ...]:
    return ("auto", *BACKENDS)


def get(name: str) -> Backend:
    return BACKENDS[name]


def choose(owner: str, requested: str, options: RunOptions, device: torch.device) -> tuple[Backend, BackendChoice]:
    """The backend that runs `options` on `device`: the named one (a name in `backend_names()`), or for
    "auto" the first able one in `auto.preference`'s order.

    A backend asked for by name that cannot serve raises a ValueError naming one that can.
    """
    order, rule = auto.preference(options, device)
    order = [n for n in order if n in BACKENDS]
    if requested != "auto":
        backend = BACKENDS[requested]
        ok, reason = backend.supports(options, device)
        if not ok:
            alt = next((n for n in order if BACKENDS[n].supports(options, device)[0]), None)
            fix = f"use backend={alt!r} (or 'auto')" if alt else "no backend can serve it"
            raise ValueError(f"{owner}: backend {requested!r} cannot serve this configuration: {reason}; {fix}")
        return backend, BackendChoice(requested, f"asked for by name: {reason}")
    refusals = []
    for name in order:
        ok, reason = BACKENDS[name].supports(options, device)
        if ok:
            why = f"{rule}: {reason}" + (f" (not {'; not '.join(refusals)})" if refusals else "")
            return BACKENDS[name], BackendChoice(name, why)
        refusals.append(f"{name}: {reason}")
    raise ValueError(f"{owner}: no backend can serve this configuration ({'; '.join(refusals)})")
