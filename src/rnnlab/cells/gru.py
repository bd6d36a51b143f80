"""The GRU cell (Cho et al. 2014), one time step, in torch.nn.GRU's form.

    r_t = sigmoid(a_r + b_r)                  reset gate
    z_t = sigmoid(a_z + b_z)                  update gate
    n_t = tanh(a_n + r_t * b_n)               candidate (the reset applies after the recurrent matmul)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

where a = W_ih x_t + b_ih and b = W_hh h_{t-1} + b_hh are the packed pre-activations (`projection.py`),
split in torch's order r|z|n.

Variant: layer_norm (Ba, Kiros & Hinton 2016, "Layer Normalization"): LN of W_ih x_t and of W_hh h_{t-1}
over the 3H pre-activations, before the biases are added.

Example:
    >>> cell = GRUCell(10, 20, layer_norm=True)
    >>> h = cell(torch.randn(3, 10))             # (B=3, H=20)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import CellBase
from .config import CellConfig
from .projection import recurrent_part

__all__ = ["GRUCell", "gru_step"]


def gru_step(
    a: Tensor, h: Tensor, p: dict[str, Tensor], cfg: CellConfig, h_drop: Tensor | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """One GRU step from the input part `a` (B, 3H) and h_{t-1} (B, H). Returns (h_t, (r_t, z_t, n_t)).
    h_drop: recurrent dropout's mask (B, H) on h_{t-1} where it enters W_hh (z h_{t-1} sees it unmasked)."""
    a_r, a_z, a_n = a.chunk(3, dim=1)
    b_r, b_z, b_n = recurrent_part(h if h_drop is None else h * h_drop, p, cfg).chunk(3, dim=1)
    r = torch.sigmoid(a_r + b_r)
    z = torch.sigmoid(a_z + b_z)
    n = torch.tanh(a_n + r * b_n)
    h = (1.0 - z) * n + z * h
    return h, (r, z, n)


class GRUCell(CellBase):
    """A GRU cell, drop-in for `torch.nn.GRUCell`, with layer normalisation as an option.

    Args: input_size, hidden_size, bias, device, dtype as torch.nn.GRUCell; keyword-only layer_norm,
    init ("torch" | "orthogonal").

    forward(input (B, I) or (I,), hx (B, H) or None) -> h_1;
    with record_gates=True -> (h_1, {"r", "z", "n": (B, H)}).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        layer_norm: bool = False,
        init: str = "torch",
        **unknown,
    ) -> None:
        cfg = CellConfig("gru", input_size, hidden_size, bias, layer_norm=layer_norm)
        super().__init__(cfg, init, device, dtype, unknown)

    step = staticmethod(gru_step)
