"""What the fused Functions share: rows per step from the layer's BatchLayout, per-step views, what backward
keeps (save/saved), the Python loops' skeleton (recurrent_forward, backward_through_time), the input-side
products, the double-backward route.

Lengths. The backend sorts the batch in the layer's BatchLayout order, longest first (like a PackedSequence),
so that at step t the sequences still running are the first bs[t] (layout.batch_sizes[t]) rows. Every step
then works on row slices [:bs[t]]: finished sequences are neither computed nor changed, and no masking op
runs inside the loop. The rows a loop never writes hold zeros (`alloc`), because the time-parallel sums
after the loop (weight gradients) read every row.

Double backward. The hand-derived backward works on detached buffers, so it is not itself differentiable.
When autograd asks for a graph of the backward (`create_graph=True`), the Function instead recomputes
the layer-direction with the reference backend (plain differentiable ops) and differentiates that: exact,
to any order, and paid only by those who ask for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ...cells.config import LN_EPS
from ..contract import BatchLayout, RunOptions, StepMasks
from ..reference import run_reference
from . import compiled

__all__ = [
    "MASK_NAMES", "split_masks", "Spec", "alloc", "chunk_steps", "uses_gemm", "backward_through_time", "double_backward", "save", "saved", "final_rows", "inject_final", "input_backward",
    "input_forward", "ln_backward", "ln_stats", "recurrent_forward", "step_views",
]


@dataclass(frozen=True)
class Spec:
    """Non-tensor arguments of a fused Function.

    names   parameter roles, in the order the tensors follow x and the initial state
    bs      active rows per step (sorted batch) or None when every sequence spans all T steps
    last    (B,) index of each sequence's last step (sorted batch), or None
    record  return the gate activations and cell states (they are what backward saves anyway)
    """

    cfg: object
    names: tuple[str, ...]
    bs: tuple[int, ...] | None
    last: Tensor | None
    record: bool


MASK_NAMES = ("recurrent", "zone_c", "zone_h")  # StepMasks.tensors()' names, beside the parameter roles


def split_masks(p: dict[str, Tensor]) -> tuple[dict[str, Tensor], StepMasks | None]:
    """(the parameters, the loop's regularization masks or None) from a Function's named tensors."""
    if not any(k in p for k in MASK_NAMES):
        return p, None
    params = {k: v for k, v in p.items() if k not in MASK_NAMES}
    return params, StepMasks(p.get("recurrent"), p.get("zone_c"), p.get("zone_h"))


def mask_views(m: Tensor | None, bs, T: int) -> list:
    """Per-step views of a loop mask, rows active at each step: recurrent (B, n) the same every step,
    zoneout (T, B, n) its own each step, a 0-dim expectation as it is; [None] * T when absent."""
    if m is None:
        return [None] * T
    if m.dim() == 0:
        return [m] * T
    return step_views(m if m.dim() == 3 else m.expand(T, *m.shape), bs)


def save(ctx, spec: Spec, inputs: tuple, *buffers) -> None:
    """Keep what backward needs: the Function's tensor inputs (x, initial state, parameters), then its buffers."""
    ctx.spec = spec
    ctx.n_inputs = len(inputs)
    ctx.save_for_backward(*inputs, *buffers)


def saved(ctx) -> tuple[tuple, tuple, dict]:
    """(inputs, buffers, parameters by role) as `save` kept them."""
    t = ctx.saved_tensors
    inputs = t[: ctx.n_inputs]
    return inputs, t[ctx.n_inputs :], dict(zip(ctx.spec.names, inputs[-len(ctx.spec.names) :]))


def step_views(buf: Tensor, bs) -> list[Tensor]:
    """Per-step views of a time-major buffer, restricted to the rows active at each step."""
    if bs is None:
        return list(buf.unbind(0))
    return [buf[t, :n] for t, n in enumerate(bs)]


def alloc(bs, *shape, like: Tensor) -> Tensor:
    """A buffer: zeros when some rows sit out steps (bs; the sums over every row after the loop must read
    zeros there), else uninitialised (every element is written)."""
    if bs is None:
        return like.new_empty(shape)
    return like.new_zeros(shape)


def chunk_steps(T: int, B: int, width: int, itemsize: int, budget: int = 4 << 20, rows: int = 256) -> int:
    """Steps per chunk of an inference forward's input part (T, B, width): about `budget` bytes (a cache-sized
    buffer, reused from the allocator's free list, not fresh pages per call), but at least `rows` rows, where
    the input projection still runs on the loops' own product (_matmul), and at most T; the chunks evened out
    (T = 100 in chunks of 32 would leave a last one of 4 steps, whose product falls below `rows`)."""
    steps = max(1, min(T, max(-(-rows // B), budget // max(1, B * width * itemsize))))
    chunks = -(-T // steps)
    return -(-T // chunks)


def final_rows(buf: Tensor, spec: Spec) -> Tensor:
    """State after each sequence's last step from a (T+1, B, n) buffer whose row 0 is the initial state."""
    if spec.last is None:
        return buf[-1].clone()
    return buf[spec.last + 1, torch.arange(buf.shape[1], device=buf.device)]


def inject_final(grad_y: Tensor, grad_final: Tensor | None, spec: Spec) -> Tensor:
    """Total gradient w.r.t. every output step: dL/dy_t plus dL/dh_n at each sequence's last step."""
    dh = grad_y.clone()
    if grad_final is not None:
        if spec.last is None:
            dh[-1] += grad_final
        else:
            dh[spec.last, torch.arange(dh.shape[1], device=dh.device)] += grad_final
    return dh


def double_backward(ctx, saved_inputs, n_state: int, grads_out: tuple):
    """Gradients through the reference path, recorded so they can be differentiated again.

    saved_inputs: the Function's tensor inputs as saved (x, initial state tensors, parameters)."""
    spec: Spec = ctx.spec
    x, *rest = saved_inputs
    state, tensors = rest[:n_state], rest[n_state:]
    params, masks = split_masks(dict(zip(spec.names, tensors)))
    layout = BatchLayout.of(None if spec.last is None else spec.last + 1, x.shape[0])  # rows already sorted
    h0 = tuple(state) if n_state == 2 else state[0]
    y, h_n, _ = run_reference(x, params, h0, layout, RunOptions(spec.cfg, masks=masks))
    y = layout.zero_padding(y)  # as the Function's output reads
    outs = [y, *(h_n if n_state == 2 else (h_n,))]
    pairs = [(o, g) for o, g in zip(outs, grads_out) if g is not None]
    inputs = [x, *state, *tensors]
    wanted = [t for t, need in zip(inputs, ctx.needs_input_grad[1:]) if need]
    got = iter(torch.autograd.grad(
        [o for o, _ in pairs], wanted, [g for _, g in pairs], create_graph=True, allow_unused=True
    ))
    return (None, *[next(got) if need else None for need in ctx.needs_input_grad[1:]])


_ln_bwd = torch.ops.aten.native_layer_norm_backward


def ln_stats(v: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and 1/std over the last dimension, as layer norm computes them (recomputed in backward)."""
    var, mean = torch.var_mean(v, dim=-1, unbiased=False, keepdim=True)
    return mean, (var + LN_EPS).rsqrt()


def ln_backward(grad: Tensor, v: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor) -> Tensor:
    """d LN(v)*weight / dv applied to grad, over the last dimension."""
    return _ln_bwd(grad, v, (v.shape[-1],), mean, rstd, weight, None, [True, False, False])[0]


def recurrent_forward(a: Tensor, h: Tensor, W_hhT: Tensor, out: Tensor, r: Tensor | None = None,
                      ln_weight: Tensor | None = None, b_hh: Tensor | None = None, h_drop: Tensor | None = None) -> None:
    """out = a + h W_hh^T, one addmm (b_hh is already in a); with a recurrent layer norm (r given):
    r = h W_hh^T kept for backward, out = a + LN(r) ln_weight + b_hh. h_drop: recurrent dropout's mask on h."""
    if h_drop is not None:
        h = h * h_drop
    if r is None:
        torch.addmm(a, h, W_hhT, out=out)
    else:
        torch.mm(h, W_hhT, out=r)
        torch.add(a, F.layer_norm(r, (r.shape[-1],), ln_weight, b_hh, LN_EPS), out=out)


def backward_through_time(step, DH: Tensor, bs, W_hh: Tensor, dh0: Tensor | None, ln: tuple | None = None,
                          h_drop: Tensor | None = None) -> None:
    """The reverse loop of every fused Python path; the cell's own equations are `step`.

    For t = T-1 .. 0, with target = the active rows of DH[t-1] (dL/dh_{t-1}, output gradient so far), or
    dh0 at t = 0 (skipped when None):
        d = step(t, target)       the cell's backward of step t: dL/d(h_{t-1} W_hh^T) for the active rows
                                  (it may add its own direct share to target, as the GRU's z h_{t-1})
        d = LN backward of d      with a recurrent layer norm, ln = (Rr, its row mean, 1/std, gain, dR): d is
                                  what W_hh sees, kept in dR for its gradient
        target += d W_hh          one addmm (recurrent dropout, h_drop (B, R): target += h_drop * (d W_hh))
    """
    B = DH.shape[1]
    drop_ = mask_views(h_drop, bs, DH.shape[0])
    if ln is not None:
        Rr, mu, rs, gain, dR = ln
        r_, mu_, rs_, dr_ = (step_views(v, bs) for v in (Rr, mu, rs, dR))
    for t in range(DH.shape[0] - 1, -1, -1):
        target = DH[t - 1, : (B if bs is None else bs[t])] if t > 0 else dh0
        d = step(t, target)
        if ln is not None:
            d = ln_backward(d, r_[t], mu_[t], rs_[t], gain)
            dr_[t].copy_(d)
        if target is not None:
            if drop_[t] is None:
                target.addmm_(d, W_hh)
            else:
                target.addcmul_(d @ W_hh, drop_[t])


def input_forward(x: Tensor, p: dict[str, Tensor], cfg, fold_bias: Tensor | None = None,
                  keep: bool = True, packed: Tensor | None = None) -> tuple[Tensor, tuple]:
    """a = W_ih x + b_ih for all steps in one matmul (T, B, G*H); layer_norm: LN(W_ih x) * g + b_ih.

    Returns (a, ln): with layer norm ln = (W_ih x, its row mean, its row 1/std), what input_backward needs
    (kept rather than recomputed: one (T, B, G*H) buffer instead of a matmul and a pass), else three Nones;
    keep=False (no backward will run): three Nones, and W_ih x is freed at once. fold_bias (the recurrent bias) is added here when the cell lets it commute to the input side.
    packed: W_ih's panels (compiled.pack), where the product runs on the loops' kernel."""
    T, B, I = x.shape
    W_ih, b = p["weight_ih"], p.get("bias_ih")
    x2 = x.reshape(T * B, I)
    if cfg.layer_norm:
        xw = _matmul(x2, W_ih, True, packed=packed).view(T, B, -1)
        shape, w = [xw.shape[-1]], p["ln_weight_ih"]
        if not keep:  # normalised in place (row by row): a second buffer of this size, allocated and freed
            mean, rstd = xw.new_empty(T, B, 1), xw.new_empty(T, B, 1)  # every call, cost page faults
            torch.ops.aten.native_layer_norm.out(xw, shape, w, b, LN_EPS, out0=xw, out1=mean, out2=rstd)
            return xw, (None, None, None)
        a, mean, rstd = torch.native_layer_norm(xw, shape, w, b, LN_EPS)
        return a, (xw, mean, rstd)
    if fold_bias is not None and b is not None:
        b = b + fold_bias
    return _matmul(x2, W_ih, True, b, packed).view(T, B, -1), (None, None, None)


def input_backward(dA: Tensor, x: Tensor, p: dict[str, Tensor], cfg, need_x: bool,
                   ln: tuple = (None, None, None)) -> tuple[Tensor | None, dict]:
    """From dL/da (T, B, G*H): dx and the gradients of weight_ih, bias_ih, ln_weight_ih (large matmuls/sums).

    ln: what input_forward returned (recomputed when absent)."""
    T, B, I = x.shape
    W_ih = p["weight_ih"]
    grads = {}
    if "bias_ih" in p:
        grads["bias_ih"] = dA.sum((0, 1))
    if cfg.layer_norm:
        xw, mean, rstd = ln
        if xw is None:
            xw = _matmul(x.reshape(T * B, I), W_ih, True).view(T, B, -1)
            mean, rstd = ln_stats(xw)
        dA, grads["ln_weight_ih"], _ = _ln_bwd(dA, xw, (xw.shape[-1],), mean, rstd, p["ln_weight_ih"], None,
                                               [True, True, False])
    dA2 = dA.reshape(T * B, -1)
    grads["weight_ih"] = weight_grad(dA2, x.reshape(T * B, I))
    dx = _matmul(dA2, W_ih, False).view(T, B, I) if need_x else None
    return dx, grads


class _Linear(torch.autograd.Function):
    """y = x W^T (+ b) for 2-D x, forward and backward on the loops' kernels where they measured faster (_matmul,
    weight_grad). A backward that must itself be differentiable (create_graph) runs torch's ops."""

    @staticmethod
    def forward(ctx, x: Tensor, W: Tensor, b: Tensor | None):
        ctx.save_for_backward(x, W)
        ctx.has_bias = b is not None
        return _matmul(x, W, True, b)

    @staticmethod
    def backward(ctx, dy: Tensor):
        x, W = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad
        if torch.is_grad_enabled():
            dx, dW = (dy @ W if nx else None), (dy.t() @ x if nw else None)
        else:
            dy = dy.contiguous()
            dx, dW = (_matmul(dy, W, False) if nx else None), (weight_grad(dy, x) if nw else None)
        return dx, dW, (dy.sum(0) if ctx.has_bias and nb else None)


def linear(x: Tensor, W: Tensor, b: Tensor | None = None) -> Tensor:
    """F.linear(x, W, b) over the last dimension, with the products on the compiled loops' kernels (the scan
    backend's input projection: F.linear's own backward is MKL's sgemm, AVX2 code on this project's AMD machine).
    Inside torch.compile / torch.export, under torch.func or autocast, and without the compiled loops: F.linear."""
    if (torch.compiler.is_compiling() or type(x) is not Tensor or torch._C._are_functorch_transforms_active()
            or torch.is_autocast_enabled(x.device.type) or not compiled.available(x, None) or W.dtype != x.dtype):
        return F.linear(x, W, b)
    y = _Linear.apply(x.reshape(-1, x.shape[-1]), W, b)
    return y.view(*x.shape[:-1], W.shape[0])


def weight_grad(D: Tensor, X: Tensor) -> Tensor:
    """D^T X for 2-D D (rows, out) and X (rows, in): a weight's gradient summed over a layer's T*B rows. On the
    compiled loops' kernel (compiled.gemm_at) from a million multiply-adds up, where it measured faster than
    torch's call (MKL's sgemm, AVX2 code on this project's AMD machine) at every reference shape on the AVX-512
    and the AVX2 build (benchmarks/README.md, "gemm"); below, and without the compiled loops, torch's."""
    if (D.shape[0] * D.shape[1] * X.shape[1] >= 1 << 20 and compiled.available(D, None) and X.dtype == D.dtype
            and X.device == D.device):
        return compiled.gemm_at(D, X)
    return D.t() @ X


def uses_gemm(A: Tensor, W: Tensor, bias: Tensor | None = None) -> bool:
    """Whether _matmul runs A's product with W on the compiled loops' kernel: only where it measured at least
    15 % faster than torch's call (benchmarks/README.md, "gemm"): many rows (T*B >= 256; at S4's 50 it was 20 %
    slower)."""
    return (A.shape[0] >= 256 and compiled.available(A, None) and W.dtype == A.dtype
            and (bias is None or bias.dtype == A.dtype))


def _matmul(A: Tensor, W: Tensor, transposed: bool, bias: Tensor | None = None,
            packed: Tensor | None = None) -> Tensor:
    """A @ W.T (transposed: the input projection) or A @ W (dx), + bias, for 2-D A: on the compiled loops'
    kernel where uses_gemm (packed: W's panels for it, compiled.pack), elsewhere torch's."""
    if uses_gemm(A, W, bias):
        return compiled.gemm(A, W, transposed, bias, packed)
    Wm = W.t() if transposed else W
    return A @ Wm if bias is None else torch.addmm(bias, A, Wm)
