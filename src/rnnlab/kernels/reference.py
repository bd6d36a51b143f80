"""The reference backend: the cell's own step function in a Python loop over time.

Every other backend is tested against this one. It serves every family, variant and recording option on
every device, and is differentiable to any order (plain torch operations, so double backward and backward
in eval mode work).

    a = input_part(x)                     all T steps in one matmul (T, B, G*H)
    for t in 0..T-1:  state, gates = step(a[t], state)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cells import input_part, step_function
from ..trace import DirectionTrace
from .registry import Backend, RunOptions, register

__all__ = ["run_reference"]


def run_reference(x: Tensor, params: dict[str, Tensor], h0, lengths: Tensor | None, options: RunOptions):
    cfg = options.cell
    step = step_function(cfg)
    T = x.shape[0]
    a = input_part(x, params, cfg)  # (T, B, G*H)

    # Steps past the longest sequence are never run; steps past a shorter one run but must not move its
    # state, so the final state is each sequence's last valid step.
    T_run = T if lengths is None else int(lengths.max())
    valid = None
    if lengths is not None:
        valid = (torch.arange(T_run, device=x.device)[:, None] < lengths[None, :]).unsqueeze(-1)  # (T, B, 1)

    state = h0
    hs: list[Tensor] = []
    cs: list[Tensor] = []
    gates_t: list[tuple[Tensor, ...]] = []
    for t in range(T_run):
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

    def finish(steps: list[Tensor]) -> Tensor:
        """Stack steps to (T, B, n): zero at padded steps and past the longest sequence."""
        out = torch.stack(steps)
        if valid is not None:
            out = torch.where(valid, out, 0.0)
        return F.pad(out, (0, 0, 0, 0, 0, T - T_run)) if T_run < T else out

    y = finish(hs)
    trace = None
    if options.recording:
        trace = DirectionTrace()
        if options.record_gates:
            for k, name in enumerate(cfg.gate_names):
                trace.gates[name] = finish([g[k] for g in gates_t])
        if options.record_states:
            trace.states["h"] = y
            if cfg.is_lstm:
                trace.states["c"] = finish(cs)
    return y, state, trace


def _supports(options: RunOptions, device: torch.device) -> tuple[bool, str]:
    return True, "serves every cell, variant and recording option (a loop over the cell's step)"


register(
    Backend("reference", run_reference, _supports, "loop over the cell's step in Python; serves everything"),
    auto_rank=0,
)
