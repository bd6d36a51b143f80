"""Fused GRU layer-direction: forward loop into preallocated buffers, hand-derived backward through time.

Forward, per step t (a_t = W_ih x_t + b_ih precomputed for all t in one matmul):
    b   = h_{t-1} W_hh^T + b_hh                 one addmm       (layer_norm: LN(h W_hh^T) + b_hh)
    r, z = sigmoid(a_r + b_r, a_z + b_z)
    n   = tanh(a_n + r b_n)
    h_t = n + z (h_{t-1} - n)                   one lerp: (1 - z) n + z h_{t-1}

Backward, per step in reverse, with dh = dL/dh_t:
    da  = dh * [P_r, P_z, P_n]                  one broadcast multiply, factors precomputed:
          P_n = (1 - z)(1 - n^2),  P_r = P_n b_n r (1 - r),  P_z = (h_{t-1} - n) z (1 - z)
    db  = dh * [P_r, P_z, P_n r]                the recurrent part sees the reset after its matmul
    dh_{t-1} += dh z + db W_hh                  one addcmul, one addmm
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...cells.config import LN_EPS
from . import compiled
from .common import (
    Spec, alloc, mask_views, backward_through_time, double_backward, final_rows, inject_final, input_backward, input_forward,
    ln_stats, save, saved, step_views, weight_grad,
)

__all__ = ["GRUFunction"]


class GRUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: Spec, x: Tensor, h0: Tensor, *tensors: Tensor):
        cfg, bs = spec.cfg, spec.bs
        p = dict(zip(spec.names, tensors))
        T, B, _ = x.shape
        H, ln = cfg.hidden_size, cfg.layer_norm
        W_hhT, b_hh = p["weight_hh"].t(), p.get("bias_hh")
        mr, zh = p.get("recurrent"), p.get("zone_h")  # recurrent dropout, zoneout (or None)

        need = any(ctx.needs_input_grad)  # else inference: nothing is kept for a backward
        A, ln_in = input_forward(x, p, cfg, keep=need)  # (T, B, 3H): one matmul
        ctx.compiled = compiled.available(x, cfg)
        Tk = T if need or not ctx.compiled else 1  # compiled inference: Bh, Rr, ST one step's scratch
        Z = alloc(bs, T, B, 3 * H, like=x)  # r | z | n activations
        Bh = alloc(bs, Tk, B, 3 * H, like=x)  # recurrent part h_{t-1} W_hh^T + b_hh
        Hs = alloc(bs, T + 1, B, H, like=x)
        Hs[0] = h0
        Rr = alloc(bs, Tk, B, 3 * H, like=x) if ln else None  # h W_hh^T before its layer norm

        if ctx.compiled:  # the same loop in C (compiled.py): one gemm and one vectorised pass per step
            ST = alloc(bs, Tk, B, 2, like=x) if ln else None  # row mean and 1/std of Rr_t
            compiled.gru_forward(A.contiguous(), Z, Bh, Hs, Rr, ST, p, cfg, bs, need)
            return _finish(ctx, spec, (x, h0, *tensors), Z, Bh, Hs, Rr, ST, ln_in)

        a_, b_, h_, hn_ = (step_views(v, bs) for v in (A, Bh, Hs[:-1], Hs[1:]))
        arz_, brz_, zrz_ = (step_views(v[..., : 2 * H], bs) for v in (A, Bh, Z))
        an_, bn_, n_ = (step_views(v[..., 2 * H :], bs) for v in (A, Bh, Z))
        r_ = step_views(Z[..., :H], bs)
        z_ = step_views(Z[..., H : 2 * H], bs)
        rr_ = step_views(Rr, bs) if ln else None
        mr_, zh_ = mask_views(mr, bs, T), mask_views(zh, bs, T)
        for t in range(T):
            h_in = h_[t] if mr is None else h_[t] * mr_[t]  # recurrent dropout: where h enters W_hh
            if ln:
                torch.mm(h_in, W_hhT, out=rr_[t])
                b_[t].copy_(F.layer_norm(rr_[t], (3 * H,), p["ln_weight_hh"], b_hh, LN_EPS))
            elif b_hh is not None:
                torch.addmm(b_hh, h_in, W_hhT, out=b_[t])
            else:
                torch.mm(h_in, W_hhT, out=b_[t])
            torch.add(arz_[t], brz_[t], out=zrz_[t]).sigmoid_()  # r, z
            torch.addcmul(an_[t], r_[t], bn_[t], out=n_[t]).tanh_()  # n = tanh(a_n + r b_n)
            torch.lerp(n_[t], h_[t], z_[t], out=hn_[t])  # h_t = (1 - z) n + z h_{t-1}
            if zh is not None:  # zoneout: h_t = z' h_{t-1} + (1 - z') h~_t
                hn_[t].lerp_(h_[t], zh_[t])

        return _finish(ctx, spec, (x, h0, *tensors), Z, Bh, Hs, Rr, None, ln_in)

    @staticmethod
    def backward(ctx, dY: Tensor, dh_n: Tensor, *_recorded):
        inputs, buffers, p = saved(ctx)
        if torch.is_grad_enabled():  # create_graph=True: differentiate the reference path instead
            return double_backward(ctx, inputs, 1, (dY, dh_n))
        spec: Spec = ctx.spec
        cfg, bs = spec.cfg, spec.bs
        x, h0 = inputs[:2]
        Z, Bh, Hs, Rr, ST, *ln_in = buffers
        T, B, _ = x.shape
        H, ln = cfg.hidden_size, cfg.layer_norm
        h_prev = Hs[:-1]
        if ctx.compiled:  # the reverse loop in C (compiled.py)
            dA = alloc(bs, T, B, 3 * H, like=x)
            dBh = alloc(bs, T, B, 3 * H, like=x)
            dR = alloc(bs, T, B, 3 * H, like=x) if ln else None
            DH = inject_final(dY, dh_n, spec).contiguous()
            dh0 = h0.new_zeros(B, H) if ctx.needs_input_grad[2] else None
            GL = x.new_zeros(3 * H, dtype=torch.float64) if ln else None  # the gain's gradient, summed in C
            compiled.gru_backward(Z, Bh, Hs, Rr, ST, DH, dA, dBh, dR, dh0, GL, p, cfg, bs)
        else:
            dA, dBh, dR, dh0, mu, rs = _backward_loop(ctx, spec, x, h0, p, Z, Bh, Hs, Rr, dY, dh_n)

        dx, grads = input_backward(dA, x, p, cfg, ctx.needs_input_grad[1], tuple(ln_in))
        d_rec = (dR if ln else dBh).reshape(T * B, 3 * H)
        h_rec = h_prev if p.get("recurrent") is None else h_prev * p["recurrent"]  # what W_hh multiplied
        grads["weight_hh"] = weight_grad(d_rec, h_rec.reshape(T * B, H))
        if "bias_hh" in p:
            grads["bias_hh"] = dBh.sum((0, 1))
        if ln:
            grads["ln_weight_hh"] = GL.to(x.dtype) if ctx.compiled else (dBh * ((Rr - mu) * rs)).sum((0, 1))
        need = ctx.needs_input_grad[3:]
        return (None, dx, dh0, *[grads[k] if nd else None for k, nd in zip(spec.names, need)])


def _finish(ctx, spec: Spec, inputs: tuple, Z: Tensor, Bh: Tensor, Hs: Tensor, Rr, ST, ln_in: tuple):
    """Save what backward needs and return the outputs (and the recorded gates, when asked)."""
    save(ctx, spec, inputs, Z, Bh, Hs, Rr, ST, *ln_in)
    Y, h_n = Hs[1:], final_rows(Hs, spec)
    if not spec.record:
        return Y, h_n
    gates = Z.clone()
    ctx.mark_non_differentiable(gates)
    return Y, h_n, gates


def _backward_loop(ctx, spec: Spec, x: Tensor, h0: Tensor, p: dict, Z: Tensor, Bh: Tensor, Hs: Tensor, Rr,
                   dY: Tensor, dh_n: Tensor):
    """The reverse loop in torch ops: (dA, dBh, dR, dh0) and the layer-norm statistics the tail reuses."""
    cfg, bs = spec.cfg, spec.bs
    T, B, _ = x.shape
    H, ln = cfg.hidden_size, cfg.layer_norm
    W_hh = p["weight_hh"]
    mu = rs = None
    # ---- time-parallel factors ----
    r, z, n = Z[..., :H], Z[..., H : 2 * H], Z[..., 2 * H :]
    h_prev = Hs[:-1]
    P_n = (1 - z) * (1 - n * n)
    P_r = P_n * Bh[..., 2 * H :] * r * (1 - r)
    P_z = (h_prev - n) * z * (1 - z)
    P = torch.stack([P_r, P_z, P_n], dim=2)  # (T, B, 3, H): dh -> da
    Q = torch.stack([P_r, P_z, P_n * r], dim=2)  # dh -> db
    if ln:
        mu, rs = ln_stats(Rr)

    dA = alloc(bs, T, B, 3 * H, like=x)
    dBh = alloc(bs, T, B, 3 * H, like=x)
    dR = alloc(bs, T, B, 3 * H, like=x) if ln else None
    DH = inject_final(dY, dh_n, spec)
    dh_, P_, Q_, z_ = (step_views(v, bs) for v in (DH, P, Q, z))
    da_ = step_views(dA.unflatten(-1, (3, H)), bs)
    db3_ = step_views(dBh.unflatten(-1, (3, H)), bs)
    db_ = step_views(dBh, bs)
    dh0 = h0.new_zeros(B, H) if ctx.needs_input_grad[2] else None
    zh = p.get("zone_h")
    zh_ = mask_views(zh, bs, T)

    def step(t, target):
        dh = dh_[t]
        if zh is not None:  # h_t = z' h_{t-1} + (1 - z') h~_t: the direct path, then dh~
            if target is not None:
                target.addcmul_(dh, zh_[t])
            dh.mul_(1 - zh_[t])
        dh3 = dh.unsqueeze(1)
        torch.mul(P_[t], dh3, out=da_[t])
        torch.mul(Q_[t], dh3, out=db3_[t])
        if target is not None:
            target.addcmul_(dh, z_[t])  # h_t = n + z (h_{t-1} - n): the direct path
        return db_[t]

    backward_through_time(step, DH, bs, W_hh, dh0, (Rr, mu, rs, p["ln_weight_hh"], dR) if ln else None,
                          p.get("recurrent"))
    return dA, dBh, dR, dh0, mu, rs
