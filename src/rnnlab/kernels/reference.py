"""The reference backend: the cell's own step function in a Python loop over time.

Every other backend is tested against this one. It serves every family, variant and recording option on
every device, and is differentiable to any order (plain torch operations, so double backward and backward
in eval mode work).

    a = input_part(x)                     all T steps in one matmul (T, B, G*H)
    for t in 0..T-1:  state, gates = step(a[t], state)
                      (recurrent dropout: the step's h_drop; zoneout: state = z state + (1 - z) new state)
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cells import input_part, step_function
from ..trace import DirectionTrace
from .contract import Backend, BatchLayout, RunOptions, refuse_tracing

__all__ = ["BACKEND", "run_reference"]


def run_reference(x: Tensor, params: dict[str, Tensor], h0, layout: BatchLayout, options: RunOptions):
    refuse_tracing("reference backend", x)  # its loop over time would be unrolled at the example's length
    cfg = options.cell
    step = step_function(cfg)
    a = input_part(x, params, cfg)  # (T, B, G*H)
    masks = options.masks
    step_kw = {"h_drop": masks.recurrent} if masks is not None and masks.recurrent is not None else {}
    zone_c = masks.zone_c if masks is not None else None
    zone_h = masks.zone_h if masks is not None else None

    # Steps past a sequence's length run but must not move its state, so the final state is each
    # sequence's last valid step. (What they output is zeroed by the layer.)
    valid = layout.valid  # (T, B, 1) or None
    state = h0
    hs: list[Tensor] = []
    cs: list[Tensor] = []
    gates_t: list[tuple[Tensor, ...]] = []
    # unbind, not a[t]: indexing one step at a time costs a full-size zero gradient per step in backward,
    # quadratic in T
    for t, a_t in enumerate(a.unbind(0)):
        new_state, gates = step(a_t, state, params, cfg, **step_kw)
        if zone_c is not None or zone_h is not None:
            new_state = _zoneout(state, new_state, _at(zone_c, t), _at(zone_h, t), cfg.is_lstm)
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


def _at(zone: Tensor | None, t: int) -> Tensor | None:
    """Step t's zoneout indicators (B, n), or the 0-dim expectation in evaluation."""
    return zone[t] if zone is not None and zone.dim() == 3 else zone


def _zoneout(state, new_state, zc: Tensor | None, zh: Tensor | None, is_lstm: bool):
    """Zoneout around a step (Krueger et al. 2017): each unit keeps its previous value where the indicator
    is 1 (in evaluation: the expectation), state_t = z state_{t-1} + (1 - z) new_t."""
    def mix(prev, new, z):
        return new if z is None else torch.lerp(new, prev, z)
    if is_lstm:
        return mix(state[0], new_state[0], zh), mix(state[1], new_state[1], zc)
    return mix(state, new_state, zh)


def _supports(options: RunOptions, device: torch.device) -> tuple[bool, str]:
    return True, "serves every cell, variant and recording option (a loop over the cell's step)"


BACKEND = Backend("reference", run_reference, _supports, "loop over the cell's step in Python; serves everything")
