"""The two affine maps every cell family shares: the input part and the recurrent part of the gates.

    a_t = W_ih x_t + b_ih                       (layer_norm: a_t = LN(W_ih x_t) * ln_weight_ih + b_ih)
    b_t = W_hh h_{t-1} + b_hh                   (layer_norm: b_t = LN(W_hh h_{t-1}) * ln_weight_hh + b_hh)

Both are G*H wide (all gates of the step, packed). The input part does not depend on the state, so
layers compute it for all T steps in one matmul; the recurrent part is the one matmul inside the loop.
Layer normalisation (Ba, Kiros & Hinton 2016, "Layer Normalization", the LN-LSTM of section 6.2)
normalises each of the two over its G*H features, so the statistics of the input and of the recurrent
contributions are kept apart.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import LN_EPS, CellConfig

__all__ = ["input_part", "recurrent_part"]


def input_part(x: Tensor, p: dict[str, Tensor], cfg: CellConfig) -> Tensor:
    """W_ih x (+ LN) + b_ih for x of shape (..., I); returns (..., G*H)."""
    if not cfg.layer_norm:
        return F.linear(x, p["weight_ih"], p.get("bias_ih"))
    return _layer_norm(_linear_to_normalise(x, p["weight_ih"]), p["ln_weight_ih"], p.get("bias_ih"), cfg)


def recurrent_part(h: Tensor, p: dict[str, Tensor], cfg: CellConfig) -> Tensor:
    """W_hh h (+ LN) + b_hh for h of shape (B, R); returns (B, G*H)."""
    if not cfg.layer_norm:
        return F.linear(h, p["weight_hh"], p.get("bias_hh"))
    return _layer_norm(_linear_to_normalise(h, p["weight_hh"]), p["ln_weight_hh"], p.get("bias_hh"), cfg)


def _linear_to_normalise(v: Tensor, weight: Tensor) -> Tensor:
    """v W^T for a layer norm to normalise. Under autocast this product stays in the weights' precision: layer
    norm divides by the spread of its G*H values, so a half-precision product's rounding (relative to the
    terms' sizes, not to the spread) came out magnified, 0.01-0.27 off the float32 answer where the plain
    cells stay within 0.005 (issue 13). The cost: this one matmul per step is not lowered."""
    if not torch.is_autocast_enabled(v.device.type):
        return F.linear(v, weight)
    with torch.autocast(v.device.type, enabled=False):
        return F.linear(v.to(weight.dtype), weight)


def _layer_norm(v: Tensor, weight: Tensor, bias: Tensor | None, cfg: CellConfig) -> Tensor:
    """LN(v) * weight + bias over the G*H gate features. The width comes from the config, not from v.shape:
    a size read off a tensor is what tracing exporters (torch.jit.trace, the legacy ONNX exporter) cannot follow."""
    return F.layer_norm(v, (cfg.num_blocks * cfg.hidden_size,), weight, bias, LN_EPS)
