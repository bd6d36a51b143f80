"""RecurrentConfig: one description of a recurrent stack, from a command-line flag to the layer it builds.

Every option of rnnlab.RNN / LSTM / GRU except the input size (which the model's input fixes) is a field
here, declared once with its default, its check and its help text. The model heads nest one
(`CharLMConfig.rnn`, `SequenceClassifierConfig.rnn`, ...), `build(input_size)` makes the layer, and the
command line generates its model options from these fields: a new layer option is one new field.

    >>> cfg = RecurrentConfig(cell="gru", hidden_size=64, num_layers=2, bidirectional=True)
    >>> cfg.check()                      # ValueError/TypeError naming the field (or the flag, for the CLI)
    >>> gru = cfg.build(input_size=32)   # rnnlab.GRU(32, 64, 2, bidirectional=True, dropout=0.0, ...)
    >>> cfg.output_size                  # D * R = 128: the features of each output step
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._fields import opt
from ..cells.config import CellConfig, check_config
from ..cells.initialize import INIT_SCHEMES
from ..kernels import backend_names

__all__ = ["CELL_NAMES", "RecurrentConfig"]

CELL_NAMES = ("lstm", "gru", "rnn", "mingru", "minlstm")  # the layer classes, by name: layers/modules.py CELLS

# the names these options had in run folders written before RecurrentConfig (flat in each model config)
_LEGACY_NAMES = {"cell": "cell", "hidden": "hidden_size", "layers": "num_layers", "dropout": "dropout",
                 "bidirectional": "bidirectional", "peephole": "peephole", "coupled": "coupled",
                 "layer_norm": "layer_norm", "proj_size": "proj_size", "init": "init", "backend": "backend"}


def _probability(p) -> bool:
    """A dropout-like probability: a real number in [0, 1) (1 would drop everything; NaN is not one)."""
    return isinstance(p, numbers.Real) and not isinstance(p, bool) and 0 <= p < 1


def _parse_zoneout(text: str) -> float | tuple[float, float]:
    """--zoneout 0.1 -> 0.1; --zoneout 0.15,0.05 -> (0.15, 0.05) (the LSTM's c and h)."""
    parts = [float(v) for v in text.split(",")]
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return (parts[0], parts[1])
    raise ValueError(text)

_parse_zoneout.__name__ = "zoneout"  # argparse names it in "invalid zoneout value: 'x'"


@dataclass(slots=True)
class RecurrentConfig:
    """A stack of recurrent layers: cell family, sizes, directions, variants, initialisation, backend."""

    cell: str = opt("lstm", "recurrent cell", choices=CELL_NAMES)
    hidden_size: int = opt(128, "units per layer and direction", flags=("--hidden", "--hidden-size"), metavar="H")
    num_layers: int = opt(1, "stacked layers", flags=("--layers", "--num-layers"), metavar="L")
    bidirectional: bool = opt(False, "read each sequence in both directions", negative="--unidirectional")
    dropout: float = opt(0.0, "dropout probability (between layers; the models also apply it to their input "
                              "and before their output layer)")
    proj_size: int = opt(0, "LSTM projection size (0: none)", metavar="P")
    peephole: bool = opt(False, "LSTM peephole connections (Gers & Schmidhuber 2000)")
    coupled: bool = opt(False, "LSTM coupled input-forget gate (f = 1 - i)")
    layer_norm: bool = opt(False, "layer-normalised cell (Ba et al. 2016)")
    nonlinearity: str = opt("tanh", "RNN cell only: tanh or relu", choices=("tanh", "relu"))
    log_space: bool = opt(True, "minGRU/minLSTM: the paper's log-space form, candidate g(x) = x + 0.5 (x >= 0) or "
                                "sigmoid(x), positive; off: the plain candidate W_h x + b_h")
    bias: bool = opt(True, "bias vectors in the cell")
    init: str = opt("torch", "weight initialisation: torch (uniform, as torch.nn) or orthogonal (orthogonal "
                             "W_hh, Xavier W_ih, LSTM forget-gate bias 1)", choices=INIT_SCHEMES)
    backend: str = opt("auto", "recurrent backend (auto: the fastest measured that serves the configuration)",
                       choices=backend_names)
    segment_steps: int | None = opt(None, "keep the state every k steps only and recompute each segment in "
                                          "backward (bounded memory for long sequences)", metavar="K")
    # recurrent regularization (training mode only; layers/regularize.py draws the masks)
    input_dropout: float = opt(0.0, "variational dropout on each layer's input: one mask per sequence, held over "
                                    "time (Gal & Ghahramani 2016)", metavar="P")
    recurrent_dropout: float = opt(0.0, "dropout on h_{t-1} where it enters W_hh, one mask per sequence held over "
                                        "time (Gal & Ghahramani 2016)", metavar="P")
    zoneout: float | tuple[float, float] = opt(
        0.0, "each unit of the state keeps its previous value with probability P at each step, evaluation uses the "
             "expectation (Krueger et al. 2017); LSTM: PC,PH for c and h apart", metavar="P[,PH]",
        parse=_parse_zoneout)
    weight_drop: float = opt(0.0, "DropConnect on W_hh, one mask per forward call (Wan et al. 2013; AWD-LSTM, "
                                  "Merity et al. 2018)", metavar="P")

    # ----- what follows from the fields ----------------------------------------------------------------
    @property
    def directions(self) -> int:
        """D: 2 when bidirectional."""
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:
        """R: features of h_t per direction (proj_size when projecting, else hidden_size)."""
        return self.proj_size or self.hidden_size

    @property
    def output_size(self) -> int:
        """D * R: features of each output step of the stack."""
        return self.directions * self.state_size

    @property
    def family(self) -> str:
        """The cell family of rnnlab.cells: lstm | gru | rnn_tanh | rnn_relu | mingru | minlstm."""
        return f"rnn_{self.nonlinearity}" if self.cell == "rnn" else self.cell

    @property
    def zoneout_ch(self) -> tuple[float, float]:
        """(p for c, p for h): zoneout=p means (p, p); the GRU and RNN have no c (its p is unused)."""
        z = self.zoneout
        return (float(z[0]), float(z[1])) if isinstance(z, (tuple, list)) else (float(z), float(z))

    @property
    def regularized(self) -> bool:
        """Whether training mode draws any mask (input dropout, weight drop, recurrent dropout, zoneout)."""
        return bool(self.input_dropout or self.weight_drop or self.recurrent_dropout or any(self.zoneout_ch))

    def in_loop(self, training: bool) -> tuple[str, ...]:
        """The regularizers that act inside the time loop in this mode (what only fused/reference serve):
        recurrent dropout while training; zoneout in both modes (evaluation mixes in the expectation)."""
        names = []
        if training and self.recurrent_dropout > 0:
            names.append("recurrent_dropout")
        zc, zh = self.zoneout_ch
        if zh > 0 or (self.cell == "lstm" and zc > 0):
            names.append("zoneout")
        return tuple(names)

    def cell_config(self, input_size: int) -> CellConfig:
        """The CellConfig of the first layer."""
        return CellConfig(self.family, input_size, self.hidden_size, self.bias, self.proj_size, self.peephole,
                          self.coupled, self.layer_norm, self.log_space)

    # ----- the one check -----------------------------------------------------------------------------
    def check(self, owner: str = "RecurrentConfig", name: Callable[[str], str] = str, input_size: int = 1, *,
              one_way: str | None = None) -> None:
        """Raise ValueError/TypeError `owner: <option> ...` for the first invalid field. name(field) is how the
        option is named in the message: the keyword by default, the flag on the command line. one_way: the
        reason a model cannot read both ways (a language model, a decoder), for the message."""
        if self.cell not in CELL_NAMES:
            raise ValueError(f"{owner}: unknown {name('cell')} {self.cell!r}; expected one of {', '.join(CELL_NAMES)}")
        n = self.num_layers
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{owner}: {name('num_layers')} must be an int >= 1, got {n!r}")
        p = self.dropout
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"{owner}: {name('dropout')} must be a probability in [0, 1] (applied between layers), "
                             f"got {p!r}")
        if not isinstance(self.bidirectional, bool):
            raise TypeError(f"{owner}: {name('bidirectional')} must be True or False, got {self.bidirectional!r}")
        if self.nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"{owner}: {name('nonlinearity')} must be 'tanh' or 'relu', got {self.nonlinearity!r}")
        if self.nonlinearity != "tanh" and self.cell != "rnn":
            raise ValueError(f"{owner}: {name('nonlinearity')} is only defined for the RNN cell (cell 'rnn'); "
                             f"the {self.cell.upper()}'s gates fix their own")
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"{owner}: unknown {name('init')} {self.init!r}; expected one of {INIT_SCHEMES}")
        if self.backend not in backend_names():
            raise ValueError(f"{owner}: unknown {name('backend')} {self.backend!r}; expected one of {backend_names()}")
        k = self.segment_steps
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise ValueError(f"{owner}: {name('segment_steps')} must be None or an int >= 1, got {k!r}")
        check_config(self.cell_config(input_size), owner, name)
        self._check_regularizers(owner, name)
        if self.cell in ("mingru", "minlstm"):  # not wired into MinGRU/MinLSTM (build would drop them silently)
            on = [f for f in ("input_dropout", "recurrent_dropout", "weight_drop") if getattr(self, f)]
            on += ["zoneout"] if any(self.zoneout_ch) else []
            if on:
                raise ValueError(f"{owner}: {', '.join(map(name, on))} is not available for the {self.cell} cell yet; "
                                 f"remove it (or use dropout between layers)")
        if one_way and self.bidirectional:
            raise ValueError(f"{owner}: {one_way}; {name('bidirectional')} is not possible, drop it")

    def _check_regularizers(self, owner: str, name: Callable[[str], str]) -> None:
        for field in ("input_dropout", "recurrent_dropout", "weight_drop"):
            p = getattr(self, field)
            if not _probability(p):
                raise ValueError(f"{owner}: {name(field)} must be a probability in [0, 1), got {p!r}")
        z = self.zoneout
        pair = isinstance(z, (tuple, list))
        if pair and (len(z) != 2 or not all(map(_probability, z))) or not pair and not _probability(z):
            raise ValueError(f"{owner}: {name('zoneout')} must be a probability in [0, 1) or, for the LSTM, a pair "
                             f"(p_c, p_h) of them, got {z!r}")
        if pair and self.cell != "lstm" and z[0] != z[1]:
            raise ValueError(f"{owner}: {name('zoneout')} as a pair (p_c, p_h) is for the LSTM's two states; the "
                             f"{self.cell.upper()} has h only: give one probability")

    # ----- the layer ---------------------------------------------------------------------------------
    def build(self, input_size: int, *, batch_first: bool = False, device=None, dtype=None):
        """The rnnlab layer (LSTM, GRU or RNN) these options describe, reading `input_size` features per step.

        Dropout between layers is passed only where there are layers in between (the layer warns otherwise;
        the models apply the same probability to their input and output themselves)."""
        from .modules import CELLS, GRU, LSTM, RNN  # local: the layers themselves are checked by this class

        if self.cell in ("mingru", "minlstm"):
            return CELLS[self.cell](input_size, self.hidden_size, self.num_layers, self.bias, batch_first,
                                    self.dropout if self.num_layers > 1 else 0.0, self.bidirectional, device, dtype,
                                    log_space=self.log_space, init=self.init, backend=self.backend,
                                    segment_steps=self.segment_steps)

        kw = dict(num_layers=self.num_layers, bias=self.bias, batch_first=batch_first,
                  dropout=self.dropout if self.num_layers > 1 else 0.0, bidirectional=self.bidirectional,
                  device=device, dtype=dtype, layer_norm=self.layer_norm, init=self.init, backend=self.backend,
                  segment_steps=self.segment_steps, input_dropout=self.input_dropout,
                  recurrent_dropout=self.recurrent_dropout, zoneout=self.zoneout, weight_drop=self.weight_drop)
        if self.cell == "lstm":
            return LSTM(input_size, self.hidden_size, proj_size=self.proj_size, peephole=self.peephole,
                        coupled=self.coupled, **kw)
        if self.cell == "rnn":
            return RNN(input_size, self.hidden_size, nonlinearity=self.nonlinearity, **kw)
        return GRU(input_size, self.hidden_size, **kw)

    # ----- run folders written before this class -----------------------------------------------------
    @classmethod
    def take_legacy(cls, flat: dict[str, Any], default: RecurrentConfig) -> RecurrentConfig:
        """Pop the recurrent options a pre-RecurrentConfig model config held flat (hidden, layers, cell, ...)
        out of `flat`, and return them over `default` (the model's own default stack)."""
        found = {new: flat.pop(old) for old, new in _LEGACY_NAMES.items() if old in flat}
        return dataclasses.replace(default, **found)

    def describe(self) -> str:
        """`2 x biGRU 128 +layer_norm proj 64`: for the one-line model summaries."""
        variants = "".join(f" +{v}" for v in ("peephole", "coupled", "layer_norm") if getattr(self, v))
        zc, zh = self.zoneout_ch
        regs = {"input_dropout": self.input_dropout, "recurrent_dropout": self.recurrent_dropout,
                "weight_drop": self.weight_drop, "zoneout": self.zoneout if zc or zh else 0}
        variants += "".join(f" {k} {v}" for k, v in regs.items() if v)
        cell = self.cell.upper() + (f"({self.nonlinearity})" if self.cell == "rnn" and self.nonlinearity != "tanh" else "")
        cell = {"MINGRU": "minGRU", "MINLSTM": "minLSTM"}.get(cell, cell) + ("" if self.log_space else "(plain)")
        return (f"{self.num_layers} x {'bi' if self.bidirectional else ''}{cell} {self.hidden_size}{variants}"
                + (f" proj {self.proj_size}" if self.proj_size else ""))

