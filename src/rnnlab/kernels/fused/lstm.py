"""Fused LSTM layer-direction: forward loop into preallocated buffers, hand-derived backward through time.

Forward, per step t (rows active at t; `a_t` = W_ih x_t + b_ih + b_hh precomputed for all t at once):
    z   = a_t + h_{t-1} W_hh^T                  one addmm into the gate buffer   (layer_norm: a_t + LN(h W_hh^T))
    z_i += w_ci c_{t-1};  z_f += w_cf c_{t-1}   (peephole)
    i, f = sigmoid(z_i, z_f)  in place;  g = tanh(z_g) in place          (coupled: f = 1 - i)
    c_t = f c_{t-1} + i g
    z_o += w_co c_t (peephole);  o = sigmoid(z_o) in place
    h_t = o tanh(c_t)                           (layer_norm: o tanh(LN(c_t)));  h_t = W_hr h_t (projection)

Saved for backward: the gate activations, the cell states and h (the output itself), nothing else.
Backward, per step in reverse, with dh = dL/dh_t (output gradient + recurrent contribution) and dc carried:
    dm   = dh (projection: dh W_hr)
    dc  += dm o (1 - tanh^2(c_t))               (layer_norm: through LN's backward)
    dz_o = dm tanh(c_t) o (1 - o);   dc += dz_o w_co (peephole)
    dz_i, dz_f, dz_g = dc * [g i(1-i), c_{t-1} f(1-f), i (1-g^2)]   one broadcast multiply (precomputed factors)
    dc   = dc f (+ dz_i w_ci + dz_f w_cf)       (coupled: dz_i = dc (g - c_{t-1}) i(1-i))
    dh_{t-1} += dz W_hh                         one addmm
Everything that does not depend on the carried gradients (the factors above) is computed before the loop
as time-parallel ops; dx, dW_ih, dW_hh, dW_hr and the biases are single large matmuls/sums after it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...cells.config import LN_EPS
from . import compiled
from .common import (
    MASK_NAMES, Spec, alloc, chunk_steps, uses_gemm, mask_views, backward_through_time, double_backward, final_rows, inject_final, input_backward, input_forward,
    ln_backward, ln_stats, recurrent_forward, save, saved, step_views, weight_grad,
)

__all__ = ["LSTMFunction"]


class LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: Spec, x: Tensor, h0: Tensor, c0: Tensor, *tensors: Tensor):
        cfg, bs = spec.cfg, spec.bs
        p = dict(zip(spec.names, tensors))
        T, B, I = x.shape
        H, R, G = cfg.hidden_size, cfg.state_size, cfg.num_blocks
        GH, ln, peep, coupled, proj = G * H, cfg.layer_norm, cfg.peephole, cfg.coupled, cfg.proj_size > 0
        W_hhT = p["weight_hh"].t()
        mr, zc, zh = (p.get(k) for k in MASK_NAMES)  # recurrent dropout, zoneout of c and h (or None)

        b_hh = p.get("bias_hh")
        keep = any(ctx.needs_input_grad)  # else inference: nothing is kept for a backward
        ctx.compiled = compiled.available(x, cfg)
        if ctx.compiled and not keep and not spec.record and bs is None:
            return _inference(ctx, spec, (x, h0, c0, *tensors), p, b_hh)
        A, ln_in = input_forward(x, p, cfg, None if ln else b_hh, keep)  # (T, B, GH), all steps in one matmul

        if ctx.compiled:  # the same loop in C (compiled.py): one gemm and one vectorised pass per step
            Z = A.contiguous()  # the input part at padded steps stays (the layer zeroes the recording there)
            Hs = alloc(bs, T + 1, B, R, like=x)
            Cs = alloc(bs, T + 1, B, H, like=x)
            Hs[0] = h0
            Cs[0] = c0
            Tk = T if keep else 1  # inference: one step's scratch serves for Rr, ST, M
            M = alloc(bs, Tk, B, H, like=x) if proj else None
            Rr = alloc(bs, Tk, B, GH, like=x) if ln else None
            ST = alloc(bs, Tk, B, 4, like=x) if ln else None  # row mean and 1/std of Rr_t and c_t
            CT = alloc(bs, T, B, H, like=x) if zc is not None and keep else None  # c~_t before zoneout
            compiled.lstm_forward(Z, Rr, Hs, Cs, M, ST, p, cfg, bs, keep, CT)
            return _finish(ctx, spec, (x, h0, c0, *tensors), Z, Hs, Cs, M, Rr, ST, CT, ln_in)

        Z = alloc(bs, T, B, GH, like=x)  # gate pre-activations, turned into activations in place
        Hs = alloc(bs, T + 1, B, R, like=x)  # Hs[0] = h0, Hs[1:] = the output
        Cs = alloc(bs, T + 1, B, H, like=x)
        Hs[0] = h0
        Cs[0] = c0
        scratch = x.new_empty(B, H)  # tanh(c_t) of the current step
        M = alloc(bs, T, B, H, like=x) if proj else None  # o tanh(c_t) before the projection
        Rr = alloc(bs, T, B, GH, like=x) if ln else None  # h_{t-1} W_hh^T before its layer norm
        CT = alloc(bs, T, B, H, like=x) if zc is not None else None  # c~_t before zoneout mixes in c_{t-1}
        mr_, zc_, zh_ = (mask_views(m, bs, T) for m in (mr, zc, zh))

        a_, z_, h_, hn_, c_, cn_ = (step_views(b, bs) for b in (A, Z, Hs[:-1], Hs[1:], Cs[:-1], Cs[1:]))
        nb = 1 if coupled else 2  # sigmoid block before the cell update: i (coupled) or i|f
        sig_ = step_views(Z[..., : nb * H], bs)
        i_ = step_views(Z[..., :H], bs)
        g_ = step_views(Z[..., nb * H : (nb + 1) * H], bs)
        o_ = step_views(Z[..., (nb + 1) * H :], bs)
        f_ = None if coupled else step_views(Z[..., H : 2 * H], bs)
        # tanh(c_t) of each step in one (B, H) scratch: row slices of it, not views of an expanded (T, B, H)
        # (writing through overlapping views with out= is undefined under torch.compile: it returned NaN)
        tc_ = [scratch if bs is None else scratch[:n] for n in (bs or [B] * T)]
        m_ = step_views(M, bs) if proj else None
        r_ = step_views(Rr, bs) if ln else [None] * T
        if peep:
            w_ci, w_co = p["weight_ci"], p["weight_co"]
            w_cif = None if coupled else torch.stack([w_ci, p["weight_cf"]])  # (2, H) against z_i|z_f
            pre_ = step_views(Z[..., : 2 * H].unflatten(-1, (2, H)), bs) if not coupled else None
        W_hrT = p["weight_hr"].t() if proj else None

        for t in range(T):
            z, h, c, cn = z_[t], h_[t], c_[t], cn_[t]
            recurrent_forward(a_[t], h, W_hhT, z, r_[t], p.get("ln_weight_hh"), b_hh, mr_[t])
            if peep:
                if coupled:
                    i_[t].addcmul_(c, w_ci)
                else:
                    pre_[t].addcmul_(c.unsqueeze(1), w_cif)
            sig_[t].sigmoid_()
            g_[t].tanh_()
            if coupled:  # f = 1 - i: c_t = c_{t-1} + i (g - c_{t-1})
                torch.lerp(c, g_[t], i_[t], out=cn)
            else:
                torch.mul(f_[t], c, out=cn)
                cn.addcmul_(i_[t], g_[t])  # c_t = f c_{t-1} + i g
            if peep:
                o_[t].addcmul_(cn, w_co)
            o_[t].sigmoid_()
            if ln:
                torch.tanh(F.layer_norm(cn, (H,), p["ln_weight_c"], p.get("ln_bias_c"), LN_EPS), out=tc_[t])
            else:
                torch.tanh(cn, out=tc_[t])
            if proj:
                torch.mul(o_[t], tc_[t], out=m_[t])
                torch.mm(m_[t], W_hrT, out=hn_[t])
            else:
                torch.mul(o_[t], tc_[t], out=hn_[t])
            if zc is not None:  # zoneout: c_t = z c_{t-1} + (1 - z) c~_t (c~_t kept for backward)
                CT[t, : cn.shape[0]].copy_(cn)
                cn.lerp_(c, zc_[t])
            if zh is not None:
                hn_[t].lerp_(h, zh_[t])

        return _finish(ctx, spec, (x, h0, c0, *tensors), Z, Hs, Cs, M, Rr, None, CT, ln_in)

    @staticmethod
    def backward(ctx, dY: Tensor, dh_n: Tensor, dc_n: Tensor, *_recorded):
        inputs, buffers, p = saved(ctx)
        if torch.is_grad_enabled():  # create_graph=True: differentiate the reference path instead
            return double_backward(ctx, inputs, 2, (dY, dh_n, dc_n))
        spec: Spec = ctx.spec
        cfg, bs = spec.cfg, spec.bs
        x = inputs[0]
        Z, Hs, Cs, M, Rr, ST, CT, *ln_in = buffers
        T, B, I = x.shape
        H, R, G = cfg.hidden_size, cfg.state_size, cfg.num_blocks
        GH, ln, peep, coupled, proj = G * H, cfg.layer_norm, cfg.peephole, cfg.coupled, cfg.proj_size > 0
        nb = 1 if coupled else 2

        mr = p.get("recurrent")
        c_prev, c_new = Cs[:-1], Cs[1:] if CT is None else CT  # c~_t: what o and tanh saw
        grads: dict[str, Tensor | None] = {}
        if ctx.compiled:  # the reverse loop in C (compiled.py); it also sums the peephole and gain gradients
            dZ = alloc(bs, T, B, GH, like=x)
            DH = inject_final(dY, dh_n, spec).contiguous()
            DC = dc_n.contiguous().clone()
            DM = alloc(bs, T, B, H, like=x) if proj else None
            dR = alloc(bs, T, B, GH, like=x) if ln else None
            dh0 = x.new_zeros(B, R) if ctx.needs_input_grad[2] else None
            GP = x.new_zeros(3, H, dtype=torch.float64) if peep else None
            GL = x.new_zeros(GH + 2 * H, dtype=torch.float64) if ln else None
            compiled.lstm_backward(Z, Rr, Cs, ST, DH, DM, dZ, dR, DC, dh0, GP, GL, p, cfg, bs, CT)
            if peep:
                grads.update(weight_ci=GP[0], weight_cf=GP[1], weight_co=GP[2])
            if ln:
                grads.update(ln_weight_hh=GL[:GH], ln_weight_c=GL[GH : GH + H], ln_bias_c=GL[GH + H :])
            grads = {k: v.to(x.dtype) for k, v in grads.items()}
        else:
            dZ, DH, DC, DM, dR, dh0, K, c_hat, mu_h, rs_h = _backward_loop(ctx, spec, x, p, Z, Cs, CT, Rr, dY, dh_n,
                                                                           dc_n)

        # ---- time-parallel: parameter and input gradients as single large matmuls ----
        need = dict(zip(spec.names, ctx.needs_input_grad[4:]))
        d_rec = (dR if ln else dZ).reshape(T * B, GH)
        h_rec = Hs[:-1] if mr is None else Hs[:-1] * mr  # what W_hh multiplied
        grads["weight_hh"] = weight_grad(d_rec, h_rec.reshape(T * B, R))
        dx, grads_in = input_backward(dZ, x, p, cfg, ctx.needs_input_grad[1], tuple(ln_in))
        grads.update(grads_in)
        if "bias_hh" in p:
            grads["bias_hh"] = grads["bias_ih"]  # z = a + b: both biases see dz
        if ln and not ctx.compiled:
            grads["ln_weight_hh"] = (dZ * ((Rr - mu_h) * rs_h)).sum((0, 1))
            gcn = (DM if proj else DH) * K
            grads["ln_weight_c"] = (gcn * c_hat).sum((0, 1))
            if "ln_bias_c" in p:
                grads["ln_bias_c"] = gcn.sum((0, 1))
        if peep and not ctx.compiled:
            grads["weight_ci"] = (dZ[..., :H] * c_prev).sum((0, 1))
            if not coupled:
                grads["weight_cf"] = (dZ[..., H : 2 * H] * c_prev).sum((0, 1))
            grads["weight_co"] = (dZ[..., (nb + 1) * H :] * c_new).sum((0, 1))
        if proj:
            grads["weight_hr"] = weight_grad(DH.reshape(T * B, R), M.reshape(T * B, H))
        dc0 = DC if ctx.needs_input_grad[3] else None
        return (None, dx, dh0, dc0, *[grads[n] if need[n] else None for n in spec.names])


def _inference(ctx, spec: Spec, inputs: tuple, p: dict, b_hh: Tensor | None):
    """The compiled forward when nothing is kept (no backward, no recording, every sequence of full length):
    the input part a_t is computed for a chunk of steps at a time (chunk_steps) and consumed by the loop before
    the next chunk's, so that the (T, B, G*H) buffer of the whole sequence is never allocated (a fresh one per
    call cost page faults: 16 % of S2's inference time on one thread) and the chunk is still in cache when the
    loop reads it. Same numbers as the whole-sequence call: the loop carries its state through Hs and Cs."""
    cfg, (x, h0, c0) = spec.cfg, inputs[:3]
    T, B, _ = x.shape
    H, R, GH, ln = cfg.hidden_size, cfg.state_size, cfg.num_blocks * cfg.hidden_size, cfg.layer_norm
    Hs, Cs = x.new_empty(T + 1, B, R), x.new_empty(T + 1, B, H)
    Hs[0] = h0
    Cs[0] = c0
    M = x.new_empty(1, B, H) if cfg.proj_size > 0 else None  # one step's scratch (keep = False)
    Rr = x.new_empty(1, B, GH) if ln else None
    ST = x.new_empty(1, B, 4) if ln else None
    steps = chunk_steps(T, B, GH, x.element_size())
    if steps == T:  # one chunk (short sequences, a single row): one call, the weights packed inside it
        Z, _ = input_forward(x, p, cfg, None if ln else b_hh, False)
        compiled.lstm_forward(Z.contiguous(), Rr, Hs, Cs, M, ST, p, cfg, None, False)
    else:  # several: the weights' panels packed once here, not once per chunk in each call
        rec = compiled.pack_recurrent(p, cfg)
        x0 = x[:steps].reshape(steps * B, -1)
        P_ih = compiled.pack(p["weight_ih"], True) if uses_gemm(x0, p["weight_ih"]) else None
        per_step = [k for k in MASK_NAMES if p.get(k) is not None and p[k].dim() == 3]  # (T, B, n) masks
        for t0 in range(0, T, steps):
            t1 = min(T, t0 + steps)
            Z, _ = input_forward(x[t0:t1], p, cfg, None if ln else b_hh, False, P_ih)
            pc = {**p, **{k: p[k][t0:t1] for k in per_step}} if per_step else p
            compiled.lstm_forward(Z.contiguous(), Rr, Hs[t0 : t1 + 1], Cs[t0 : t1 + 1], M, ST, pc, cfg, None, False,
                                  packed=rec)
    save(ctx, spec, inputs, None, Hs, *[None] * 8)  # Hs alone: what the operator returns without a backward
    return Hs[1:], Hs[-1].clone(), Cs[-1].clone()


def _finish(ctx, spec: Spec, inputs: tuple, Z: Tensor, Hs: Tensor, Cs: Tensor, M, Rr, ST, CT, ln_in: tuple):
    """Save what backward needs and return the outputs (and the recording, when asked)."""
    save(ctx, spec, inputs, Z, Hs, Cs, M, Rr, ST, CT, *ln_in)
    Y = Hs[1:]
    h_n, c_n = final_rows(Hs, spec), final_rows(Cs, spec)
    if not spec.record:
        return Y, h_n, c_n
    gates, cells = Z.clone(), Cs[1:].clone()  # the recording: copies, so later in-place use cannot touch them
    ctx.mark_non_differentiable(gates, cells)
    return Y, h_n, c_n, gates, cells


def _backward_loop(ctx, spec: Spec, x: Tensor, p: dict, Z: Tensor, Cs: Tensor, CT, Rr, dY: Tensor, dh_n: Tensor,
                   dc_n: Tensor):
    """The reverse loop in torch ops: (dZ, DH, DC, DM, dR, dh0) and the layer-norm values the tail reuses."""
    cfg, bs = spec.cfg, spec.bs
    T, B, I = x.shape
    H, G = cfg.hidden_size, cfg.num_blocks
    GH, ln, peep, coupled, proj = G * H, cfg.layer_norm, cfg.peephole, cfg.coupled, cfg.proj_size > 0
    nb = 1 if coupled else 2
    W_hh = p["weight_hh"]
    mu_h = rs_h = c_hat = None
    # ---- time-parallel: everything that does not depend on the carried gradients ----
    i, g, o = Z[..., :H], Z[..., nb * H : (nb + 1) * H], Z[..., (nb + 1) * H :]
    f = 1 - i if coupled else Z[..., H : 2 * H]
    c_prev, c_new = Cs[:-1], Cs[1:] if CT is None else CT
    mr, zc, zh = (p.get(k) for k in MASK_NAMES)
    zc_, zh_ = mask_views(zc, bs, T), mask_views(zh, bs, T)
    if ln:
        mu_c, rs_c = ln_stats(c_new)
        c_hat = (c_new - mu_c) * rs_c
        tc = torch.tanh(c_hat * p["ln_weight_c"] + p.get("ln_bias_c", 0.0))
        mu_h, rs_h = ln_stats(Rr)
    else:
        tc = torch.tanh(c_new)
    K = o * (1 - tc * tc)  # dh -> d(tanh argument)
    Po = tc * o * (1 - o)  # dh -> dz_o
    di = i * (1 - i)
    if coupled:  # c_t = c_{t-1} + i (g - c_{t-1})
        P = torch.stack([(g - c_prev) * di, i * (1 - g * g)], dim=2)  # (T, B, 2, H) for z_i | z_g
    else:
        P = torch.stack([g * di, c_prev * f * (1 - f), i * (1 - g * g)], dim=2)  # z_i | z_f | z_g

    dZ = alloc(bs, T, B, GH, like=x)
    DH = inject_final(dY, dh_n, spec)  # dL/dh_t, recurrent contributions added in the loop
    DC = dc_n.clone()
    DM = alloc(bs, T, B, H, like=x) if proj else None
    dR = alloc(bs, T, B, GH, like=x) if ln else None

    dz_, dh_, K_, Po_, P_, f_ = (step_views(b, bs) for b in (dZ, DH, K, Po, P, f))
    dzP_ = step_views(dZ[..., : (nb + 1) * H].unflatten(-1, (nb + 1, H)), bs)
    dzo_ = step_views(dZ[..., (nb + 1) * H :], bs)
    dzi_ = step_views(dZ[..., :H], bs)
    dzf_ = step_views(dZ[..., H : 2 * H], bs)
    dc_ = [DC if bs is None else DC[:n] for n in (bs or [B] * T)]  # the carried dL/dc_t: row slices, not expand
    dm_ = step_views(DM, bs) if proj else dh_
    if ln:
        cn_, muc_, rsc_ = (step_views(b, bs) for b in (c_new, mu_c, rs_c))
    W_hr = p.get("weight_hr")
    dh0 = x.new_zeros(B, cfg.state_size) if ctx.needs_input_grad[2] else None

    def step(t, target):
        dc = dc_[t]
        if zh is not None:  # h_t = z h_{t-1} + (1 - z) h~_t: the direct path, then dh~
            if target is not None:
                target.addcmul_(dh_[t], zh_[t])
            dh_[t].mul_(1 - zh_[t])
        if zc is not None:
            kept = dc * zc_[t]  # dL/dc_t's share that reaches c_{t-1} directly
            dc.mul_(1 - zc_[t])
        if proj:
            torch.mm(dh_[t], W_hr, out=dm_[t])
        dm = dm_[t]
        if ln:  # h = o tanh(LN(c)): through the layer norm of c
            dc.add_(ln_backward(dm * K_[t], cn_[t], muc_[t], rsc_[t], p["ln_weight_c"]))
        else:
            dc.addcmul_(dm, K_[t])
        torch.mul(Po_[t], dm, out=dzo_[t])
        if peep:
            dc.addcmul_(dzo_[t], p["weight_co"])
        torch.mul(P_[t], dc.unsqueeze(1), out=dzP_[t])
        dc.mul_(f_[t])
        if peep:
            dc.addcmul_(dzi_[t], p["weight_ci"])
            if not coupled:
                dc.addcmul_(dzf_[t], p["weight_cf"])
        if zc is not None:
            dc.add_(kept)
        return dz_[t]

    backward_through_time(step, DH, bs, W_hh, dh0, (Rr, mu_h, rs_h, p["ln_weight_hh"], dR) if ln else None, mr)
    return dZ, DH, DC, DM, dR, dh0, K, c_hat, mu_h, rs_h
