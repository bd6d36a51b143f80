"""The fused backend: a hand-derived backward through time per cell family (lstm.py, gru.py, rnn.py), run as two
registered PyTorch operators (ops.py: rnnlab::fused_forward / fused_backward) so that torch.compile, torch.export
and opcheck see one op per layer-direction.

Serves every family, variant and combination, `lengths`, recording (the saved activations *are* the
recording, so it costs one copy of the gates), CPU and CUDA, float32/float64. Double backward works by
differentiating the reference path (ops.py). On the CPU the LSTM's, GRU's and RNN's time loops run as C
compiled on first use (compiled.py), else as torch ops from Python; both are tested equal to the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...trace import DirectionTrace
from ..contract import Backend, BatchLayout, RunOptions, func_transformed, refuse_tracing
from ..reference import run_reference
from . import ops

__all__ = ["BACKEND", "run_fused"]


def run_fused(x: Tensor, params: dict[str, Tensor], h0, layout: BatchLayout, options: RunOptions):
    refuse_tracing("fused backend")
    if func_transformed():  # torch.func (grad, vjp, jacrev, vmap): plain ops, which every transform composes
        return run_reference(x, params, h0, layout, options)
    cfg = options.cell
    is_lstm = cfg.is_lstm
    state = list(h0) if is_lstm else [h0]
    perm = layout.perm
    masks = options.masks
    if perm is not None:  # longest first, as the Function expects; undone on the way out
        x = x.index_select(1, perm)
        state = [s.index_select(0, perm) for s in state]
        masks = masks.rows(perm) if masks is not None else None
    # one operator call (ops.py): the parameters and the loop's regularization masks by role, None where absent
    named = {**params, **(masks.tensors() if masks is not None else {})}
    present, roles = ops.roles_of([named.get(role) for role in ops.ROLES])
    lengths = layout.last + 1 if layout.padded else None  # sorted, as the rows now are
    keep = torch.is_grad_enabled() and any(t.requires_grad for t in (x, *state, *named.values()))
    n_state = 2 if is_lstm else 1
    call = ops.Call(roles, cfg.family, cfg.hidden_size, cfg.proj_size, ops.flags_of(cfg), keep, options.recording,
                    n_state)
    # without a gradient to keep (inference) the autograd.Function is only cost: its apply binds the forward's
    # signature with inspect on every call (setup_context style): about 40 of the 139-145 us a T = 1, B = 1 layer
    # took per call here (issue 20: variant inference had regressed by such overhead at T = 50, B = 1)
    run = ops.FusedLayer.apply if keep else ops.FusedLayer.forward
    outs = run(call, x, lengths, *state, *present)
    finals = list(outs[:n_state])
    n_rec = 0 if not options.recording or cfg.family.startswith("rnn") else n_state
    rec = [r.detach() for r in outs[n_state : n_state + n_rec]]  # the recording carries no gradient
    y = outs[n_state + n_rec + 1 + ops.HS_INDEX[cfg.family]][1:]  # (T, B, R): Hs without its initial row
    trace = _trace(cfg, rec, y, options) if options.recording else None
    if perm is not None:
        inv = layout.inverse
        y = y.index_select(1, inv)
        finals = [s.index_select(0, inv) for s in finals]
        if trace is not None:
            trace = trace.map(lambda t: t.index_select(1, inv))
    return y, (tuple(finals) if is_lstm else finals[0]), trace


def _trace(cfg, rec, y: Tensor, options: RunOptions) -> DirectionTrace:
    """The recording from the Function's saved activations: gates (T, B, G*H) split by name."""
    H = cfg.hidden_size
    trace = DirectionTrace()
    if options.record_gates and cfg.gate_names:
        Z = rec[0]
        if cfg.is_lstm and cfg.coupled:  # stored i | g | o; f = 1 - i
            i = Z[..., :H]
            blocks = {"i": i, "f": 1 - i, "g": Z[..., H : 2 * H], "o": Z[..., 2 * H :]}
        else:
            blocks = dict(zip(cfg.gate_names, Z.split(H, dim=-1)))
        trace.gates = {name: blocks[name] for name in cfg.gate_names}
    if options.record_states:
        trace.states["h"] = y
        if cfg.is_lstm:
            trace.states["c"] = rec[1]
    return trace


def _supports(options: RunOptions, device: torch.device) -> tuple[bool, str]:
    if options.cell.is_min:
        return False, f"no hand-derived BPTT for {options.cell.family} (its scan is the scan backend)"
    return True, ("hand-derived backward through time; serves every cell, variant, recording option and "
                  "recurrent regularizer")


BACKEND = Backend(
    "fused", run_fused, _supports, "autograd.Function per family with a hand-derived BPTT; serves everything"
)
