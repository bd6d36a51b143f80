"""One backend contract, one registry, one place where "auto" decides.

Every backend runs ONE layer-direction:

    run(x, params, h0, lengths, options) -> (y, h_n, trace)
      x        (T, B, I) time-major
      params   name (role) -> tensor, the cell's parameter names (weight_ih, weight_hh, bias_ih, ...)
      h0       the initial state: h (B, R), or (h (B, R), c (B, H)) for the LSTM
      lengths  (B,) int64 valid lengths on x's device, or None (all sequences span T). Sequences are
               valid prefixes; the layer reverses them for the reverse direction.
      options  RunOptions: the CellConfig and what to record
      y        (T, B, R) outputs, zero at padded steps
      h_n      state after each sequence's last valid step, same structure as h0
      trace    None, or a DirectionTrace time-major (T, B, H) when options ask for recording

`supports(options, device) -> (ok, reason)` says whether a backend can serve; the reason is what
errors and `rnnlab.backend_report()` show. "auto" asks backends in the order `auto.preference` gives
for the configuration and device (measured speed), then any other registered one (AUTO_ORDER).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..cells.config import CellConfig
from ..trace import DirectionTrace

__all__ = ["AUTO_ORDER", "Backend", "BackendChoice", "RunOptions", "backend_names", "choose", "get", "register"]


@dataclass(frozen=True)
class RunOptions:
    """What a backend is asked to run: the cell and what to record."""

    cell: CellConfig
    record_gates: bool = False
    record_states: bool = False
    grad: bool = True  # gradients will flow (training); False for inference under no_grad

    @property
    def recording(self) -> bool:
        return self.record_gates or self.record_states


RunFn = Callable[[Tensor, dict, Any, "Tensor | None", RunOptions], "tuple[Tensor, Any, DirectionTrace | None]"]


@dataclass(frozen=True)
class Backend:
    name: str
    run: RunFn
    supports: Callable[[RunOptions, torch.device], tuple[bool, str]]
    summary: str


@dataclass(frozen=True)
class BackendChoice:
    """The backend a module will use, and why."""

    name: str
    reason: str


_BACKENDS: dict[str, Backend] = {}
# "auto" tries these in order; the first that supports the configuration runs it.
AUTO_ORDER: list[str] = []


def register(backend: Backend, *, auto_rank: int | None = None) -> None:
    """Add a backend; auto_rank places it in AUTO_ORDER (None: only reachable by name)."""
    _BACKENDS[backend.name] = backend
    if auto_rank is not None:
        if backend.name in AUTO_ORDER:
            AUTO_ORDER.remove(backend.name)
        AUTO_ORDER.insert(auto_rank, backend.name)


def backend_names() -> tuple[str, ...]:
    return ("auto", *_BACKENDS)


def get(name: str) -> Backend:
    return _BACKENDS[name]


def check_name(owner: str, name: str) -> None:
    if name not in backend_names():
        raise ValueError(f"{owner}: unknown backend {name!r}; expected one of {backend_names()}")


def choose(owner: str, requested: str, options: RunOptions, device: torch.device) -> tuple[Backend, BackendChoice]:
    """The backend that runs `options` on `device`: the named one, or for "auto" the first able in AUTO_ORDER.

    A backend asked for by name that cannot serve raises a ValueError naming one that can.
    """
    from .auto import preference  # the rule, in one place

    check_name(owner, requested)
    order, rule = preference(options, device)
    order = [n for n in order if n in _BACKENDS] + [n for n in AUTO_ORDER if n not in order]
    if requested != "auto":
        backend = _BACKENDS[requested]
        ok, reason = backend.supports(options, device)
        if not ok:
            alt = next((n for n in order if _BACKENDS[n].supports(options, device)[0]), None)
            fix = f"use backend={alt!r} (or 'auto')" if alt else "no registered backend can serve it"
            raise ValueError(f"{owner}: backend {requested!r} cannot serve this configuration: {reason}; {fix}")
        return backend, BackendChoice(requested, f"asked for by name: {reason}")
    refusals = []
    for name in order:
        ok, reason = _BACKENDS[name].supports(options, device)
        if ok:
            why = f"{rule}: {reason}" + (f" (not {'; not '.join(refusals)})" if refusals else "")
            return _BACKENDS[name], BackendChoice(name, why)
        refusals.append(f"{name}: {reason}")
    raise ValueError(f"{owner}: no backend can serve this configuration ({'; '.join(refusals)})")
