"""GlobalForecaster: one model for many series (DeepAR-style inputs, direct multi-step output).

Every series is scaled on its own (the data's job), so one set of weights serves series of any level. Per
window of L steps of series s, at each step t of the window:

    x_t  = [z_t, p_t, k_t, e_s]         scaled value (1), past covariates (P), known covariates (K),
                                        the series' learned embedding e_s = E[s] (E: (S, id_embed));
                                        level "window": z_t - z_L, the window relative to its last value
    h    = RNN(W_in x + b_in)           the last layer's final state                        (B, R)
    r    = W [h, e_s, k_{t+1..t+H}] + b  the known covariates of the H steps ahead, flattened  (B, H)
    z_{t+k} = base_k + r_k              base: 0 | z_t | z_{t+k-m}, as Forecaster's residual

The past covariates are read over the window only (their future is unknown); the known ones (calendar
features) are read over the window and the horizon. With residual "last" or "seasonal" the output layer starts
near zero, so the untrained model forecasts every series as the naive or seasonal-naive forecast does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._fields import opt
from .forecaster import Forecaster, ForecasterConfig

__all__ = ["GlobalForecaster", "GlobalForecasterConfig", "build_forecaster"]


@dataclass(slots=True)
class GlobalForecasterConfig(ForecasterConfig):
    """ForecasterConfig plus what many series need; series = 0 is one series (the plain Forecaster)."""

    series: int = opt(0, "S, how many series the model knows (0: one series, the plain Forecaster)", cli=False)
    id_embed: int = opt(8, "many series: width of each series id's learned embedding", metavar="E")
    known: int = opt(0, "K, known future covariates per step (calendar features)", cli=False)
    past: int = opt(0, "P, past-only covariates per step", cli=False)
    level: str = opt("series", "many series: the network reads each window as scaled per series (series), or "
                     "relative to the window's last value (window: level-free, so a series that leaves its training "
                     "range reads as it did in training)", choices=("series", "window"))

    def check(self, owner: str = "Forecaster", name=str, sizes: bool = True) -> None:
        ForecasterConfig.check(self, owner, name, sizes)  # (a slots dataclass: no zero-argument super())
        if not isinstance(self.id_embed, int) or isinstance(self.id_embed, bool) or self.id_embed < 1:
            raise ValueError(f"{owner}: {name('id_embed')} must be an integer >= 1, got {self.id_embed!r}")
        for f in ("series", "known", "past"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{owner}: {f} must be an integer >= 0, got {v!r}")
        if self.level not in ("series", "window"):
            raise ValueError(f"{owner}: {name('level')} must be series or window, got {self.level!r}")
        if self.series and self.ensemble > 1:
            raise ValueError(f"{owner}: {name('ensemble')} is for one series; many series train one global model "
                             f"(drop --ensemble)")


def build_forecaster(config: ForecasterConfig) -> nn.Module:
    """The model a forecast run's config describes: GlobalForecaster for many series, else Forecaster."""
    return GlobalForecaster(config) if getattr(config, "series", 0) else Forecaster(config)


class GlobalForecaster(nn.Module):
    """forward(window (B, L), ids (B,), past (B, L, P), known (B, L+H, K), targets (B, H) or None)
    -> (forecast (B, H), mean squared error or None)."""

    def __init__(self, config: GlobalForecasterConfig) -> None:
        super().__init__()
        config.check()
        if config.series < 1:
            raise ValueError(f"GlobalForecaster: series must be >= 1, got {config.series}")
        self.config = c = config
        self.id_embedding = nn.Embedding(c.series, c.id_embed)
        self.inp = nn.Linear(1 + c.past + c.known + c.id_embed, c.embed)
        self.rnn = c.rnn.build(c.embed)
        self.drop = nn.Dropout(c.rnn.dropout)
        self.head = nn.Linear(c.rnn.output_size + c.id_embed + c.horizon * c.known, c.horizon)
        if c.residual != "none":
            with torch.no_grad():  # start as the baseline forecast: a zero correction
                self.head.weight.mul_(0.1)
                self.head.bias.zero_()

    def baseline(self, window: Tensor) -> Tensor:
        """(B, H): what the residual is added to (Forecaster's: zeros, the last value, seasonal naive)."""
        return Forecaster.baseline(self, window)

    def forward(self, window: Tensor, ids: Tensor, past: Tensor, known: Tensor, targets: Tensor | None = None):
        c = self.config
        B, L = window.shape
        if L != c.lookback or ids.shape != (B,) or past.shape != (B, L, c.past) or \
                known.shape != (B, L + c.horizon, c.known):
            raise ValueError(f"GlobalForecaster: expected window (B, L={c.lookback}), ids (B,), past (B, L, "
                             f"P={c.past}), known (B, L+H={c.lookback + c.horizon}, K={c.known}); got "
                             f"{tuple(window.shape)}, {tuple(ids.shape)}, {tuple(past.shape)}, {tuple(known.shape)}")
        e = self.id_embedding(ids)  # (B, E)
        level = window - window[:, -1:] if c.level == "window" else window  # what the network reads of the values
        x = torch.cat([level.unsqueeze(-1), past, known[:, :L], e.unsqueeze(1).expand(B, L, -1)], dim=-1)
        x = self.inp(x).transpose(0, 1)  # (L, B, embed), time-major
        _, state = self.rnn(self.drop(x))
        h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, R)
        D = c.rnn.directions
        h = torch.cat(list(h_n[-D:]), dim=-1)  # (B, D*R)
        ahead = known[:, L:].reshape(B, c.horizon * c.known)  # (B, H*K)
        out = self.baseline(window) + self.head(self.drop(torch.cat([h, e, ahead], dim=-1)))  # (B, H)
        loss = F.mse_loss(out, targets) if targets is not None else None
        return out, loss

    @torch.no_grad()
    def forecast(self, window: Tensor, ids: Tensor, past: Tensor, known: Tensor) -> Tensor:
        """(B, H) scaled forecasts, in eval mode."""
        was_training = self.training
        self.eval()
        try:
            return self(window, ids, past, known)[0]
        finally:
            self.train(was_training)
