"""The fused backend: one torch.autograd.Function per cell family with a hand-derived backward through time.

Serves every family, variant and combination, `lengths`, recording (the saved activations *are* the
recording, so it costs one copy of the gates), CPU and CUDA, float32/float64. Double backward works by
differentiating the reference path (see common.py). On the CPU the LSTM's and GRU's time loops run as C
compiled on first use (compiled.py), else as torch ops from Python; both are tested equal to the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...trace import DirectionTrace
from ..registry import Backend, RunOptions, register
from .common import Spec
from .gru import GRUFunction
from .lstm import LSTMFunction
from .rnn import RNNFunction

__all__ = ["run_fused"]


def _batch_layout(lengths: Tensor | None, T: int):
    """(permutation or None, active rows per step or None, last step per row or None, steps to run)."""
    if lengths is None:
        return None, None, None, T
    lens = lengths.cpu()
    if int(lens.min()) == T:  # nothing padded: the plain path
        return None, None, None, T
    sorted_lens, perm = torch.sort(lens, descending=True, stable=True)
    T_run = int(sorted_lens[0])
    bs = tuple((sorted_lens[None, :] > torch.arange(T_run)[:, None]).sum(1).tolist())
    if torch.equal(perm, torch.arange(len(lens))):
        perm = None
    last = (sorted_lens - 1).to(lengths.device)
    return (None if perm is None else perm.to(lengths.device)), bs, last, T_run


def run_fused(x: Tensor, params: dict[str, Tensor], h0, lengths: Tensor | None, options: RunOptions):
    cfg = options.cell
    T = x.shape[0]
    perm, bs, last, T_run = _batch_layout(lengths, T)
    is_lstm = cfg.is_lstm
    state = list(h0) if is_lstm else [h0]
    if perm is not None:  # longest first, as the Function expects; undone on the way out
        x = x.index_select(1, perm)
        state = [s.index_select(0, perm) for s in state]
    if T_run < T:
        x = x[:T_run]
    names = tuple(params)
    spec = Spec(cfg, names, bs, last, options.recording)
    fn = LSTMFunction if is_lstm else (GRUFunction if cfg.family == "gru" else RNNFunction)
    outs = fn.apply(spec, x, *state, *params.values())
    n_state = 2 if is_lstm else 1
    y, finals, rec = outs[0], list(outs[1 : 1 + n_state]), outs[1 + n_state :]

    trace = None
    if options.recording:
        trace = _trace(cfg, rec, y, options, bs is not None)
    if perm is not None:
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(len(perm), device=perm.device)
        y = y.index_select(1, inv)
        finals = [s.index_select(0, inv) for s in finals]
        if trace is not None:
            trace = trace.map(lambda t: t.index_select(1, inv))
    if T_run < T:
        pad = (0, 0, 0, 0, 0, T - T_run)
        y = F.pad(y, pad)
        if trace is not None:
            trace = trace.map(lambda t: F.pad(t, pad))
    return y, (tuple(finals) if is_lstm else finals[0]), trace


def _trace(cfg, rec, y: Tensor, options: RunOptions, bs_padded: bool) -> DirectionTrace:
    """The recording from the Function's saved activations: gates (T, B, G*H) split by name."""
    H = cfg.hidden_size
    trace = DirectionTrace()
    if options.record_gates and cfg.gate_names:
        Z = rec[0]
        if cfg.is_lstm and cfg.coupled:  # stored i | g | o; f = 1 - i (zero at padded steps, as i)
            i = Z[..., :H]
            f = torch.where(i != 0, 1 - i, 0.0) if bs_padded else 1 - i
            blocks = {"i": i, "f": f, "g": Z[..., H : 2 * H], "o": Z[..., 2 * H :]}
        else:
            blocks = dict(zip(cfg.gate_names, Z.split(H, dim=-1)))
        trace.gates = {name: blocks[name] for name in cfg.gate_names}
    if options.record_states:
        trace.states["h"] = y
        if cfg.is_lstm:
            trace.states["c"] = rec[1]
    return trace


def _supports(options: RunOptions, device: torch.device) -> tuple[bool, str]:
    return True, "hand-derived backward through time; serves every cell, variant and recording option"


register(
    Backend("fused", run_fused, _supports, "autograd.Function per family with a hand-derived BPTT; serves everything"),
    auto_rank=None,
)
