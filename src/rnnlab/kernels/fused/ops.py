"""The fused backend as two PyTorch operators, so that torch.compile, torch.export and torch.func see one op per
layer-direction instead of ctypes calls and Python loops.

    rnnlab::fused_forward(x, state, tensors, family, hidden_size, proj_size, flags, lengths, keep)
        -> [h_n, (c_n), (recorded gates, cells), path, *buffers]
    rnnlab::fused_backward(grads, x, state, tensors, ..., path, buffers, needs) -> [dx, dstate..., dtensors...]

`tensors` holds the parameters and the loop's regularization masks in the fixed order ROLES (None where a role
is absent); `lengths` the sorted valid lengths (B,) when the batch is padded, else None; `flags` the variants
(FLAGS). The operators run the families' existing forward and backward bodies (lstm.py, gru.py, rnn.py, which
take an autograd context) on a stand-in context, and return what backward needs as outputs (`buffers`, the
outputs at padded steps as the bodies leave them). Their shapes follow from the configuration alone
(`buffer_shapes`): that is what the fake (meta) implementations return, for symbolic T and B. `path` (1,) says
whether the forward ran the compiled C loop or the torch-op loop (backward must run the same).

Autograd: `fused_backward` (the hand-derived BPTT). When a graph of the gradient is asked for (create_graph,
torch.func.grad, gradgradcheck), the layer-direction is recomputed with the reference backend and that is
differentiated, to any order (as the autograd.Functions did). vmap: the forward operator loops over the vmapped
dimension (each slice is an ordinary call). Under a torch.func transform (grad, vjp, jacrev, vmap) the layers do
not call the operators: run_fused computes the layer-direction with the reference backend, whose plain ops every
transform composes to any order (the operators' recomputed backward did not connect to the transform's level:
jacrev returned zeros). A vmap over backward outside torch.func (gradcheck's batched gradients) goes through the
reference path inside backward.
Autocast: the operators have no autocast rule, so their inputs arrive in the parameters' precision and the loops
run in it (autocast is switched off inside them): the answer is the float32 one, autocast's speed-up is not taken.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from ...cells.config import CellConfig
from ..contract import BatchLayout, RunOptions, batched, func_transformed
from ..reference import run_reference
from .common import Spec, split_masks
from .gru import GRUFunction
from .lstm import LSTMFunction
from .rnn import RNNFunction

__all__ = ["Call", "FusedLayer", "ROLES", "buffer_shapes", "fused_backward", "fused_forward"]

ROLES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_ci", "weight_cf", "weight_co",
         "ln_weight_ih", "ln_weight_hh", "ln_weight_c", "ln_bias_c", "recurrent", "zone_c", "zone_h")
FLAGS = {"peephole": 1, "coupled": 2, "layer_norm": 4}
_BIAS_IH = ROLES.index("bias_ih")
_FUNCTIONS = {"lstm": LSTMFunction, "gru": GRUFunction, "rnn_tanh": RNNFunction, "rnn_relu": RNNFunction}
HS_INDEX = {"lstm": 1, "gru": 2, "rnn_tanh": 0, "rnn_relu": 0}  # where Hs (T+1, B, R) sits among the buffers


def roles_of(tensors: list) -> tuple[list[Tensor], int]:
    """(the tensors present, in ROLES order; the bitmask of their roles) from a ROLES-long list with Nones."""
    return [t for t in tensors if t is not None], sum(1 << k for k, t in enumerate(tensors) if t is not None)


def _expand(present: list, roles: int) -> list:
    """The ROLES-long list, None where a role is absent (roles_of undone)."""
    it = iter(present)
    return [next(it) if roles >> k & 1 else None for k in range(len(ROLES))]


def flags_of(cfg: CellConfig) -> int:
    return sum(bit for name, bit in FLAGS.items() if getattr(cfg, name))


def _cfg(family: str, x: Tensor, hidden_size: int, proj_size: int, flags: int, tensors) -> CellConfig:
    I, bias = x.shape[-1], tensors[_BIAS_IH] is not None
    make = _cell_config if type(I) is int else _cell_config.__wrapped__
    return make(family, I, hidden_size, bias, proj_size, flags)


@functools.lru_cache(maxsize=256)
def _cell_config(family: str, input_size, hidden_size: int, bias: bool, proj_size: int, flags: int) -> CellConfig:
    """One CellConfig per layer shape (a frozen dataclass, checked when built: per call it was a small layer's
    inference overhead). Symbolic sizes (torch.compile) are built each time, not cached."""
    return CellConfig(family, input_size, hidden_size, bias, proj_size, bool(flags & 1), bool(flags & 2),
                      bool(flags & 4))


def buffer_shapes(cfg: CellConfig, T, B, keep: bool, tensors) -> list:
    """The shape of each buffer forward hands to backward (None: a (0,) placeholder), by family:
    LSTM (Z, Hs, Cs, M, Rr, ST, CT, xw, mean, rstd), GRU (Z, Bh, Hs, Rr, ST, xw, mean, rstd),
    RNN (Hs, Rr, HT, xw, mean, rstd). keep=False (no backward will run): Hs only."""
    H, R, GH, ln = cfg.hidden_size, cfg.state_size, cfg.num_blocks * cfg.hidden_size, cfg.layer_norm
    has = {r for r, t in zip(ROLES, tensors) if t is not None}

    def k(shape, cond=True):
        return shape if keep and cond else None

    ln_in = [k((T, B, GH), ln), k((T, B, 1), ln), k((T, B, 1), ln)]
    if cfg.is_lstm:
        return [k((T, B, GH)), (T + 1, B, R), k((T + 1, B, H)), k((T, B, H), cfg.proj_size > 0), k((T, B, GH), ln),
                k((T, B, 4), ln), k((T, B, H), "zone_c" in has), *ln_in]
    if cfg.family == "gru":
        return [k((T, B, GH)), k((T, B, GH)), (T + 1, B, H), k((T, B, GH), ln), k((T, B, 2), ln), *ln_in]
    return [(T + 1, B, H), k((T, B, H), ln), k((T, B, H), "zone_h" in has), *ln_in]


def _spec(cfg: CellConfig, tensors, lengths: Tensor | None, T: int, record: bool) -> tuple[Spec, list[Tensor]]:
    present = [(r, t) for r, t in zip(ROLES, tensors) if t is not None]
    bs = last = None
    if lengths is not None:
        lens = lengths.cpu()
        bs = tuple((lens[None, :] > torch.arange(T)[:, None]).sum(1).tolist())
        last = lengths - 1
    return Spec(cfg, tuple(r for r, _ in present), bs, last, record), [t for _, t in present]


class _Context:
    """What the families' forward/backward bodies read and write on an autograd context."""

    def __init__(self, spec: Spec | None = None, needs=(), saved=(), n_inputs: int = 0, compiled: bool = False):
        self.spec, self.needs_input_grad, self.saved_tensors = spec, tuple(needs), tuple(saved)
        self.n_inputs, self.compiled = n_inputs, compiled

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *tensors):
        pass


def _fresh(outs: list[Tensor], inputs: list) -> list[Tensor]:
    """An operator's outputs may alias neither its inputs nor each other: copy any that would. (A view of a buffer
    made inside is fine alone: the compiled LSTM's gate buffer is a view of the input projection, not copied.)"""
    seen = {t.untyped_storage().data_ptr() for t in inputs if isinstance(t, Tensor) and t.numel()}
    fresh = []
    for t in outs:
        if t.numel() and t.untyped_storage().data_ptr() in seen:
            t = t.clone()
        if t.numel():
            seen.add(t.untyped_storage().data_ptr())
        fresh.append(t)
    return fresh


@torch.library.custom_op("rnnlab::fused_forward", mutates_args=())
def fused_forward(x: Tensor, state: list[Tensor], present: list[Tensor], roles: int, family: str, hidden_size: int,
                  proj_size: int, flags: int, lengths: Tensor | None, keep: bool, record: bool) -> list[Tensor]:
    return _forward_body(x, state, present, roles, family, hidden_size, proj_size, flags, lengths, keep, record)


def _forward_body(x, state, present, roles, family, hidden_size, proj_size, flags, lengths, keep, record,
                  fresh: bool = True) -> list[Tensor]:
    """fused_forward's work; fresh=False (eager calls through FusedLayer, not the operator) skips the copies
    an operator's outputs need so as not to alias its inputs or each other."""
    tensors = _expand(present, roles)
    cfg = _cfg(family, x, hidden_size, proj_size, flags, tensors)
    T, B = x.shape[0], x.shape[1]
    spec, present = _spec(cfg, tensors, lengths, T, record)
    ctx = _Context(needs=(False, keep))
    if torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type) or fresh:
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            outs = _FUNCTIONS[family].forward(ctx, spec, x, *state, *present)
    else:  # eager inference: neither context has anything to switch off (each cost a small layer 5-10 %)
        outs = _FUNCTIONS[family].forward(ctx, spec, x, *state, *present)
    n_state = len(state)
    finals, recorded = list(outs[1 : 1 + n_state]), list(outs[1 + n_state :])
    buffers = []
    empty = None if fresh else x.new_empty(0)  # eager: one placeholder for every absent buffer
    for b, shape in zip(ctx.saved_tensors[ctx.n_inputs :], buffer_shapes(cfg, T, B, keep, tensors)):
        if shape is None:
            b = x.new_empty(0) if empty is None else empty
        elif b is None or tuple(b.shape) != tuple(shape):  # a buffer this path does not fill (ST in torch ops)
            b = x.new_zeros(shape)
        buffers.append(b)
    path = torch.tensor([int(getattr(ctx, "compiled", False))], dtype=torch.int64, device=x.device)  # as the fake
    outs = [*finals, *recorded, path, *buffers]
    return _fresh(outs, [x, *state, *present]) if fresh else outs


@fused_forward.register_fake
def _(x, state, present, roles, family, hidden_size, proj_size, flags, lengths, keep, record):
    tensors = _expand(present, roles)
    cfg = _cfg(family, x, hidden_size, proj_size, flags, tensors)
    T, B = x.shape[0], x.shape[1]
    H, R, GH = cfg.hidden_size, cfg.state_size, cfg.num_blocks * cfg.hidden_size
    finals = [x.new_empty(B, R)] + ([x.new_empty(B, H)] if cfg.is_lstm else [])
    recorded = []
    if record and family != "rnn_tanh" and family != "rnn_relu":
        recorded = [x.new_empty(T, B, GH)] + ([x.new_empty(T, B, H)] if cfg.is_lstm else [])
    buffers = [x.new_empty(0) if s is None else x.new_empty(s) for s in buffer_shapes(cfg, T, B, keep, tensors)]
    return [*finals, *recorded, x.new_empty(1, dtype=torch.int64), *buffers]


@torch.library.custom_op("rnnlab::fused_backward", mutates_args=())
def fused_backward(grads: list[Tensor], x: Tensor, state: list[Tensor], present: list[Tensor], roles: int,
                   family: str, hidden_size: int, proj_size: int, flags: int, lengths: Tensor | None, path: Tensor,
                   buffers: list[Tensor], needs: list[bool]) -> list[Tensor]:
    return _backward_body(grads, x, state, present, roles, family, hidden_size, proj_size, flags, lengths, path,
                          buffers, needs)


def _backward_body(grads, x, state, present, roles, family, hidden_size, proj_size, flags, lengths, path, buffers,
                   needs, fresh: bool = True) -> list[Tensor]:
    """fused_backward's work (fresh: as in _forward_body)."""
    tensors = _expand(present, roles)
    cfg = _cfg(family, x, hidden_size, proj_size, flags, tensors)
    T, B = x.shape[0], x.shape[1]
    spec, present = _spec(cfg, tensors, lengths, T, False)
    shapes = buffer_shapes(cfg, T, B, True, tensors)
    saved = [x, *state, *present, *[None if s is None else b for b, s in zip(buffers, shapes)]]
    ctx = _Context(spec, (False, *needs), saved, 1 + len(state) + len(present), bool(path.item()))
    with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
        got = _FUNCTIONS[family].backward(ctx, *grads)[1:]
    inputs = [x, *state, *present]
    if not fresh:
        return list(got)
    outs = [g if g is not None else torch.zeros_like(t) for g, t in zip(got, inputs)]
    return _fresh([g.contiguous() for g in outs], [*grads, *inputs, *buffers])


@fused_backward.register_fake
def _(grads, x, state, present, roles, family, hidden_size, proj_size, flags, lengths, path, buffers, needs):
    return [torch.empty_like(t) for t in [x, *state, *present]]


@dataclass(frozen=True)
class Call:
    """The non-tensor arguments of one fused_forward call (what backward needs to know of it)."""

    roles: int
    family: str
    hidden_size: int
    proj_size: int
    flags: int
    keep: bool
    record: bool
    n_state: int

    @property
    def args(self) -> tuple:
        return self.family, self.hidden_size, self.proj_size, self.flags

    @property
    def n_out(self) -> int:
        """Outputs before `path`: the final states and the recording."""
        return self.n_state * (2 if self.record and not self.family.startswith("rnn") else 1)


def _through_operator(x: Tensor) -> bool:
    """Whether a call goes through the registered operators: inside torch.compile / torch.export, and for any
    tensor that is not a plain one (fake, functional, batched). Eager calls run the same bodies directly: the
    operators' dispatch and the copies that keep their outputs from aliasing cost 10-35 % of a training step
    (benchmarks.layers: lstm-ln 1.15 -> 1.55x torch.nn at S1 through the operators)."""
    return torch.compiler.is_compiling() or type(x) is not Tensor


def forward(call: Call, x: Tensor, lengths: Tensor | None, state, present) -> list[Tensor]:
    if _through_operator(x):
        return fused_forward(x, list(state), list(present), call.roles, *call.args, lengths, call.keep, call.record)
    return _forward_body(x, list(state), list(present), call.roles, *call.args, lengths, call.keep, call.record,
                         fresh=False)


def _grads(call: Call, x, lengths, state, present, path, buffers, grads, needs) -> list | None:
    """Gradients for [x, *state, *present] (None where not needed) from the outputs' gradients, or None when no
    output got one."""
    Hs = buffers[HS_INDEX[call.family]]
    d_finals = grads[: call.n_state]
    d_hs = grads[call.n_out + 1 + HS_INDEX[call.family]]
    if d_hs is None and all(g is None for g in d_finals):
        return None
    dY = d_hs[1:] if d_hs is not None else Hs.new_zeros(Hs[1:].shape)
    d_finals = [g if g is not None else torch.zeros_like(s) for g, s in zip(d_finals, state)]
    # a graph of the gradient asked for (create_graph, torch.func.grad), or a vmap over this backward (jacrev,
    # batched gradients in gradcheck): differentiate the reference path
    if torch.is_grad_enabled() or any(batched(g) for g in (dY, *d_finals)) or func_transformed():
        got = _reference_grads(call.family, call.args, x, list(state), _expand(list(present), call.roles), lengths,
                               [dY, *d_finals], needs)
    else:
        body = fused_backward if _through_operator(x) else functools.partial(_backward_body, fresh=False)
        got = body([dY.contiguous(), *d_finals], x, list(state), list(present), call.roles, *call.args,
                   lengths, path, list(buffers), list(needs))
    return [g if n else None for g, n in zip(got, needs)]


class FusedLayer(torch.autograd.Function):
    """The autograd of fused_forward for eager mode, torch.func (grad, vmap, jacrev) and torch.compile: an
    autograd.Function with a separate setup_context (what torch.func requires) whose forward and backward are the
    two operators; vmap is generated from the operators' own vmap rules."""

    generate_vmap_rule = True  # for direct use under vmap; the layers go to the reference under torch.func

    @staticmethod
    def forward(call: Call, x: Tensor, lengths: Tensor | None, *tensors: Tensor):
        return tuple(forward(call, x, lengths, tensors[: call.n_state], tensors[call.n_state :]))

    @staticmethod
    def setup_context(ctx, inputs, output):
        call, x, lengths, *tensors = inputs
        path, buffers = output[call.n_out], output[call.n_out + 1 :]
        # outputs without a gradient arrive as None, not as zeros: materialized, every buffer (the gates, the layer
        # norm's inputs: several (T, B, G*H)) was zero-filled each backward, 10-30 % of a training step
        ctx.set_materialize_grads(False)
        ctx.call, ctx.has_lengths = call, lengths is not None
        ctx.save_for_backward(x, *tensors, *([lengths] if lengths is not None else []), path, *buffers)
        hs = buffers[HS_INDEX[call.family]]
        ctx.mark_non_differentiable(*output[call.n_state : call.n_out], path,
                                    *[b for b in buffers if b is not hs])

    @staticmethod
    def backward(ctx, *grads):
        call: Call = ctx.call
        saved = list(ctx.saved_tensors)
        n = 1 + len(ctx.needs_input_grad) - 3  # x and the state and parameter tensors
        x, tensors, rest = saved[0], saved[1:n], saved[n:]
        lengths = rest.pop(0) if ctx.has_lengths else None
        needs = [ctx.needs_input_grad[1], *ctx.needs_input_grad[3:]]
        got = _grads(call, x, lengths, tensors[: call.n_state], tensors[call.n_state :], rest[0], rest[1:], grads,
                     needs)
        if got is None:
            return (None,) * len(ctx.needs_input_grad)
        return None, got[0], None, *got[1:]


def _setup_context(ctx, inputs, output):
    x, state, present, roles, family, hidden_size, proj_size, flags, lengths, keep, record = inputs
    ctx.call = Call(roles, family, hidden_size, proj_size, flags, keep, record, len(state))
    ctx.has_lengths, ctx.n_present = lengths is not None, len(present)
    path, buffers = output[ctx.call.n_out], output[ctx.call.n_out + 1 :]
    ctx.save_for_backward(x, *state, *present, *([lengths] if lengths is not None else []), path, *buffers)


def _backward(ctx, grads):
    """register_autograd's backward, for a direct call of the operator (the layers go through FusedLayer)."""
    call: Call = ctx.call
    saved = list(ctx.saved_tensors)
    x, state, rest = saved[0], saved[1 : 1 + call.n_state], saved[1 + call.n_state :]
    present, rest = rest[: ctx.n_present], rest[ctx.n_present :]
    lengths = rest.pop(0) if ctx.has_lengths else None
    needs_x, needs_state, needs_present = ctx.needs_input_grad[:3]
    got = _grads(call, x, lengths, state, present, rest[0], rest[1:], grads, [needs_x, *needs_state, *needs_present])
    if got is None:
        return None, [None] * len(state), [None] * len(present), *[None] * 8
    return got[0], got[1 : 1 + call.n_state], got[1 + call.n_state :], *[None] * 8


def _reference_grads(family, args, x, state, tensors, lengths, grads_out, needs) -> list:
    """Gradients through the reference backend, recorded so that they can be differentiated again."""
    cfg = _cfg(family, x, *args[1:], tensors)
    named = {r: t for r, t in zip(ROLES, tensors) if t is not None}
    params, masks = split_masks(named)
    layout = BatchLayout.of(lengths, x.shape[0])  # rows already sorted, longest first
    h0 = tuple(state) if cfg.is_lstm else state[0]
    inputs = [x, *state, *named.values()]
    wanted = [t for t, n in zip(inputs, needs) if n]
    graph = torch.is_grad_enabled()
    with torch.enable_grad():
        if not graph:  # a batched backward under no_grad: a graph of the recomputation only, on leaves
            inputs = [t.detach().requires_grad_(n) for t, n in zip(inputs, needs)]
            x, state, named = inputs[0], inputs[1 : 1 + len(state)], dict(zip(named, inputs[1 + len(state) :]))
            params, masks = split_masks(named)
            h0 = tuple(state) if cfg.is_lstm else state[0]
            wanted = [t for t, n in zip(inputs, needs) if n]
        y, h_n, _ = run_reference(x, params, h0, layout, RunOptions(cfg, masks=masks))
        outs = [layout.zero_padding(y), *(h_n if cfg.is_lstm else (h_n,))]
        got = iter(torch.autograd.grad(outs, wanted, grads_out, create_graph=graph, allow_unused=True))
    return [(next(got) if n else None) for n in needs]


fused_forward.register_autograd(_backward, setup_context=_setup_context)


def _vmap_loop(op):
    """A vmap rule that runs `op` once per slice of the vmapped dimension and stacks the results."""
    def rule(info, in_dims, *args):
        def pick(a, d, i):
            if isinstance(a, (list, tuple)):
                return [pick(v, dv, i) for v, dv in zip(a, d if isinstance(d, (list, tuple)) else [d] * len(a))]
            return a if d is None or not isinstance(a, Tensor) else a.select(d, i)
        outs = [op(*[pick(a, d, i) for a, d in zip(args, in_dims)]) for i in range(info.batch_size)]
        stacked = [torch.stack(list(ts)) for ts in zip(*outs)]
        return stacked, [0] * len(stacked)
    return rule


torch.library.register_vmap(fused_forward, _vmap_loop(fused_forward))
