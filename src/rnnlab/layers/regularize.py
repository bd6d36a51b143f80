"""Recurrent regularization: the masks of one layer-direction, drawn by the layer so every backend sees them.

    input_dropout=p      x_t -> x_t * m / (1-p),       m (B, I) ~ Bernoulli(1-p), one per sequence, held over
                         time (variational / locked dropout, Gal & Ghahramani 2016; Keras' `dropout`)
    weight_drop=p        W_hh -> W_hh * M / (1-p),     M (G*H, R), one per forward call (DropConnect, Wan et
                         al. 2013; AWD-LSTM's WeightDrop, Merity et al. 2018); the parameter itself is untouched
    recurrent_dropout=p  h_{t-1} W_hh^T -> (h_{t-1} * m / (1-p)) W_hh^T,  m (B, R), one per sequence (Gal &
                         Ghahramani; Keras' `recurrent_dropout`); applied inside the time loop
    zoneout=p | (p_c, p_h)   c_t = d c_{t-1} + (1-d) c~_t,  h_t = d' h_{t-1} + (1-d') h~_t with fresh
                         d ~ Bernoulli(p_c), d' ~ Bernoulli(p_h) per unit and step (Krueger et al. 2017);
                         GRU/RNN: on h; inside the time loop

In evaluation mode the dropouts are off and zoneout uses its expectation (d = p), so an evaluated layer
equals the unregularized one exactly when zoneout is 0.

Where they act: input dropout and weight drop change what a backend receives (x, W_hh), so every backend
serves them, native included; recurrent dropout and zoneout act inside the loop, so only the fused and
reference backends serve them (`RunOptions.in_loop`).

The one documented order of random draws, from torch's generator of the layer's device, per forward (each
mask one torch.randint draw of 16-bit uniforms, `_uniform16`: p is applied at a resolution of 1/65,536):
for each layer l = 0..L-1, for each direction d (forward, then reverse): the input mask (B, I_l), the
weight mask (G*H, R), the recurrent mask (B, R), the zoneout indicators of c (T, B, H) (LSTM), then of h
(T, B, R) — each only when its probability is > 0 — then, after the layer, torch's between-layer dropout
(`dropout=`) over (T, B, D*R). Zoneout draws over all T input steps (not only the steps the longest
sequence needs), so the numbers do not depend on the padding. A seed therefore fixes every mask, whichever
backend runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import torch
from torch import Tensor

from ..cells.config import CellConfig
from ..kernels.contract import StepMasks
from .config import RecurrentConfig

__all__ = ["DirectionMasks", "draw"]


@dataclass(frozen=True)
class DirectionMasks:
    """Everything drawn for one layer-direction: what the layer applies itself, and what the backend does."""

    input: Tensor | None  # (B, I), scaled
    weight_hh: Tensor | None  # (G*H, R), scaled
    step: StepMasks | None  # recurrent and zoneout, for the backend's loop

    def named(self) -> dict[str, Tensor]:
        """Masks by name, for the trace: input, weight_hh, recurrent (as drawn), zoneout_c / zoneout_h (time-major)."""
        out = {}
        if self.input is not None:
            out["input"] = self.input
        if self.weight_hh is not None:
            out["weight_hh"] = self.weight_hh
        if self.step is not None:
            for key, name in (("recurrent", "recurrent"), ("zone_c", "zoneout_c"), ("zone_h", "zoneout_h")):
                value = getattr(self.step, key)
                if value is not None:
                    out[name] = value
        return out


RESOLUTION = 65536  # probabilities are applied in steps of 1/65,536 (|error| <= 7.6e-6)


def _uniform16(shape, like: Tensor) -> Tensor:
    """Uniform integers over [-32768, 32767] (shape), as float: 16-bit pieces cut out of torch.randint's
    64-bit words, 4 draws per generated word where Tensor.bernoulli_ makes one uniform float per element.
    Returned in float32 (float64 for float64 layers): every 16-bit integer is exact there, and the masks are
    then made by clamping, without a bool tensor (torch's bool->float and where() passes cost more than the
    draw itself). Measured on this project's CPU: a (1024, 256) keep mask in 0.5 ms, against 1.4-1.8 ms
    through a bool tensor and torch.where, and 3.9 ms with bernoulli_."""
    n = math.prod(shape)
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=like.device)
    work = torch.float64 if like.dtype == torch.float64 else torch.float32
    return words.view(torch.int16)[:n].view(shape).to(work)


def _threshold(p: float) -> int:
    """A 16-bit uniform u is 'below p' when u < this: probability round(p * 65536) / 65536."""
    return round(p * RESOLUTION) - RESOLUTION // 2


def _keep(shape, p: float, like: Tensor) -> Tensor:
    """Inverted-dropout mask: 1/(1-p) with probability 1-p, else 0 (p at 1/65,536 resolution; the scale is
    that of the probability applied, so the expectation is exactly 1). Dropped where u < threshold: for
    integers u, clamp(u - threshold + 1, 0, 1) is exactly that indicator's complement."""
    q = round(p * RESOLUTION) / RESOLUTION
    u = _uniform16(shape, like)
    return u.sub_(_threshold(p) - 1).clamp_(0, 1).mul_(1.0 / (1.0 - q)).to(like.dtype)


def _zone(shape, p: float, like: Tensor) -> Tensor:
    """Zoneout's indicators: 1 (keep the previous value) with probability p, else 0 (where u < threshold:
    clamp(threshold - u, 0, 1))."""
    u = _uniform16(shape, like)
    return u.neg_().add_(_threshold(p)).clamp_(0, 1).to(like.dtype)


def draw(config: RecurrentConfig, cell: CellConfig, training: bool, B: int, T: int, T_run: int,
         like: Tensor) -> DirectionMasks:
    """The masks of one layer-direction, in the documented order (module docstring). training=False: no
    dropout; zoneout as its expectation (0-dim tensors holding p)."""
    H, R, GH = cell.hidden_size, cell.state_size, cell.num_blocks * cell.hidden_size
    zc, zh = config.zoneout_ch
    if cell.family != "lstm":
        zc = 0.0
    if not training:
        step = None
        if zc > 0 or zh > 0:
            step = StepMasks(None, like.new_tensor(zc) if zc > 0 else None, like.new_tensor(zh) if zh > 0 else None)
        return DirectionMasks(None, None, step)
    x_mask = _keep((B, cell.input_size), config.input_dropout, like) if config.input_dropout > 0 else None
    w_mask = _keep((GH, R), config.weight_drop, like) if config.weight_drop > 0 else None
    rec = _keep((B, R), config.recurrent_dropout, like) if config.recurrent_dropout > 0 else None
    zone_c = _zone((T, B, H), zc, like)[:T_run] if zc > 0 else None
    zone_h = _zone((T, B, R), zh, like)[:T_run] if zh > 0 else None
    step = StepMasks(rec, zone_c, zone_h) if rec is not None or zone_c is not None or zone_h is not None else None
    return DirectionMasks(x_mask, w_mask, step)
