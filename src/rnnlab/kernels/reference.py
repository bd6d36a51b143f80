"""The reference backend: the cell's own step function in a Python loop over time.

Every other backend is tested against this one. It serves every family, variant and recording option on
every device, and is differentiable to any order (plain torch operations, so double backward and backward
in eval mode work).

    a = input_part(x)                     all T steps in one matmul (T, B, G*H)
    for t in 0..T-1:  state, gates = step(a[t], state)
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cells import input_part, step_function
from ..trace import DirectionTrace
from .contract import Backend, BatchLayout, RunOptions

__all__ = ["BACKEND", "run_reference"]


def run_reference(x: Tensor, params: dict[str, Tensor], h0, layout: BatchLayout, options: RunOptions):
    cfg = options.cell
    step = step_function(cfg)
    a = input_part(x, params, cfg)  # (T, B, G*H)

    # Steps past a sequence's length run but must not move its state, so the final state is each
    # sequence's last valid step. (What they output is zeroed by the layer.)
    valid = layout.valid  # (T, B, 1) or None
    state = h0
    hs: list[Tensor] = []
    cs: list[Tensor] = []
    gates_t: list[tuple[Tensor, ...]] = []
    for t in range(x.shape[0]):
        new_state, gates = step(a[t], state, params, cfg)
        if valid is not None:
            if cfg.is_lstm:
                new_state = tuple(torch.where(valid[t], n, s) for n, s in zip(new_state, state))
            else:
                new_state = torch.where(valid[t], new_state, state)
        state = new_state
        hs.append(state[0] if cfg.is_lstm else state)
        if cfg.is_lstm and options.record_states:
            cs.append(state[1])
        if options.record_gates:
            gates_t.append(gates)

    y = torch.stack(hs)
    trace = None
    if options.recording:
        trace = DirectionTrace()
        if options.record_gates:
            for k, name in enumerate(cfg.gate_names):
                trace.gates[name] = torch.stack([g[k] for g in gates_t])
        if options.record_states:
            trace.states["h"] = y
            if cfg.is_lstm:
                trace.states["c"] = torch.stack(cs)
    return y, state, trace


def _supports(options: RunOptions, device: torch.device) -> tuple[bool, str]:
    return True, "serves every cell, variant and recording option (a loop over the cell's step)"


BACKEND = Backend("reference", run_reference, _supports, "loop over the cell's step in Python; serves everything")
