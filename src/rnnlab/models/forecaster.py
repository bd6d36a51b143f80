"""Forecaster: many-to-one forecasting, a window of L past values in, the next H values out.

    z_{t-L+1..t}                      the scaled history window                     (B, L)
    h_t  = RNN(W_in z + b_in)         any rnnlab cell and variant; the last state      (B, R)
    r    = W h_t + b                                                                (B, H)
    base = 0 | z_t | z_{t+k-m}        residual "none" | "last" | "seasonal" (k = 1..H, m = season)
         | z_{t+k-m} + d              "seasonal-drift": d = mean of the last season - mean of the one before
    z_{t+k} = base_k + r_k            the forecast, scaled

residual="seasonal" makes the network learn the correction to the seasonal naive forecast (and "last"
to the naive one): the output layer starts near zero, so an untrained model already forecasts as well as
that baseline, and the recurrent part spends its capacity on what the baseline misses.

Direct multi-step: H outputs at once (`horizon` = H). Recursive: horizon 1, and `forecast` feeds each
prediction back as the newest value of the window. `forecast(window, steps)` does either, for any steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cells import INIT_SCHEMES
from ..kernels import backend_names
from .charlm import CELLS

__all__ = ["RESIDUALS", "Forecaster", "ForecasterConfig"]

RESIDUALS = ("none", "last", "seasonal", "seasonal-drift")


@dataclass
class ForecasterConfig:
    lookback: int = 52         # L, past values the model reads
    horizon: int = 1           # H, values it outputs at once (1 with strategy="recursive")
    season: int = 1            # m, the seasonal period, for residual="seasonal"
    residual: str = "last"     # none | last | seasonal (see the module docstring)
    embed: int = 16            # input projection width
    cell: str = "lstm"
    hidden: int = 64
    layers: int = 1
    dropout: float = 0.0
    peephole: bool = False
    coupled: bool = False
    layer_norm: bool = False
    proj_size: int = 0
    backend: str = "auto"
    init: str = "orthogonal"

    def check(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"Forecaster: unknown cell {self.cell!r}; expected one of {', '.join(CELLS)}")
        if self.cell != "lstm":
            for name in ("peephole", "coupled", "proj_size"):
                if getattr(self, name):
                    raise ValueError(f"Forecaster: {name} is an LSTM variant; use cell='lstm' or drop {name}")
        for name in ("lookback", "horizon", "season", "embed", "hidden", "layers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"Forecaster: {name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.residual not in RESIDUALS:
            raise ValueError(f"Forecaster: unknown residual {self.residual!r}; expected one of {', '.join(RESIDUALS)}")
        if self.residual == "seasonal-drift" and self.lookback < 2 * self.season:
            raise ValueError(f"Forecaster: residual 'seasonal-drift' needs lookback >= 2 x season ({2 * self.season}), "
                             f"got lookback {self.lookback}")
        if self.residual == "seasonal" and self.lookback < self.season:
            raise ValueError(f"Forecaster: residual 'seasonal' needs lookback >= season ({self.season}), "
                             f"got lookback {self.lookback}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"Forecaster: dropout must be in [0, 1), got {self.dropout}")
        if self.proj_size < 0 or (self.proj_size and self.proj_size >= self.hidden):
            raise ValueError(f"Forecaster: proj_size must be in [0, hidden={self.hidden}), got {self.proj_size}")
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"Forecaster: unknown init {self.init!r}; expected one of {', '.join(INIT_SCHEMES)}")
        if self.backend not in backend_names():
            raise ValueError(f"Forecaster: unknown backend {self.backend!r}; expected one of {', '.join(backend_names())}")


class Forecaster(nn.Module):
    """forward(window (B, L), targets (B, H) or None) -> (forecast (B, H), mean squared error or None)."""

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        variants = dict(layer_norm=c.layer_norm)
        if c.cell == "lstm":
            variants.update(peephole=c.peephole, coupled=c.coupled, proj_size=c.proj_size)
        self.inp = nn.Linear(1, c.embed)
        self.rnn = CELLS[c.cell](c.embed, c.hidden, c.layers, dropout=c.dropout if c.layers > 1 else 0.0,
                                 init=c.init, backend=c.backend, **variants)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.proj_size or c.hidden, c.horizon)
        if c.residual != "none":
            with torch.no_grad():  # start as the baseline forecast: a zero correction
                self.head.weight.mul_(0.1)
                self.head.bias.zero_()

    def baseline(self, window: Tensor) -> Tensor:
        """(B, H): what the residual is added to (zeros, the last value, or the seasonal naive forecast)."""
        c = self.config
        B, L = window.shape
        if c.residual == "none":
            return window.new_zeros(B, c.horizon)
        if c.residual == "last":
            return window[:, -1:].expand(B, c.horizon)
        k = torch.arange(c.horizon, device=window.device)
        m = c.season
        base = window[:, L - m + k % m]  # y_{t+1+k-m}, repeating the last season
        if c.residual == "seasonal-drift":  # plus the change of the seasonal mean, once per season ahead
            drift = window[:, L - m:].mean(1) - window[:, L - 2 * m:L - m].mean(1)  # (B,)
            base = base + drift[:, None] * (1 + k // m).to(window.dtype)
        return base

    def forward(self, window: Tensor, targets: Tensor | None = None):
        c = self.config
        if window.dim() != 2 or window.shape[1] != c.lookback:
            raise ValueError(f"Forecaster: expected a window of shape (B, L={c.lookback}), got {tuple(window.shape)}")
        x = self.inp(window.t().unsqueeze(-1))  # (L, B, embed), time-major
        _, state = self.rnn(self.drop(x))
        h = (state[0] if isinstance(state, tuple) else state)[-1]  # (B, R): the last layer's final state
        out = self.baseline(window) + self.head(self.drop(h))  # (B, H)
        loss = F.mse_loss(out, targets) if targets is not None else None
        return out, loss

    @torch.no_grad()
    def forecast(self, window: Tensor, steps: int) -> Tensor:
        """(B, steps) scaled forecasts after each window (B, L): blocks of H outputs, each block's values
        appended to the window for the next (recursive when H = 1, direct when steps <= H)."""
        was_training = self.training
        self.eval()
        try:
            outs, w = [], window
            done = 0
            while done < steps:
                y, _ = self(w)
                outs.append(y)
                done += y.shape[1]
                w = torch.cat([w, y], dim=1)[:, -self.config.lookback:]
            return torch.cat(outs, dim=1)[:, :steps]
        finally:
            self.train(was_training)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items() if v)
