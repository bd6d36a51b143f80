"""rnnlab.RNN, rnnlab.LSTM, rnnlab.GRU: drop-in for torch.nn's, plus variants, lengths= and recording;
rnnlab.MinGRU, rnnlab.MinLSTM: the same API for the cells whose gates read only the input (Feng et al. 2024),
trained over all steps at once by a parallel scan.

Same positional arguments, parameter names, outputs and final states as torch.nn.RNN/LSTM/GRU, so
state dicts load both ways for every configuration torch has. What torch.nn cannot give:

- `lengths=` (B,) valid lengths, a simple alternative to packing: padded outputs are zero, the final
  state is each sequence's last valid step, the reverse direction starts at each sequence's own end;
- the cell variants (keyword-only): `peephole`, `coupled`, `layer_norm` (see rnnlab.cells), in every
  layer and direction, in any combination with `proj_size`;
- recording that never changes the numbers: `record_gates=True` / `return_states=True` make forward
  return a third value, a `rnnlab.Trace` with every gate and state, (B, T, H) per layer and direction;
- `backend=`: "reference" (input projection for all steps in one matmul, then a loop over the cell's
  step), "native" (torch's fused kernels: plain cells only, no recording), "fused" (hand-derived
  backward through time, compiled time loops on the CPU; serves everything), "auto" (default: the fastest
  that can serve, by the measured rule in rnnlab/kernels/auto.py). `module.backend_for()` says which runs
  and why;
- `init="orthogonal"`: orthogonal recurrent weights, Xavier input weights, forget-gate bias 1;
- `segment_steps=k`: train long sequences in bounded memory — only the state every k steps is kept and
  each segment is recomputed in backward (about one extra forward pass of time);
- recurrent regularization (keyword-only, training mode; any combination, every variant): `input_dropout=p`
  (one mask per sequence on each layer's input, held over time), `recurrent_dropout=p` (one mask per
  sequence on h_{t-1} where it enters W_hh), `zoneout=p` or `(p_c, p_h)` (each unit keeps its previous
  state with probability p at each step; evaluation mixes in the expectation), `weight_drop=p` (DropConnect
  on W_hh once per forward; the parameters are untouched). See rnnlab/layers/regularize.py.

Example:
    >>> lstm = rnnlab.LSTM(8, 16, num_layers=2, batch_first=True, peephole=True)
    >>> out, (h, c) = lstm(torch.randn(4, 10, 8), lengths=[10, 7, 3, 1])      # out (4, 10, 16)
    >>> out, (h, c), trace = lstm(torch.randn(4, 10, 8), record_gates=True)
    >>> trace[1, 0].gates["f"].shape                                             # (4, 10, 16)
"""

from __future__ import annotations

from .base import _LAYER_OPTIONS, RecurrentBase
from .config import RecurrentConfig

__all__ = ["CELLS", "GRU", "LSTM", "MinGRU", "MinLSTM", "RNN"]

_NOT_LSTM = [o for o in _LAYER_OPTIONS if o not in ("peephole", "coupled")]


class LSTM(RecurrentBase):
    """Multi-layer LSTM, drop-in for torch.nn.LSTM. Gates i, f, g, o; states h, c.

    LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
         bidirectional=False, proj_size=0, device=None, dtype=None, *,
         peephole=False, coupled=False, layer_norm=False, init="torch", backend="auto")

    forward(input, (h0, c0)=None, *, lengths=None, return_states=False, record_gates=False)
      input (T, B, I) | (B, T, I) with batch_first | unbatched (T, I) | PackedSequence
      -> output (T, B, D*R), (h_n (L*D, B, R), c_n (L*D, B, H))  [, trace]      R = proj_size or H
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        peephole: bool = False,
        coupled: bool = False,
        layer_norm: bool = False,
        init: str = "torch",
        backend: str = "auto",
        segment_steps: int | None = None,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        weight_drop: float = 0.0,
        **unknown,
    ) -> None:
        config = RecurrentConfig(
            cell="lstm", hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout,
            proj_size=proj_size, peephole=peephole, coupled=coupled, layer_norm=layer_norm, bias=bias, init=init,
            backend=backend, segment_steps=segment_steps,
            **_regularizers(input_dropout, recurrent_dropout, zoneout, weight_drop),
        )
        super().__init__(config, input_size, batch_first, device, dtype, unknown=unknown)


class GRU(RecurrentBase):
    """Multi-layer GRU, drop-in for torch.nn.GRU. Gates r, z, n; state h.

    GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
        bidirectional=False, device=None, dtype=None, *, layer_norm=False, init="torch", backend="auto")

    forward(input, h0=None, *, lengths=None, return_states=False, record_gates=False)
      -> output (T, B, D*H), h_n (L*D, B, H)  [, trace]
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        layer_norm: bool = False,
        proj_size: int = 0,
        init: str = "torch",
        backend: str = "auto",
        segment_steps: int | None = None,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        weight_drop: float = 0.0,
        **unknown,
    ) -> None:
        config = RecurrentConfig(
            cell="gru", hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout,
            proj_size=proj_size, layer_norm=layer_norm, bias=bias, init=init, backend=backend,
            segment_steps=segment_steps,
            **_regularizers(input_dropout, recurrent_dropout, zoneout, weight_drop),
        )
        super().__init__(config, input_size, batch_first, device, dtype, unknown=unknown, known_options=_NOT_LSTM)


class RNN(RecurrentBase):
    """Multi-layer Elman RNN, drop-in for torch.nn.RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
        dropout=0.0, bidirectional=False, device=None, dtype=None, *, layer_norm=False, init="torch",
        backend="auto")

    forward(input, h0=None, *, lengths=None, return_states=False, record_gates=False)
      -> output (T, B, D*H), h_n (L*D, B, H)  [, trace with states only: an RNN has no gates]
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        layer_norm: bool = False,
        proj_size: int = 0,
        init: str = "torch",
        backend: str = "auto",
        segment_steps: int | None = None,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        weight_drop: float = 0.0,
        **unknown,
    ) -> None:
        config = RecurrentConfig(
            cell="rnn", nonlinearity=nonlinearity, hidden_size=hidden_size, num_layers=num_layers,
            bidirectional=bidirectional, dropout=dropout, proj_size=proj_size, layer_norm=layer_norm, bias=bias,
            init=init, backend=backend, segment_steps=segment_steps,
            **_regularizers(input_dropout, recurrent_dropout, zoneout, weight_drop),
        )
        super().__init__(config, input_size, batch_first, device, dtype, unknown=unknown,
                         known_options=[*_NOT_LSTM, "nonlinearity"])
        self.nonlinearity = nonlinearity


def _regularizers(input_dropout, recurrent_dropout, zoneout, weight_drop) -> dict:
    return dict(input_dropout=input_dropout, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                weight_drop=weight_drop)


_MIN_OPTIONS = [*(o for o in _LAYER_OPTIONS if o not in ("peephole", "coupled", "layer_norm", "proj_size")), "log_space"]


class _MinRNN(RecurrentBase):
    """What MinGRU and MinLSTM share: the arguments of torch.nn.GRU, no recurrent weights, log_space."""

    cell = ""  # "mingru" | "minlstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        log_space: bool = True,
        init: str = "torch",
        backend: str = "auto",
        segment_steps: int | None = None,
        **unknown,
    ) -> None:
        config = RecurrentConfig(
            cell=self.cell, hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional,
            dropout=dropout, log_space=log_space, bias=bias, init=init, backend=backend, segment_steps=segment_steps,
        )
        super().__init__(config, input_size, batch_first, device, dtype, unknown=unknown, known_options=_MIN_OPTIONS)
        self.log_space = log_space

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.log_space else ", log_space=False")


class MinGRU(_MinRNN):
    """Multi-layer minGRU (Feng et al. 2024): z_t = sigmoid(W_z x_t + b_z), h~_t = g(W_h x_t + b_h),
    h_t = (1 - z_t) h_{t-1} + z_t h~_t. Gates z, h~; state h. The gates never read h_{t-1}, so training runs
    every step at once (backend "scan", a log-space parallel scan); see rnnlab/cells/minrnn.py.

    MinGRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
           bidirectional=False, device=None, dtype=None, *, log_space=True, init="torch", backend="auto",
           segment_steps=None)
      log_space  True: g(x) = x + 0.5 (x >= 0) or sigmoid(x) (x < 0), the paper's positive candidate;
                 False: g(x) = x
    Parameters weight_ih_l{k}[_reverse] (2H, I_k) rows z | h~, bias_ih_l{k}[_reverse] (2H,); no weight_hh.

    forward(input, h0=None, *, lengths=None, return_states=False, record_gates=False)
      -> output (T, B, D*H), h_n (L*D, B, H)  [, trace]

    Example:
        >>> gru = rnnlab.MinGRU(8, 16, num_layers=2, batch_first=True)
        >>> out, h = gru(torch.randn(4, 1000, 8), lengths=[1000, 700, 3, 1])   # out (4, 1000, 16)
        >>> out, h = gru(torch.randn(4, 1, 8), h)                                # one more step, from h
    """

    cell = "mingru"


class MinLSTM(_MinRNN):
    """Multi-layer minLSTM (Feng et al. 2024): f_t, i_t = sigmoid(W_f x_t + b_f), sigmoid(W_i x_t + b_i),
    normalised f' = f / (f + i), i' = i / (f + i); h~_t = g(W_h x_t + b_h); h_t = f'_t h_{t-1} + i'_t h~_t.
    Gates f, i (normalised), h~; state h (no cell state). Arguments, parameters (3H rows f | i | h~) and
    forward as MinGRU; see rnnlab/cells/minrnn.py.

    Example:
        >>> lstm = rnnlab.MinLSTM(8, 16, bidirectional=True)
        >>> out, h, trace = lstm(torch.randn(100, 4, 8), record_gates=True)
        >>> trace[0, 1].gates["f"].shape                                          # (4, 100, 16)
    """

    cell = "minlstm"


# RecurrentConfig.cell -> the layer class
CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN, "mingru": MinGRU, "minlstm": MinLSTM}
