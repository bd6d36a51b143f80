"""What defines a cell: its family, sizes and variant options, and the parameters that follow from them.

One `CellConfig` is the single description shared by the one-step cell modules, the layers (which hold
one set of these parameters per layer and direction) and the backends (which read the options to decide
whether they can serve). Parameter names are torch's (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`,
`weight_hr`), followed by the variant parameters; they are also the *roles* by which backends receive
the tensors.

Packed layouts (rows of `weight_ih`/`weight_hh`, G blocks of H rows each):
    LSTM  i | f | g | o          (G = 4)       coupled LSTM  i | g | o   (G = 3; f = 1 - i has no rows)
    GRU   r | z | n              (G = 3)
    RNN   h                      (G = 1)
    minGRU    z | h~             (G = 2)       weight_ih and bias_ih only: the gates never read h_{t-1}
    minLSTM   f | i | h~         (G = 3)       (minrnn.py)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CellConfig", "FAMILIES", "GATE_NAMES", "LN_EPS", "MIN_FAMILIES", "check_config"]

FAMILIES = ("rnn_tanh", "rnn_relu", "lstm", "gru", "mingru", "minlstm")

# The families whose gates read only x_t (Feng et al. 2024): a linear recurrence in h, solved by a scan.
MIN_FAMILIES = ("mingru", "minlstm")

# Recorded gate names per family, in recording order.
GATE_NAMES = {"rnn_tanh": (), "rnn_relu": (), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"),
              "mingru": ("z", "h~"), "minlstm": ("f", "i", "h~")}

# Layer normalisation epsilon (torch.nn.LayerNorm's default).
LN_EPS = 1e-5


@dataclass(frozen=True)
class CellConfig:
    """Family, sizes and variants of one recurrent cell.

    family      "rnn_tanh" | "rnn_relu" | "lstm" | "gru" | "mingru" | "minlstm"
    input_size  I, features of x_t
    hidden_size H, units of the cell (and of c_t for the LSTM)
    bias        add bias_ih / bias_hh (and the layer-norm shift of c_t)
    proj_size   P > 0: LSTM only, h_t = W_hr (o_t * tanh(c_t)) has P features (torch's definition)
    peephole    LSTM only: gates look at the cell state through diagonal weights w_ci, w_cf, w_co
    coupled     LSTM only: f_t = 1 - i_t (no forget-gate rows)
    layer_norm  normalise W_ih x_t and W_hh h_{t-1} over the G*H gate pre-activations (gain only;
                bias_ih/bias_hh are the shift), and for the LSTM normalise c_t before tanh (gain + shift)
    log_space   minGRU/minLSTM only: the paper's positive candidate g (True) or the plain h~ = W_h x + b_h
                (False); see minrnn.py
    """

    family: str
    input_size: int
    hidden_size: int
    bias: bool = True
    proj_size: int = 0
    peephole: bool = False
    coupled: bool = False
    layer_norm: bool = False
    log_space: bool = True

    @property
    def is_lstm(self) -> bool:
        return self.family == "lstm"

    @property
    def is_min(self) -> bool:
        """minGRU / minLSTM: gates from x_t only, no weight_hh."""
        return self.family in MIN_FAMILIES

    @property
    def num_blocks(self) -> int:
        """G: number of H-row blocks in weight_ih / weight_hh."""
        if self.family == "lstm":
            return 3 if self.coupled else 4
        if self.family in ("gru", "minlstm"):
            return 3
        if self.family == "mingru":
            return 2
        return 1

    @property
    def gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES[self.family]

    @property
    def state_size(self) -> int:
        """R: features of h_t (P with a projection, else H)."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    @property
    def variants(self) -> tuple[str, ...]:
        """Active options that torch.nn's kernels do not have."""
        names = []
        if self.peephole:
            names.append("peephole")
        if self.coupled:
            names.append("coupled")
        if self.layer_norm:
            names.append("layer_norm")
        return tuple(names)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape, in order: torch's parameters first, then the variants'."""
        G, I, H, R = self.num_blocks, self.input_size, self.hidden_size, self.state_size
        if self.is_min:  # no recurrent weights
            return {"weight_ih": (G * H, I), **({"bias_ih": (G * H,)} if self.bias else {})}
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (G * H, I), "weight_hh": (G * H, R)}
        if self.bias:
            shapes["bias_ih"] = (G * H,)
            shapes["bias_hh"] = (G * H,)
        if self.proj_size > 0:
            shapes["weight_hr"] = (self.proj_size, H)
        if self.peephole:
            shapes["weight_ci"] = (H,)
            if not self.coupled:
                shapes["weight_cf"] = (H,)
            shapes["weight_co"] = (H,)
        if self.layer_norm:
            shapes["ln_weight_ih"] = (G * H,)
            shapes["ln_weight_hh"] = (G * H,)
            if self.is_lstm:
                shapes["ln_weight_c"] = (H,)
                if self.bias:
                    shapes["ln_bias_c"] = (H,)
        return shapes


def check_config(cfg: CellConfig, owner: str, name: Callable[[str], str] = str) -> None:
    """Raise a ValueError/TypeError naming `owner` when `cfg` is not a valid combination.

    name(field) is how the message names an option: the keyword itself by default; the command line
    passes its flags (`--proj-size`), so each user reads the name they typed."""
    if cfg.family not in FAMILIES:
        raise ValueError(f"{owner}: unknown cell family {cfg.family!r}; expected one of {FAMILIES}")
    for field in ("input_size", "hidden_size", "proj_size"):
        value = getattr(cfg, field)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{owner}: {name(field)} must be an int, got {type(value).__name__} ({value!r})")
    if cfg.input_size <= 0:
        raise ValueError(f"{owner}: {name('input_size')} must be > 0, got {cfg.input_size}")
    if cfg.hidden_size <= 0:
        raise ValueError(f"{owner}: {name('hidden_size')} must be > 0, got {cfg.hidden_size}")
    for field in ("bias", "peephole", "coupled", "layer_norm", "log_space"):
        value = getattr(cfg, field)
        if not isinstance(value, bool):
            raise TypeError(f"{owner}: {name(field)} must be True or False, got {value!r}")
    if not cfg.is_lstm:
        lstm_only = [n for n in ("peephole", "coupled") if getattr(cfg, n)]
        if cfg.proj_size != 0:
            lstm_only.insert(0, "proj_size")
        if lstm_only:
            raise ValueError(
                f"{owner}: {', '.join(map(name, lstm_only))} is only defined for the LSTM; "
                f"remove it or use an LSTM (rnnlab.LSTM / rnnlab.LSTMCell, cell 'lstm')"
            )
    if cfg.is_min and cfg.layer_norm:
        raise ValueError(f"{owner}: {name('layer_norm')} is not defined for the {cfg.family} cell; remove it")
    if not cfg.is_min and not cfg.log_space:
        raise ValueError(
            f"{owner}: turning {name('log_space')} off (the plain candidate) is only defined for minGRU/minLSTM; "
            f"keep it on or use cell 'mingru' / 'minlstm'"
        )
    if cfg.proj_size < 0:
        raise ValueError(f"{owner}: {name('proj_size')} must be >= 0 (0 disables the projection), got {cfg.proj_size}")
    if cfg.proj_size >= cfg.hidden_size:
        raise ValueError(
            f"{owner}: {name('proj_size')} must be smaller than {name('hidden_size')}={cfg.hidden_size}, "
            f"got {cfg.proj_size}"
        )
