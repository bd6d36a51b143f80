"""What the three cell modules share: parameters from a CellConfig, initialisation, checks, one step.

A cell module is `input_part` (projection.py) followed by its family's step function; the layers call
the same step function in their loop over time, so the math of a family lives in exactly one place.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .._validate import InputShapeError, reject_unknown_options, shape_str
from .config import CellConfig, check_config
from .initialize import INIT_SCHEMES, init_parameters_
from .projection import input_part

__all__ = ["CellBase"]


class CellBase(nn.Module):
    """One step of a recurrent cell family; subclasses set `step` and build their CellConfig."""

    step: Any  # the family's step function: (a, state, params, cfg) -> (state, gates)

    def __init__(self, cfg: CellConfig, init: str, device, dtype, unknown: dict) -> None:
        super().__init__()
        owner = type(self).__name__
        reject_unknown_options(owner, unknown, _cell_options(cfg))
        check_config(cfg, owner)
        if init not in INIT_SCHEMES:
            raise ValueError(f"{owner}: unknown init {init!r}; expected one of {INIT_SCHEMES}")
        self.cfg = cfg
        self.init = init
        self.input_size = cfg.input_size
        self.hidden_size = cfg.hidden_size
        self.bias = cfg.bias
        for name, shape in cfg.param_shapes().items():
            setattr(self, name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        self.reset_parameters()

    def params(self) -> dict[str, Tensor]:
        """Parameter name (= role) -> tensor, as the step functions take them."""
        return {name: getattr(self, name) for name in self.cfg.param_shapes()}

    def reset_parameters(self) -> None:
        init_parameters_(self.params(), self.cfg, self.init)

    def forward(self, input: Tensor, hx=None, *, record_gates: bool = False):
        cfg, owner = self.cfg, type(self).__name__
        I, H, R = cfg.input_size, cfg.hidden_size, cfg.state_size
        if not isinstance(input, Tensor):
            raise TypeError(f"{owner}: expected input to be a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise ValueError(f"{owner}: Expected input to be 1D or 2D, got {input.dim()}D instead: expected input of "
                             f"shape (B, I={I}) or unbatched (I={I},), got {shape_str(input.shape)}")
        if input.shape[-1] != I:
            raise InputShapeError(
                f"input has inconsistent input_size: got {input.shape[-1]} expected {I}. "
                f"{owner}: expected input of shape (B, I={I}) or unbatched (I={I},), got {shape_str(input.shape)}"
            )
        if input.dtype != self.weight_ih.dtype:
            raise InputShapeError(
                f"{owner}: input dtype {input.dtype} does not match the weights' {self.weight_ih.dtype}; "
                f"convert the input with input.to({self.weight_ih.dtype}) or the module with .to({input.dtype})"
            )
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        B = x.shape[0]

        sizes = {"h": R, "c": H} if cfg.is_lstm else {"h": H}
        if hx is None:
            state = tuple(x.new_zeros(B, n) for n in sizes.values())
        else:
            given = tuple(hx) if cfg.is_lstm and isinstance(hx, (tuple, list)) else (hx,)
            if len(given) != len(sizes) or not all(isinstance(t, Tensor) for t in given):
                want = "a tuple (h, c)" if cfg.is_lstm else "a Tensor h"
                raise TypeError(f"{owner}: expected hx to be {want} or None, got {type(hx).__name__}")
            for k, ((name, n), t) in enumerate(zip(sizes.items(), given)):
                want = (B, n) if batched else (n,)
                if tuple(t.shape) != want:
                    layout = f"(B={B}, {n})" if batched else f"unbatched ({n},)"
                    torch_words = (f"Input batch size {B} doesn't match hidden{k} batch size {t.shape[0]}"
                                   if batched and t.dim() == 2 and t.shape[0] != B else
                                   f"hidden{k} has inconsistent hidden_size: got {t.shape[-1]}, expected {n}")
                    raise InputShapeError(f"{torch_words}. {owner}: expected {name} of shape {layout}, "
                                          f"got {shape_str(t.shape)}")
            state = tuple(t if batched else t.unsqueeze(0) for t in given)

        p = self.params()
        a = input_part(x, p, cfg)
        new_state, gates = self.step(a, state if cfg.is_lstm else state[0], p, cfg)
        if not batched:
            new_state = tuple(t.squeeze(0) for t in new_state) if cfg.is_lstm else new_state.squeeze(0)
            gates = tuple(g.squeeze(0) for g in gates)
        if record_gates:
            return new_state, dict(zip(cfg.gate_names, gates))
        return new_state

    def extra_repr(self) -> str:
        cfg = self.cfg
        s = f"{cfg.input_size}, {cfg.hidden_size}"
        if not cfg.bias:
            s += ", bias=False"
        if cfg.family == "rnn_relu":
            s += ", nonlinearity='relu'"
        if cfg.proj_size:
            s += f", proj_size={cfg.proj_size}"
        for name in cfg.variants:
            s += f", {name}=True"
        if not cfg.log_space:
            s += ", log_space=False"
        if self.init != "torch":
            s += f", init={self.init!r}"
        return s


def _cell_options(cfg: CellConfig) -> list[str]:
    common = ["input_size", "hidden_size", "bias", "device", "dtype", "layer_norm", "init"]
    if cfg.is_min:
        return [o for o in common if o != "layer_norm"] + ["log_space"]
    if cfg.is_lstm:
        return common + ["proj_size", "peephole", "coupled"]
    if cfg.family.startswith("rnn"):
        return common + ["nonlinearity"]
    return common
