"""The LSTM cell (Hochreiter & Schmidhuber 1997; with a forget gate, Gers et al. 2000), one time step.

    i_t = sigmoid(a_i + b_i [+ w_ci * c_{t-1}])          input gate
    f_t = sigmoid(a_f + b_f [+ w_cf * c_{t-1}])          forget gate      (coupled: f_t = 1 - i_t)
    g_t = tanh(a_g + b_g)                                candidate cell
    c_t = f_t * c_{t-1} + i_t * g_t                      cell state
    o_t = sigmoid(a_o + b_o [+ w_co * c_t])              output gate
    h_t = o_t * tanh(c_t)                                (layer_norm: o_t * tanh(LN(c_t)))
    h_t = W_hr h_t                                       (proj_size > 0)

where a = W_ih x_t + b_ih and b = W_hh h_{t-1} + b_hh are the packed gate pre-activations
(`projection.py`), split in torch's order i|f|g|o (coupled: i|g|o).

Variants (any combination), as options of the cell:
- peephole (Gers & Schmidhuber 2000, "Recurrent nets that time and count"): diagonal weights w_ci,
  w_cf, w_co let the gates see the cell state; i and f see c_{t-1}, o sees the new c_t.
- coupled input-forget gate (Greff et al. 2017, "LSTM: A Search Space Odyssey", CIFG; Olah's
  "Understanding LSTM Networks"): f_t = 1 - i_t, so what is forgotten is what is written.
- layer_norm (Ba, Kiros & Hinton 2016, "Layer Normalization"): LN of W_ih x_t and of W_hh h_{t-1} over the
  G*H pre-activations, and LN of c_t before the output tanh (the carried c_t is not normalised).
- proj_size (Sak, Senior & Beaufays 2014, "LSTM recurrent neural network architectures for large scale
  acoustic modeling"; torch.nn.LSTM's proj_size): h_t = W_hr (o_t * tanh(c_t)), P < H features.

Example:
    >>> cell = LSTMCell(10, 20, peephole=True)
    >>> h, c = cell(torch.randn(3, 10))          # (B=3, H=20) each
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import CellBase
from .config import LN_EPS, CellConfig
from .projection import recurrent_part

__all__ = ["LSTMCell", "lstm_step"]


def lstm_step(
    a: Tensor, state: tuple[Tensor, Tensor], p: dict[str, Tensor], cfg: CellConfig, h_drop: Tensor | None = None
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor, Tensor, Tensor]]:
    """One LSTM step from the input part `a` (B, G*H) and the state (h (B, R), c (B, H)).
    h_drop: recurrent dropout's mask (B, R), multiplying h_{t-1} where it enters W_hh.

    Returns ((h_t, c_t), (i_t, f_t, g_t, o_t)).
    """
    h, c = state
    z = a + recurrent_part(h if h_drop is None else h * h_drop, p, cfg)
    if cfg.coupled:
        z_i, z_g, z_o = z.chunk(3, dim=1)
    else:
        z_i, z_f, z_g, z_o = z.chunk(4, dim=1)
    if cfg.peephole:
        z_i = z_i + p["weight_ci"] * c
        if not cfg.coupled:
            z_f = z_f + p["weight_cf"] * c
    i = torch.sigmoid(z_i)
    f = 1.0 - i if cfg.coupled else torch.sigmoid(z_f)
    g = torch.tanh(z_g)
    c = f * c + i * g
    if cfg.peephole:
        z_o = z_o + p["weight_co"] * c
    o = torch.sigmoid(z_o)
    if cfg.layer_norm:
        h = o * torch.tanh(F.layer_norm(c, (cfg.hidden_size,), p["ln_weight_c"], p.get("ln_bias_c"), LN_EPS))
    else:
        h = o * torch.tanh(c)
    if cfg.proj_size > 0:
        h = F.linear(h, p["weight_hr"])
    return (h, c), (i, f, g, o)


class LSTMCell(CellBase):
    """An LSTM cell, drop-in for `torch.nn.LSTMCell`, with the variants above as options.

    Args: input_size, hidden_size, bias, device, dtype as torch.nn.LSTMCell; keyword-only
    proj_size, peephole, coupled, layer_norm, init ("torch" | "orthogonal").

    forward(input (B, I) or (I,), hx=(h (B, R), c (B, H)) or None) -> (h_1, c_1);
    with record_gates=True -> ((h_1, c_1), {"i", "f", "g", "o": (B, H)}).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        proj_size: int = 0,
        peephole: bool = False,
        coupled: bool = False,
        layer_norm: bool = False,
        init: str = "torch",
        **unknown,
    ) -> None:
        cfg = CellConfig("lstm", input_size, hidden_size, bias, proj_size, peephole, coupled, layer_norm)
        super().__init__(cfg, init, device, dtype, unknown)

    step = staticmethod(lstm_step)
