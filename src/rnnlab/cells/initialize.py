"""Initialisation schemes for one cell's parameters (used by cells and, per layer-direction, by layers).

"torch"       torch.nn's scheme: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), peepholes too;
              layer-norm gains 1 and shifts 0 (a random gain would scale the gates arbitrarily).
"orthogonal"  for models trained from scratch: each H-row block of weight_hh orthogonal, each block of
              weight_ih (and weight_hr) Xavier-uniform, biases 0 except the LSTM forget-gate bias 1
              (in bias_ih; Jozefowicz et al. 2015), peepholes 0, layer-norm gains 1 and shifts 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .config import CellConfig

__all__ = ["INIT_SCHEMES", "init_parameters_"]

INIT_SCHEMES = ("torch", "orthogonal")


@torch.no_grad()
def init_parameters_(params: dict[str, Tensor], cfg: CellConfig, scheme: str) -> None:
    """Fill `params` (name -> tensor, as in cfg.param_shapes()) in place with `scheme`."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init {scheme!r}; expected one of {INIT_SCHEMES}")
    on_meta = any(t.is_meta for t in params.values())
    for name, t in params.items():
        if name.startswith("ln_weight"):
            t.fill_(1.0)
        elif name.startswith("ln_bias"):
            t.zero_()
        elif scheme == "torch":
            stdv = 1.0 / math.sqrt(cfg.hidden_size)
            t.uniform_(-stdv, stdv)
        elif on_meta:
            continue  # meta tensors hold no values; orthogonal_ would try a QR decomposition
        elif name == "weight_hh":
            for block in t.split(cfg.hidden_size, dim=0):
                nn.init.orthogonal_(block)
        elif name in ("weight_ih", "weight_hr"):
            for block in t.split(cfg.hidden_size, dim=0):
                nn.init.xavier_uniform_(block)
        else:  # biases and peepholes
            t.zero_()
    if scheme == "orthogonal" and cfg.is_lstm and not cfg.coupled and "bias_ih" in params and not on_meta:
        H = cfg.hidden_size
        params["bias_ih"][H : 2 * H].fill_(1.0)  # forget gate: remember by default
