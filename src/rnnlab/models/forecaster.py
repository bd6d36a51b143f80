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

ensemble=K: K such networks side by side, each from its own initial weights, trained on the same batches
(the loss is the mean of their squared errors, so each learns as if alone); the forecast is their median per
value. A single short series makes one network's forecast swing with its seed (docs/TASKS.md: co2 MASE
0.347-0.435 over three seeds); the median of K is steadier. K times the work per step.

Direct multi-step: H outputs at once (`horizon` = H). Recursive: horizon 1, and `forecast` feeds each
prediction back as the newest value of the window. `forecast(window, steps)` does either, for any steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._fields import opt
from .._validate import check_positive_ints
from ..layers import RecurrentConfig

__all__ = ["RESIDUALS", "Forecaster", "ForecasterConfig"]

RESIDUALS = ("none", "last", "seasonal", "seasonal-drift")


@dataclass(slots=True)
class ForecasterConfig:
    lookback: int = opt(52, "L, past values the model reads", metavar="L")
    horizon: int = opt(1, "H, values it outputs at once (1 with strategy recursive)", cli=False)
    season: int = opt(1, "m, the seasonal period, for residual seasonal", cli=False)
    residual: str = opt("last", "the network corrects the seasonal naive (seasonal) or naive (last) forecast, or "
                                "predicts outright (none); auto: seasonal when the season fits in the lookback, "
                                "else last", choices=("auto", *RESIDUALS))
    embed: int = opt(16, "input projection width")
    ensemble: int = opt(1, "K networks from different initial weights, trained side by side; the forecast is "
                           "their median (steadier than one seed; K times the work per step)", metavar="K")
    rnn: RecurrentConfig = opt(default_factory=lambda: RecurrentConfig(hidden_size=64, init="orthogonal"))

    def check(self, owner: str = "Forecaster", name=str, sizes: bool = True) -> None:
        """Raise ValueError naming the option (name(field): the keyword, or the command line's flag).
        sizes=False skips what the data sets (horizon, season, and "auto" residual resolved from them)."""
        self.rnn.check(owner, name)
        check_positive_ints(owner, self, ("lookback", "embed", "ensemble", "horizon", "season")[: 5 if sizes else 3],
                            name)
        if not sizes and self.residual == "auto":
            return
        if self.residual not in RESIDUALS:
            raise ValueError(f"{owner}: unknown {name('residual')} {self.residual!r}; expected one of "
                             f"{', '.join(RESIDUALS)}")
        if self.residual == "seasonal-drift" and self.lookback < 2 * self.season:
            raise ValueError(f"{owner}: residual 'seasonal-drift' needs {name('lookback')} >= 2 x season "
                             f"({2 * self.season}), got {self.lookback}")
        if self.residual == "seasonal" and self.lookback < self.season:
            raise ValueError(f"{owner}: residual 'seasonal' needs {name('lookback')} >= season ({self.season}), "
                             f"got {self.lookback}")


class Forecaster(nn.Module):
    """forward(window (B, L), targets (B, H) or None) -> (forecast (B, H), mean squared error or None)."""

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        if c.ensemble > 1:  # K single networks; their parameters are members.k.*
            self.members = nn.ModuleList(Forecaster(replace(c, ensemble=1)) for _ in range(c.ensemble))
            return
        self.inp = nn.Linear(1, c.embed)
        self.rnn = c.rnn.build(c.embed)
        self.drop = nn.Dropout(c.rnn.dropout)
        self.head = nn.Linear(c.rnn.output_size, c.horizon)
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
        if c.ensemble > 1:
            outs, losses = zip(*(m(window, targets) for m in self.members))
            loss = torch.stack(losses).mean() if targets is not None else None
            return torch.stack(outs).quantile(0.5, dim=0), loss  # (B, H): the median (even K: the middle two's mean)
        x = self.inp(window.t().unsqueeze(-1))  # (L, B, embed), time-major
        _, state = self.rnn(self.drop(x))
        h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, R)
        D = self.config.rnn.directions
        h = torch.cat(list(h_n[-D:]), dim=-1)  # (B, D*R): the last layer's final state (each direction's)
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
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items() if k != "rnn")  # the layer prints itself
