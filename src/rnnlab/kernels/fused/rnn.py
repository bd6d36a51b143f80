"""Fused Elman RNN layer-direction: forward loop into preallocated buffers, hand-derived backward.

Forward, per step: h_t = tanh(a_t + h_{t-1} W_hh^T)   one addmm + one in-place tanh (relu)
    with a_t = W_ih x_t + b_ih + b_hh for all t in one matmul   (layer_norm: LN(W_ih x) + b_ih + LN(h W_hh^T) + b_hh)
Backward, per step in reverse: dz = dh * (1 - h_t^2) (relu: dh * [h_t > 0]);  dh_{t-1} += dz W_hh
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import compiled
from .common import (
    Spec, alloc, mask_views, backward_through_time, double_backward, final_rows, inject_final, input_backward, input_forward,
    ln_stats, recurrent_forward, save, saved, step_views, weight_grad,
)

__all__ = ["RNNFunction"]


class RNNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: Spec, x: Tensor, h0: Tensor, *tensors: Tensor):
        cfg, bs = spec.cfg, spec.bs
        p = dict(zip(spec.names, tensors))
        T, B, _ = x.shape
        H, ln, relu = cfg.hidden_size, cfg.layer_norm, cfg.family == "rnn_relu"
        W_hhT, b_hh = p["weight_hh"].t(), p.get("bias_hh")
        mr, zh = p.get("recurrent"), p.get("zone_h")  # recurrent dropout, zoneout (or None)
        keep = any(ctx.needs_input_grad)
        A, ln_in = input_forward(x, p, cfg, None if ln else b_hh, keep)
        Hs = alloc(bs, T + 1, B, H, like=x)
        Hs[0] = h0
        ctx.compiled = compiled.available(x, cfg)
        if ctx.compiled:  # the same loop in C (loop_rnn_body.c): one product and one pass per step
            HT = alloc(bs, T, B, H, like=x) if zh is not None else None
            Rr = alloc(bs, T if keep else 1, B, H, like=x) if ln else None  # inference: one step's scratch
            ST = x.new_empty(B, 2) if ln else None
            compiled.rnn_forward(A.contiguous(), Hs, HT, Rr, ST, p, cfg, bs, keep)
            save(ctx, spec, (x, h0, *tensors), Hs, Rr if keep else None, HT, *ln_in)
            return Hs[1:], final_rows(Hs, spec)
        Rr = alloc(bs, T, B, H, like=x) if ln else None
        a_, h_, hn_ = (step_views(v, bs) for v in (A, Hs[:-1], Hs[1:]))
        rr_ = step_views(Rr, bs) if ln else [None] * T
        HT = alloc(bs, T, B, H, like=x) if zh is not None else None  # h~_t before zoneout, for backward
        mr_, zh_ = mask_views(mr, bs, T), mask_views(zh, bs, T)
        for t in range(T):
            recurrent_forward(a_[t], h_[t], W_hhT, hn_[t], rr_[t], p.get("ln_weight_hh"), b_hh, mr_[t])
            hn_[t].relu_() if relu else hn_[t].tanh_()
            if zh is not None:  # zoneout: h_t = z h_{t-1} + (1 - z) h~_t
                HT[t, : hn_[t].shape[0]].copy_(hn_[t])
                hn_[t].lerp_(h_[t], zh_[t])
        save(ctx, spec, (x, h0, *tensors), Hs, Rr, HT, *ln_in)
        return Hs[1:], final_rows(Hs, spec)

    @staticmethod
    def backward(ctx, dY: Tensor, dh_n: Tensor):
        inputs, buffers, p = saved(ctx)
        if torch.is_grad_enabled():  # create_graph=True: differentiate the reference path instead
            return double_backward(ctx, inputs, 1, (dY, dh_n))
        spec: Spec = ctx.spec
        cfg, bs = spec.cfg, spec.bs
        x = inputs[0]
        Hs, Rr, HT, *ln_in = buffers
        T, B, _ = x.shape
        H, ln = cfg.hidden_size, cfg.layer_norm
        W_hh = p["weight_hh"]
        mr, zh = p.get("recurrent"), p.get("zone_h")
        dZ = alloc(bs, T, B, H, like=x)
        DH = inject_final(dY, dh_n, spec)
        dh0 = x.new_zeros(B, H) if ctx.needs_input_grad[2] else None
        if getattr(ctx, "compiled", False):
            ST = torch.cat(ln_stats(Rr), dim=-1) if ln else None  # (T, B, 2): mean and 1/std, as torch's loop
            dR = alloc(bs, T, B, H, like=x) if ln else None
            GL = x.new_zeros(H, dtype=torch.float64) if ln else None
            compiled.rnn_backward(Hs, HT, Rr, ST, DH, dZ, dR, dh0, GL, p, cfg, bs)
            return _grads(ctx, spec, x, p, Hs, dZ, dh0, ln_in, (dR, GL.to(x.dtype)) if ln else None)

        Y = Hs[1:] if HT is None else HT  # h~_t: what the nonlinearity gave
        P = (Y > 0).to(Y.dtype) if cfg.family == "rnn_relu" else 1 - Y * Y  # dh -> dz, time-parallel
        mu, rs = ln_stats(Rr) if ln else (None, None)
        dR = alloc(bs, T, B, H, like=x) if ln else None
        dh_, P_, dz_ = (step_views(v, bs) for v in (DH, P, dZ))

        zh_ = mask_views(zh, bs, T)

        def step(t, target):  # dz = dh * (1 - h_t^2)  (relu: dh * [h_t > 0])
            if zh is not None:  # h_t = z h_{t-1} + (1 - z) h~_t: the direct path, then dh~
                if target is not None:
                    target.addcmul_(dh_[t], zh_[t])
                dh_[t].mul_(1 - zh_[t])
            return torch.mul(dh_[t], P_[t], out=dz_[t])

        backward_through_time(step, DH, bs, W_hh, dh0, (Rr, mu, rs, p["ln_weight_hh"], dR) if ln else None, mr)
        return _grads(ctx, spec, x, p, Hs, dZ, dh0, ln_in, (dR, (dZ * ((Rr - mu) * rs)).sum((0, 1))) if ln else None)


def _grads(ctx, spec: Spec, x: Tensor, p: dict, Hs: Tensor, dZ: Tensor, dh0, ln_in, ln=None) -> tuple:
    """From dL/dz of every step: dx and the parameters' gradients (time-parallel matmuls and sums); ln: the
    recurrent layer norm's (dR: what W_hh saw, the gain's gradient) when the cell has one."""
    T, B, H = dZ.shape
    mr = p.get("recurrent")
    dx, grads = input_backward(dZ, x, p, spec.cfg, ctx.needs_input_grad[1], tuple(ln_in))
    h_rec = Hs[:-1] if mr is None else Hs[:-1] * mr  # what W_hh multiplied
    grads["weight_hh"] = weight_grad((ln[0] if ln else dZ).reshape(T * B, H), h_rec.reshape(T * B, H))
    if "bias_hh" in p:
        grads["bias_hh"] = grads["bias_ih"]
    if ln:
        grads["ln_weight_hh"] = ln[1]
    need = ctx.needs_input_grad[3:]
    return (None, dx, dh0, *[grads[k] if nd else None for k, nd in zip(spec.names, need)])
