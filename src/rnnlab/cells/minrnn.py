"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"), one time step.

Their gates read the input only, never h_{t-1}, so each is a first-order linear recurrence
h_t = a_t * h_{t-1} + b_t whose a_t, b_t are known for every step before the first one runs: training
solves all steps at once with a parallel scan (kernels/scan.py); this file is the one step, for the
reference loop, generation and streaming.

minGRU (packed rows z | h~, G = 2):
    z_t  = sigmoid(a_z)                              update gate
    h~_t = g(a_h)                                    candidate
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

minLSTM (packed rows f | i | h~, G = 3):
    f_t  = sigmoid(a_f)                              forget gate
    i_t  = sigmoid(a_i)                              input gate
    f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)   normalised, so f' + i' = 1 (recorded as f, i);
                                                     computed as sigmoid(+-d), d = log f - log i (normalised_gates)
    h~_t = g(a_h)                                    candidate
    h_t  = f'_t * h_{t-1} + i'_t * h~_t

where a = W_ih x_t + b_ih are the packed pre-activations (`projection.py`; there is no W_hh and no b_hh).
Both are convex combinations of h_{t-1} and h~_t.

Candidate map g (the `log_space` option):
- log_space=True (default; the paper's log-space parametrisation, section 3 / appendix B):
  g(x) = x + 0.5 for x >= 0, sigmoid(x) for x < 0. It is continuous, increasing and positive, so every
  b_t is positive and the scan runs entirely in log space (log g(x) = log(x + 0.5) or -softplus(-x)).
  With h_0 >= 0 every h_t stays positive.
- log_space=False (the paper's plain form): g(x) = x, h~ of any sign.

The recorded gates are the values the recurrence mixes: z, h~ (minGRU) and f', i', h~ (minLSTM, under the
names f, i), so h_t = (1 - z_t) h_{t-1} + z_t h~_t holds for the recorded values.

Example:
    >>> cell = MinGRUCell(10, 20)
    >>> h = cell(torch.randn(3, 10))             # (B=3, H=20)
    >>> h, gates = cell(torch.randn(3, 10), h, record_gates=True)   # gates["z"], gates["h~"]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import CellBase
from .config import CellConfig

__all__ = ["MinGRUCell", "MinLSTMCell", "candidate", "log_candidate", "mingru_step", "minlstm_step",
           "normalised_gates"]


def candidate(x: Tensor, cfg: CellConfig) -> Tensor:
    """h~ = g(x): x + 0.5 for x >= 0, sigmoid(x) below (log_space), or x itself (plain)."""
    if not cfg.log_space:
        return x
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_candidate(x: Tensor) -> Tensor:
    """log g(x) without forming g: log(x + 0.5) for x >= 0, log sigmoid(x) = -softplus(-x) below."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def normalised_gates(a_f: Tensor, a_i: Tensor) -> tuple[Tensor, Tensor]:
    """(f', i') = (f, i) / (f + i) for f = sigmoid(a_f), i = sigmoid(a_i), as sigmoid(d) and sigmoid(-d) with
    d = log f - log i = softplus(-a_i) - softplus(-a_f): the same numbers, without the 0/0 (and the infinite
    gradient) of f + i underflowing when both pre-activations are very negative (training a minLSTM on
    mnist-rows at lr 3e-3 met it at step 59)."""
    d = F.softplus(-a_i) - F.softplus(-a_f)
    return torch.sigmoid(d), torch.sigmoid(-d)


def mingru_step(a: Tensor, h: Tensor, p: dict[str, Tensor], cfg: CellConfig) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One minGRU step from the input part `a` (B, 2H) and h_{t-1} (B, H). Returns (h_t, (z_t, h~_t))."""
    a_z, a_h = a.chunk(2, dim=1)
    z = torch.sigmoid(a_z)
    n = candidate(a_h, cfg)
    h = (1.0 - z) * h + z * n
    return h, (z, n)


def minlstm_step(
    a: Tensor, h: Tensor, p: dict[str, Tensor], cfg: CellConfig
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """One minLSTM step from the input part `a` (B, 3H) and h_{t-1} (B, H). Returns (h_t, (f'_t, i'_t, h~_t))."""
    a_f, a_i, a_h = a.chunk(3, dim=1)
    f, i = normalised_gates(a_f, a_i)
    n = candidate(a_h, cfg)
    h = f * h + i * n
    return h, (f, i, n)


class MinGRUCell(CellBase):
    """A minGRU cell: update gate and candidate from the input only (see the module docstring).

    Args: input_size, hidden_size, bias, device, dtype as torch.nn.GRUCell; keyword-only log_space
    (default True: the paper's positive candidate g; False: h~ = W_h x + b_h), init ("torch" | "orthogonal").
    Parameters: weight_ih (2H, I) rows z | h~, bias_ih (2H,).

    forward(input (B, I) or (I,), hx (B, H) or None) -> h_1;
    with record_gates=True -> (h_1, {"z", "h~": (B, H)}).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 log_space: bool = True, init: str = "torch", **unknown) -> None:
        cfg = CellConfig("mingru", input_size, hidden_size, bias, log_space=log_space)
        super().__init__(cfg, init, device, dtype, unknown)

    step = staticmethod(mingru_step)


class MinLSTMCell(CellBase):
    """A minLSTM cell: normalised forget and input gates and a candidate from the input only.

    Args: input_size, hidden_size, bias, device, dtype as torch.nn.LSTMCell; keyword-only log_space,
    init ("torch" | "orthogonal"). Parameters: weight_ih (3H, I) rows f | i | h~, bias_ih (3H,).
    The state is h alone (no cell state).

    forward(input (B, I) or (I,), hx (B, H) or None) -> h_1;
    with record_gates=True -> (h_1, {"f", "i", "h~": (B, H)}) (f and i normalised: f + i = 1).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 log_space: bool = True, init: str = "torch", **unknown) -> None:
        cfg = CellConfig("minlstm", input_size, hidden_size, bias, log_space=log_space)
        super().__init__(cfg, init, device, dtype, unknown)

    step = staticmethod(minlstm_step)
