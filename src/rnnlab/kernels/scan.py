"""The scan backend: minGRU and minLSTM with every gate of every step computed at once, then one linear recurrence.

Their gates read x_t only (cells/minrnn.py), so after the input projection for all T steps each is

    h_t = a_t * h_{t-1} + b_t,        a_t in (0, 1)
    minGRU: a = 1 - z, b = z * h~;   minLSTM: a = f', b = i' * h~  (normalised gates, f' + i' = 1)

All the work that grows with B*T*H except the recurrence itself -- the projection, the gates, the candidate
-- runs as whole-sequence tensor operations. The recurrence is solved by one of two methods:

"log" (Heinsen 2023, "Efficient parallelization of a ubiquitous sequential computation"): unrolled,
h_t = A_t h_0 + sum_{s<=t} (A_t / A_s) b_s with A_t = a_1 ... a_t, evaluated in log space with two scans
torch has as single operations:

    a*_t = cumsum_{s<=t} log a_s                                 (log A_t)
    h_t  = exp(a*_t + logcumsumexp_{s<=t} (log b_s - a*_s)) + exp(a*_t) * h_0

Every log is formed without a division or an overflowing exponential: log(1 - z) = -softplus(k_z),
log f' = -softplus(softplus(-k_f) - softplus(-k_i)), and with log_space the candidate's log g(x) =
log(x + 0.5) or -softplus(-x) (minrnn.log_candidate). h_0 stays out of the logs, so it may have any sign.
The plain candidate (log_space=False) has b_t of any sign, where log b does not exist. Since a_t + w_t = 1
(w = z or i'), the recurrence is a convex combination h_t = a_t h_{t-1} + w_t n_t, and a constant c per
sequence and unit shifts it exactly: h_t + c = a_t (h_{t-1} + c) + w_t (n_t + c). With c = 2 max|n|
(detached: the identity holds for every c) every n + c lies in [max|n|, 3 max|n|], positive, and
subtracting c costs a few ulps of max|n|, the order of the sequential loop's own rounding of w_t n_t.
a*_t grows like t and float32 keeps it to 6e-8 relative, so the error of exp(a*_t - a*_s) grows with the
steps scanned at once: the method runs over chunks of LOG_CHUNK steps carrying h (float32, a MinGRU on
randn*2 inputs, T = 100,000, against float64: max relative error 1.2e-2 in one scan, 9e-5 in chunks of
1024, 2.3e-5 in chunks of 256, 6e-6 in chunks of 64; the sequential loop 3.5e-7).

"loop": a torch.autograd.Function whose forward is h_t = addcmul(b_t, a_t, h_{t-1}) in a loop over t
(vectorised over B and H, no autograd graph per step; for long sequences of few units in two levels of
~sqrt(T) steps, `_solve`) and whose backward is the same recurrence run backwards, g_t = dh_t + a_{t+1}
g_{t+1} (another Function, whose own backward is the forward one, so double backward works), then
da_t = g_t h_{t-1}, db_t = g_t, dh_0 = a_0 g_0. Its rounding is the sequential loop's.

"fused" (the CPU's method when the compiled loops are there): the loop method's equations -- gates,
candidate and recurrence -- in one C pass forward and one backward (minrec_fwd / minrec_bwd in
loop_scan_body.c), from the pre-activations k and h0; it stores y only and the backward recomputes the gates
from k. Its double backward recomputes through the loop method's torch ops (_FusedBackward).

Which runs (`method_for`): "fused" on the CPU ("loop" where the compiled loops are not), "log" elsewhere. Measured on this project's 2-core CPU
(torch 2.13; machine shared, so only the order of magnitude is safe): torch's CPU cumsum and logcumsumexp
are scalar loops, about 30 and 50 ns per element, and logcumsumexp's backward about 280 ns per element, so
"log" trained a MinGRU (T=1000, B=64, H=256) in 11.3 s where the step loop of the reference backend took
1.8 s. "loop" costs one addcmul per step forward and one backward, plus whole-sequence elementwise passes
for the gates; at that size those passes are memory-bound and it measured 2.6 s against the reference's
1.1 s (interleaved, median of 3), while with B*H = 2,048 the two were at par. Its gain is at long T with
few units, where the reference pays Python and autograd for ~10 operations per step (benchmarks/minrnn.py
measures it as model mingru-ref). On a GPU the two scans are parallel kernels and a loop over T is
launch-bound, so "log" is the GPU method (not measured here: no GPU in this session).

Lengths: each row's valid steps are a prefix of the T_run steps, so the steps past a row's length cannot
reach its valid ones; the recurrence runs every row to T_run (what padded steps hold is finite: the layer
zeroes it) and each row's final state is read at its last valid step. Long sequences in bounded memory:
the layer's segment_steps option (checkpointed segments carrying the state) works with this backend.

Example:
    >>> y = linear_recurrence(a, b, h0)          # a, b (T, B, H), h0 (B, H): y_t = a_t y_{t-1} + b_t
    >>> out, h = rnnlab.MinGRU(8, 16, backend="scan")(torch.randn(1000, 4, 8))
"""

from __future__ import annotations

import ctypes
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cells.minrnn import candidate, log_candidate, normalised_gates
from ..cells.projection import input_part
from ..trace import DirectionTrace
from .contract import Backend, BatchLayout, RunOptions, batched, func_transformed, refuse_tracing
from .reference import run_reference
from .fused import compiled
from .fused.common import linear as own_linear

__all__ = ["BACKEND", "BLOCKED_FROM", "BLOCKED_UP_TO", "LOG_CHUNK", "linear_recurrence", "method_for", "run_scan",
           "scan_log"]

# Steps the "log" method scans at once: bounds the float32 error of the cumulative log-gates (docstring).
LOG_CHUNK = 256
# The "loop" method runs in two levels of ~sqrt(T) Python steps each (_solve) from BLOCKED_FROM steps on when a
# step has at most BLOCKED_UP_TO elements (B*H), where Python's cost per step outweighs the step's own work.
# Measured (loaded 2-core machine, one thread, MinGRU forward+backward): B*H = 32, T = 400: 10 vs 13 ms;
# B*H = 128, T = 100,000: 3.2 vs 4.5 s; B*H = 512, T = 10,000 and 20,000: 1.18 vs 0.71 s, 3.9 vs 3.1 s (its
# extra whole-sequence passes cost more than the Python steps they save).
BLOCKED_FROM = 64
BLOCKED_UP_TO = 256


def method_for(device: torch.device) -> str:
    """"fused" on the CPU (the loop method's equations in one C pass; "loop" where the compiled library is
    not there), "log" elsewhere (torch's CPU scans are scalar and slow, see the docstring)."""
    return "fused" if device.type == "cpu" else "log"


def _solve(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """y_t = a_t y_{t-1} + b_t from y_{-1} = h0, without autograd. Two levels when T is long: every block of
    C ~ sqrt(T) steps is run from zero at once (C steps of ops on (T/C, B, H)), with the running product of
    its a; then T/C steps carry the state across blocks; one last operation adds each block's carried state
    times the running product. ~2 sqrt(T) Python steps instead of T, the same products as the plain loop."""
    T, rest = b.shape[0], b.shape[1:]
    if any(batched(t) for t in (a, b, h0)):  # under vmap (a batched backward): no data pointers, no out=
        ys, h = [], h0
        for t in range(T):
            h = torch.addcmul(b[t], a[t], h)
            ys.append(h)
        return torch.stack(ys)
    if b.numel() and compiled.available(b, None) and a.dtype == b.dtype == h0.dtype:
        return compiled.linear_recurrence(a.expand_as(b), b, h0)  # one pass in C (loop_scan_body.c)
    C = math.isqrt(T)
    if T < BLOCKED_FROM or b[0].numel() > BLOCKED_UP_TO:
        y = torch.empty_like(b)  # (T, B, H)
        h = h0
        for t in range(T):
            h = torch.addcmul(b[t], a[t], h, out=y[t])
        return y
    K = -(-T // C)
    if K * C > T:  # pad the last block with a = 1, b = 0 (steps that change nothing)
        a = torch.cat([a, a.new_ones(K * C - T, *rest)])
        b = torch.cat([b, b.new_zeros(K * C - T, *rest)])
    a = a.reshape(K, C, *rest).transpose(0, 1).contiguous()  # (C, K, B, H): step j of every block
    b = b.reshape(K, C, *rest).transpose(0, 1).contiguous()
    local, prod = torch.empty_like(b), torch.empty_like(a)  # from a zero state; prod of a so far
    local[0], prod[0] = b[0], a[0]
    for j in range(1, C):
        torch.addcmul(b[j], a[j], local[j - 1], out=local[j])
        torch.mul(a[j], prod[j - 1], out=prod[j])
    carried = torch.empty_like(b[0])  # (K, B, H): the state entering each block
    h = h0.expand(rest)
    for k in range(K):
        carried[k] = h
        h = torch.addcmul(local[C - 1, k], prod[C - 1, k], h)
    y = torch.addcmul(local, prod, carried)  # (C, K, B, H)
    return y.transpose(0, 1).reshape(K * C, *rest)[:T]


class _Forward(torch.autograd.Function):
    """y_t = a_t y_{t-1} + b_t for t = 0..T-1 from a, b (T, ...) and y_{-1} = h0 (...)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        y = _solve(a, b, h0)  # (T, B, H)
        ctx.save_for_backward(a, y, h0)
        return y

    @staticmethod
    def backward(ctx, dy: Tensor):
        a, y, h0 = ctx.saved_tensors
        g = _Backward.apply(a, dy)  # g_t = dL/dh_t in full = dy_t + a_{t+1} g_{t+1}
        if batched(g):  # under vmap: no in-place writes of batched values into a plain tensor
            da = g * torch.cat([(h0 * torch.ones_like(y[0]))[None], y[:-1]])
        else:
            da = torch.empty_like(a)
            da[1:] = g[1:] * y[:-1]  # g_t h_{t-1}
            da[0] = g[0] * h0
        return da, g, (a[0] * g[0]).sum_to_size(h0.shape)


class _Backward(torch.autograd.Function):
    """y_t = a_{t+1} y_{t+1} + b_t for t = T-1..0, with y_{T-1} = b_{T-1}: the forward's backward, itself
    differentiable (its backward is a _Forward), so double backward works."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        # in reversed time s = T-1-t it is the forward recurrence with coefficients a_{T-s} (s >= 1)
        c = torch.cat([a[:1], a[1:].flip(0)])  # c_0 multiplies the zero start: any value
        y = _solve(c, b.flip(0), torch.zeros_like(b[0])).flip(0)
        ctx.save_for_backward(a, y)
        return y

    @staticmethod
    def backward(ctx, dy: Tensor):
        a, y = ctx.saved_tensors
        q = _Forward.apply(a, dy, torch.zeros_like(dy[0]))  # q_t = dy_t + a_t q_{t-1}
        if batched(q):
            return torch.cat([torch.zeros_like(q[:1] * a[:1]), q[:-1] * y[1:]]), q
        da = torch.zeros_like(a)
        da[1:] = q[:-1] * y[1:]  # a_s multiplies y_s into y_{s-1}
        return da, q


def _fused_args(k: Tensor, h0: Tensor, cfg) -> tuple:
    T, B, GH = k.shape
    H = GH // (3 if cfg.family == "minlstm" else 2)
    return T, B, H, int(cfg.family == "minlstm"), int(bool(cfg.log_space))


def _fused_forward(k: Tensor, bias: Tensor, h0: Tensor, cfg) -> Tensor:
    T, B, H, lstm, log_space = _fused_args(k, h0, cfg)
    y = k.new_empty(T, B, H)
    compiled._call("minrec_fwd", k.dtype, ctypes.c_int(T), ctypes.c_int(B), ctypes.c_int(H), ctypes.c_int(lstm),
                   ctypes.c_int(log_space), compiled._ptr(k), compiled._ptr(bias), compiled._ptr(h0),
                   compiled._ptr(y))
    return y


def _fused_backward(k: Tensor, bias: Tensor, h0: Tensor, y: Tensor, dy: Tensor, cfg) -> tuple[Tensor, Tensor]:
    T, B, H, lstm, log_space = _fused_args(k, h0, cfg)
    dy = dy.contiguous()
    dk, dh0 = torch.empty_like(k), torch.empty_like(h0)
    compiled._call("minrec_bwd", k.dtype, ctypes.c_int(T), ctypes.c_int(B), ctypes.c_int(H), ctypes.c_int(lstm),
                   ctypes.c_int(log_space), compiled._ptr(k), compiled._ptr(bias), compiled._ptr(h0),
                   compiled._ptr(y), compiled._ptr(dy), compiled._ptr(dk), compiled._ptr(dh0))
    return dk, dh0


def _loop_outputs(k: Tensor, h0: Tensor, cfg) -> Tensor:
    """The "loop" method's y from k and h0 in differentiable torch ops: what the fused method's double
    backward differentiates (it recomputes, so the fused pass itself needs no second-order code)."""
    return _run(k, h0, cfg, "loop", False)[0]


class _Fused(torch.autograd.Function):
    """y (T, B, H) from the pre-activations k (T, B, G*H) without their bias, the bias (G*H) and h0 (B, H):
    bias, gates, candidate and recurrence in one pass in C forward (minrec_fwd in loop_scan_body.c) and one
    backward (minrec_bwd), instead of addmm's bias pass and the loop method's dozen whole-sequence elementwise
    passes. Saves k, h0 and y only."""

    @staticmethod
    def forward(ctx, k: Tensor, bias: Tensor, h0: Tensor, cfg) -> Tensor:
        y = _fused_forward(k, bias, h0, cfg)
        ctx.cfg = cfg
        ctx.save_for_backward(k, bias, h0, y)
        return y

    @staticmethod
    def backward(ctx, dy: Tensor):
        k, bias, h0, y = ctx.saved_tensors
        if batched(dy):  # a vmap over this backward (gradcheck's batched gradients, is_grads_batched): the C pass
            # reads raw data pointers, which a batched tensor has not; the log method's torch ops compose with vmap
            return (*_torch_op_grads(k, bias, h0, dy, ctx.cfg, ctx.needs_input_grad[:3]), None)
        dk, dh0 = _FusedBackward.apply(k, bias, h0, y, dy, ctx.cfg)
        dbias = dk.sum(dim=(0, 1)) if ctx.needs_input_grad[1] else None
        return dk, dbias, dh0, None


def _torch_op_grads(k: Tensor, bias: Tensor, h0: Tensor, dy: Tensor, cfg, needs) -> list:
    """(dk, dbias, dh0) of _Fused through the log method's torch ops (the same function): differentiable again when
    a graph of the gradient is asked for, and composable with vmap."""
    graph = torch.is_grad_enabled()
    with torch.enable_grad():
        ins = [t if graph else t.detach().requires_grad_(bool(n)) for t, n in zip((k, bias, h0), needs)]
        y = _run(ins[0] + ins[1], ins[2], cfg, "log", False)[0]
        got = iter(torch.autograd.grad(y, [t for t, n in zip(ins, needs) if n], dy, create_graph=graph,
                                       allow_unused=True))
    return [next(got) if n else None for n in needs]


class _FusedBackward(torch.autograd.Function):
    """(dk, dh0) of _Fused, in C; differentiable through a recomputation with the loop method's torch ops,
    so gradgradcheck and double backward hold. y is the forward's output, a function of k, bias and h0: the
    recomputation goes through them, so y itself gets no gradient here (it would be counted twice)."""

    @staticmethod
    def forward(ctx, k: Tensor, bias: Tensor, h0: Tensor, y: Tensor, dy: Tensor, cfg):
        ctx.cfg = cfg
        ctx.save_for_backward(k, bias, h0, dy)
        return _fused_backward(k, bias, h0, y, dy, cfg)

    @staticmethod
    def backward(ctx, ddk: Tensor, ddh0: Tensor):
        k, bias, h0, dy = ctx.saved_tensors
        with torch.enable_grad():
            k_, b_, h0_, dy_ = (t.detach().requires_grad_() for t in (k, bias, h0, dy))
            y_ = _loop_outputs(k_ + b_, h0_, ctx.cfg)
            dk_, dh0_ = torch.autograd.grad(y_, (k_, h0_), dy_, create_graph=True)
            outs = [(o, g) for o, g in ((dk_, ddk), (dh0_, ddh0)) if g is not None]
            gk, gb, gh0, gdy = torch.autograd.grad([o for o, _ in outs], (k_, b_, h0_, dy_), [g for _, g in outs],
                                                   allow_unused=True)
        return gk, gb, gh0, None, gdy, None


# Under torch.compile / torch.export the C pass cannot be traced (it reads raw data pointers): it runs as two
# registered operators with fake (shape-only) implementations, so a graph holds one op per layer-direction and
# T and B stay symbolic. Eager calls keep the autograd.Functions above (their double backward).
class _Cfg:
    """What _run reads of a cell config (family, log_space), rebuilt from the operators' plain arguments."""

    def __init__(self, lstm: bool, log_space: bool) -> None:
        self.family, self.log_space = ("minlstm" if lstm else "mingru"), log_space


@torch.library.custom_op("rnnlab::minrec_forward", mutates_args=())
def minrec_forward(k: Tensor, bias: Tensor, h0: Tensor, lstm: bool, log_space: bool) -> Tensor:
    """y (T, B, H) from k (T, B, G*H) without bias, bias (G*H), h0 (B, H): the fused pass (or, without the
    compiled library, the loop method's torch ops)."""
    cfg = _Cfg(lstm, log_space)
    if fused_serves(k, h0):
        return _fused_forward(k.contiguous(), bias.contiguous(), h0.contiguous(), cfg)
    with torch.no_grad():
        return _run(k + bias, h0, cfg, "loop", False)[0]


@minrec_forward.register_fake
def _(k, bias, h0, lstm, log_space):
    T, B, GH = k.shape
    return k.new_empty(T, B, GH // (3 if lstm else 2))


@torch.library.custom_op("rnnlab::minrec_backward", mutates_args=())
def minrec_backward(k: Tensor, bias: Tensor, h0: Tensor, y: Tensor, dy: Tensor, lstm: bool,
                    log_space: bool) -> tuple[Tensor, Tensor]:
    """(dk, dh0) of minrec_forward."""
    cfg = _Cfg(lstm, log_space)
    if fused_serves(k, h0):
        return _fused_backward(k.contiguous(), bias.contiguous(), h0.contiguous(), y.contiguous(), dy, cfg)
    with torch.enable_grad():
        k_, h0_ = k.detach().requires_grad_(), h0.detach().requires_grad_()
        dk, dh0 = torch.autograd.grad(_run(k_ + bias, h0_, cfg, "loop", False)[0], (k_, h0_), dy)
    return dk, dh0


@minrec_backward.register_fake
def _(k, bias, h0, y, dy, lstm, log_space):
    return torch.empty_like(k), torch.empty_like(h0)


def _op_setup(ctx, inputs, output) -> None:
    k, bias, h0, lstm, log_space = inputs
    ctx.save_for_backward(k, bias, h0, output)
    ctx.flags = (lstm, log_space)


def _op_backward(ctx, dy):
    k, bias, h0, y = ctx.saved_tensors
    dk, dh0 = minrec_backward(k, bias, h0, y, dy, *ctx.flags)
    return dk, dk.sum(dim=(0, 1)), dh0, None, None


minrec_forward.register_autograd(_op_backward, setup_context=_op_setup)


def _fused_apply(k: Tensor, bias: Tensor, h0: Tensor, cfg) -> Tensor:
    """The fused pass: the registered operator inside torch.compile / torch.export, the autograd.Function
    (double backward) otherwise."""
    if torch.compiler.is_compiling():
        return minrec_forward(k, bias, h0, cfg.family == "minlstm", bool(cfg.log_space))
    return _Fused.apply(k, bias, h0, cfg)


def _fused_ok(k: Tensor, h0: Tensor) -> bool:
    """Whether the fused method runs: inside torch.compile the operator decides at run time (it falls back to the
    loop method's ops itself), since loading the compiled library cannot be traced."""
    return torch.compiler.is_compiling() or fused_serves(k, h0)


def fused_serves(k: Tensor, h0: Tensor) -> bool:
    """Whether the fused method's C pass serves these tensors (CPU, float32/float64, the compiled library)."""
    return compiled.available(k, None) and k.dtype == h0.dtype


def linear_recurrence(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """h_t = a_t h_{t-1} + b_t over dim 0 of a, b (T, ...), from h0 (...): the "loop" method."""
    return _Forward.apply(a, b, h0)


def scan_log(log_a: Tensor, log_b: Tensor, h0: Tensor) -> Tensor:
    """h_t = a_t h_{t-1} + b_t over dim 0, from log a, log b (T, ...) and h0 (...): one chunk of the "log" method."""
    a_star = torch.cumsum(log_a, dim=0)  # (T, B, H): log A_t
    return torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=0)) + torch.exp(a_star) * h0


def _log_method(log_a: Tensor, log_w: Tensor, n: Tensor | None, log_n: Tensor | None, h0: Tensor) -> Tensor:
    """h_t = a_t h_{t-1} + w_t n_t in chunks of LOG_CHUNK steps; log_n given (log_space) or n of any sign."""
    h, ys = h0, []
    for start in range(0, log_a.shape[0], LOG_CHUNK):
        part = slice(start, start + LOG_CHUNK)
        if log_n is not None:
            y = scan_log(log_a[part], log_w[part] + log_n[part], h)
        else:  # the shift of the docstring: n + c > 0
            c = 2.0 * n[part].detach().abs().amax(dim=0) + torch.finfo(n.dtype).tiny  # (B, H)
            y = scan_log(log_a[part], log_w[part] + torch.log(n[part] + c), h + c) - c
        ys.append(y)
        h = y[-1]
    return ys[0] if len(ys) == 1 else torch.cat(ys)


def run_scan(x: Tensor, params: dict[str, Tensor], h0: Tensor, layout: BatchLayout, options: RunOptions):
    refuse_tracing("scan backend")  # its chunks and compiled loop are sized from the example
    if func_transformed():  # torch.func: its autograd.Functions have no setup_context; the loop over the cell's step
        return run_reference(x, params, h0, layout, options)
    cfg = options.cell
    method = method_for(x.device)
    bias = params.get("bias_ih")
    if method == "fused" and bias is not None and _fused_ok(x, h0):  # the bias added inside the C pass
        # (T, B, G*H): every gate pre-activation but the bias, one matmul forward and two backward, on the compiled
        # loops' kernels (MKL's, which F.linear's backward calls, runs AVX2 code on this project's AMD machine)
        k = own_linear(x, params["weight_ih"])
        k = k if k.dtype == h0.dtype else k.to(h0.dtype)  # autocast lowered the projection; the scan runs in float32
        y = _fused_apply(k, bias.contiguous(), h0.expand(k.shape[1], -1).contiguous(), cfg)
        gates = _loop_terms(k + bias, cfg)[2] if options.record_gates else {}
    else:
        k = input_part(x, params, cfg)  # (T, B, G*H): every gate pre-activation at once, one matmul
        k = k if k.dtype == h0.dtype else k.to(h0.dtype)  # autocast lowered the projection; the scan runs in float32
        y, gates = _run(k, h0, cfg, method, options.record_gates)  # (T, B, H)

    h = y[-1]
    if layout.padded:  # each row's state after its own last valid step
        h = y[layout.lengths - 1, torch.arange(y.shape[1], device=y.device)]
    trace = None
    if options.recording:
        trace = DirectionTrace()
        if options.record_gates:
            trace.gates.update(gates)
        if options.record_states:
            trace.states["h"] = y
    return y, h, trace


def _loop_terms(k: Tensor, cfg) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """(a, b, gates) of h_t = a_t h_{t-1} + b_t from the pre-activations k (T, B, G*H), in torch ops; `gates` is
    what a recording keeps (z, h~ / f', i', h~)."""
    if cfg.family == "mingru":
        k_z, k_h = k.chunk(2, dim=-1)
        z, n = torch.sigmoid(k_z), candidate(k_h, cfg)
        return 1.0 - z, z * n, {"z": z, "h~": n}
    k_f, k_i, k_h = k.chunk(3, dim=-1)
    (f, i), n = normalised_gates(k_f, k_i), candidate(k_h, cfg)
    return f, i * n, {"f": f, "i": i, "h~": n}


def _run(k: Tensor, h0: Tensor, cfg, method: str, record: bool) -> tuple[Tensor, dict[str, Tensor]]:
    """(h (T, B, H), the gates by name if `record`) from the pre-activations k (T, B, G*H) and h0 (B, H)."""
    if method == "fused" and _fused_ok(k, h0):
        y = _fused_apply(k.contiguous(), k.new_zeros(k.shape[-1]), h0.expand(k.shape[1], -1).contiguous(), cfg)
        return y, (_loop_terms(k, cfg)[2] if record else {})
    if method != "log":  # "loop", or "fused" where the compiled library is not there
        a, b, gates = _loop_terms(k, cfg)
        return linear_recurrence(a, b, h0), gates if record else {}

    if cfg.family == "mingru":
        k_z, k_h = k.chunk(2, dim=-1)
        log_a, log_w = -F.softplus(k_z), -F.softplus(-k_z)  # log(1 - z), log z
    else:
        k_f, k_i, k_h = k.chunk(3, dim=-1)
        diff = F.softplus(-k_f) - F.softplus(-k_i)  # log i - log f
        log_a, log_w = -F.softplus(diff), -F.softplus(-diff)  # log f/(f+i), log i/(f+i)
    n = candidate(k_h, cfg)  # (T, B, H): h~
    y = _log_method(log_a, log_w, n, log_candidate(k_h) if cfg.log_space else None, h0)
    return y, (_loop_terms(k, cfg)[2] if record else {})


def _supports(options: RunOptions, device: torch.device) -> tuple[bool, str]:
    cfg = options.cell
    if not cfg.is_min:
        return False, f"a scan needs gates that do not read h_(t-1): minGRU/minLSTM only, not {cfg.family}"
    how = {"fused": "gates and recurrence in one C pass forward and one backward",
           "loop": "one addcmul per step forward and backward", "log": "a log-space parallel scan"}
    return True, f"minGRU/minLSTM: every gate of every step at once, then {how[method_for(device)]}"


BACKEND = Backend("scan", run_scan, _supports, "minGRU/minLSTM: gates of all steps at once, then the linear recurrence")
