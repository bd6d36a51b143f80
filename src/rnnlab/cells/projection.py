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

import torch.nn.functional as F
from torch import Tensor

from .config import LN_EPS, CellConfig

__all__ = ["input_part", "recurrent_part"]


def input_part(x: Tensor, p: dict[str, Tensor], cfg: CellConfig) -> Tensor:
    """W_ih x (+ LN) + b_ih for x of shape (..., I); returns (..., G*H)."""
    if not cfg.layer_norm:
        return F.linear(x, p["weight_ih"], p.get("bias_ih"))
    a = F.linear(x, p["weight_ih"])
    return F.layer_norm(a, (a.shape[-1],), p["ln_weight_ih"], p.get("bias_ih"), LN_EPS)


def recurrent_part(h: Tensor, p: dict[str, Tensor], cfg: CellConfig) -> Tensor:
    """W_hh h (+ LN) + b_hh for h of shape (B, R); returns (B, G*H)."""
    if not cfg.layer_norm:
        return F.linear(h, p["weight_hh"], p.get("bias_hh"))
    b = F.linear(h, p["weight_hh"])
    return F.layer_norm(b, (b.shape[-1],), p["ln_weight_hh"], p.get("bias_hh"), LN_EPS)
