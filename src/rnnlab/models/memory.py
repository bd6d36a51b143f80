"""MemoryNet: a many-to-many sequence tagger for synthetic memory problems (copy memory, adding problem).

    x_t  = onehot(id_t)                    (B, T, V)      V = input vocabulary (symbols, blank, delimiter)
    h_t  = RNN(x_t, h_{t-1})               (B, T, H)      rnn (tanh) | gru | lstm | mingru | minlstm, one layer
    y_t  = W h_t + b                       (B, T, C)      logits over the C output ids

One layer and a linear read-out: what the network remembers must be carried by h_t (and c_t for the LSTM).

chrono=T_max (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?"): the gates that decide how
long a state is kept start with time scales spread over [1, T_max]: LSTM b_f = log(U(1, T_max - 1)) and
b_i = -b_f; GRU (h_t = (1 - z) n + z h_{t-1}) b_z = log(U(1, T_max - 1)); minLSTM (f' = f / (f + i), which is
sigmoid(b) when b_f = b and b_i = -b) as the LSTM; minGRU (h_t = (1 - z) h_{t-1} + z h~: z is the write gate)
b_z = -log(U(1, T_max - 1)). Without it the orthogonal init's
LSTM forget bias 1 gives f ~ 0.73, whose product over 100 steps is ~1e-14: the gradient vanishes in the cell
state too. The tanh RNN has no gate to set.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import RecurrentConfig

__all__ = ["MemoryNet", "recurrent_parameters"]


class MemoryNet(nn.Module):
    """forward(x (B, T) ids) -> logits (B, T, C)."""

    def __init__(self, cell: str, vocab: int, hidden: int, classes: int, *, backend: str = "auto",
                 init: str = "orthogonal", chrono: int | None = None) -> None:
        super().__init__()
        rnn = RecurrentConfig(cell=cell, hidden_size=hidden, init=init, backend=backend)
        rnn.check("MemoryNet")
        self.cell, self.vocab = cell, vocab
        self.rnn = rnn.build(vocab)
        self.head = nn.Linear(hidden, classes)
        if chrono is not None and cell != "rnn":
            with torch.no_grad():
                H = hidden
                b = torch.log(torch.empty(H).uniform_(1, max(chrono - 1, 1.0 + 1e-3)))
                if hasattr(self.rnn, "bias_hh_l0"):
                    self.rnn.bias_hh_l0.zero_()
                if cell == "lstm":  # i|f|g|o
                    self.rnn.bias_ih_l0[H : 2 * H] = b
                    self.rnn.bias_ih_l0[:H] = -b
                elif cell == "minlstm":  # f|i|h~
                    self.rnn.bias_ih_l0[:H] = b
                    self.rnn.bias_ih_l0[H : 2 * H] = -b
                elif cell == "mingru":  # z|h~: z writes, 1 - z keeps
                    self.rnn.bias_ih_l0[:H] = -b
                else:  # r|z|n
                    self.rnn.bias_ih_l0[H : 2 * H] = b

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(F.one_hot(x.t(), self.vocab).float())  # (T, B, H): the layer's own layout
        return self.head(out).transpose(0, 1)  # (B, T, C)


def recurrent_parameters(cell: str, vocab: int, hidden: int, classes: int) -> int:
    """Parameters of MemoryNet: the layer's (G*H*(V + H + 2) for rnn/gru/lstm with G = 1, 3, 4 gate blocks; the
    min cells have no W_hh and one bias: G*H*(V + 1), G = 2, 3) + C*(H + 1) for the read-out."""
    shapes = RecurrentConfig(cell=cell, hidden_size=hidden).cell_config(vocab).param_shapes()
    return sum(math.prod(s) for s in shapes.values()) + classes * (hidden + 1)
