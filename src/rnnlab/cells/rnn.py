"""The Elman RNN cell (Elman 1990), one time step, in torch.nn.RNN's form.

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)        (nonlinearity="relu": relu instead of tanh)

and the output of a many-to-many network is y_t = W_hy h_t, a linear layer on top (models own it).

Variant: layer_norm (Ba, Kiros & Hinton 2016): LN of W_ih x_t and of W_hh h_{t-1} before the biases.

Example:
    >>> cell = RNNCell(10, 20)
    >>> h = cell(torch.randn(3, 10))             # (B=3, H=20)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import CellBase
from .config import CellConfig
from .projection import recurrent_part

__all__ = ["RNNCell", "rnn_step"]


def rnn_step(a: Tensor, h: Tensor, p: dict[str, Tensor], cfg: CellConfig,
             h_drop: Tensor | None = None) -> tuple[Tensor, tuple[()]]:
    """One Elman step from the input part `a` (B, H) and h_{t-1} (B, H). Returns (h_t, ()): no gates.
    h_drop: recurrent dropout's mask (B, H) on h_{t-1} where it enters W_hh."""
    z = a + recurrent_part(h if h_drop is None else h * h_drop, p, cfg)
    h = torch.tanh(z) if cfg.family == "rnn_tanh" else torch.relu(z)
    return h, ()


class RNNCell(CellBase):
    """An Elman RNN cell, drop-in for `torch.nn.RNNCell`, with layer normalisation as an option.

    Args: input_size, hidden_size, bias, nonlinearity ("tanh" | "relu"), device, dtype as
    torch.nn.RNNCell; keyword-only layer_norm, init ("torch" | "orthogonal").

    forward(input (B, I) or (I,), hx (B, H) or None) -> h_1; with record_gates=True -> (h_1, {}).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
        *,
        layer_norm: bool = False,
        init: str = "torch",
        **unknown,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        cfg = CellConfig(f"rnn_{nonlinearity}", input_size, hidden_size, bias, layer_norm=layer_norm)
        super().__init__(cfg, init, device, dtype, unknown)
        self.nonlinearity = nonlinearity

    step = staticmethod(rnn_step)
