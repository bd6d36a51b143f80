"""The recurrent layer: parameters under torch's names, directions and stacking around one backend call.

    layout = BatchLayout.of(lengths, T);  x_0 = x[:layout.T_run]       (steps past the longest never run)
    for layer l in 0..L-1:
        for direction d in (forward[, reverse]):
            x_d = x_l, or x_l reversed within each sequence's length (padding stays at the end)
            y_d, state_d, trace_d = backend.run(x_d, params[l, d], h0[l, d], layout, options)
        x_{l+1} = dropout(zero_padding(concat(y_forward, reversed(y_reverse))))   (dropout between layers only)
    output = x_L padded back to T steps

Time-major (T, B, I) inside; `batch_first`, unbatched 2-D input and PackedSequence are converted at the
boundary. The layer computes the batch layout once per forward and is the one place padded steps are
zeroed (outputs and recordings; backends may leave any finite value there). State layout as torch.nn:
h (L*D, B, R), c (L*D, B, H), row l*D + d.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .._validate import InputShapeError, reject_unknown_options, shape_str
from ..cells.config import CellConfig
from ..cells.initialize import init_parameters_
from ..kernels import registry
from ..kernels.contract import BackendChoice, BatchLayout, RunOptions
from ..trace import DirectionTrace, Trace
from .config import RecurrentConfig
from .regularize import draw
from .sequence import check_lengths, reverse_index, reverse_time

__all__ = ["RecurrentBase"]

_LAYER_OPTIONS = [
    "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
    "proj_size", "device", "dtype", "peephole", "coupled", "layer_norm", "init", "backend", "segment_steps",
    "input_dropout", "recurrent_dropout", "zoneout", "weight_drop",
]


class RecurrentBase(nn.Module):
    """Shared by rnnlab.RNN, LSTM and GRU; see their docstrings for the public arguments.

    config: the layer's options (RecurrentConfig: declared and checked there, once for layers and models);
    the subclasses build it from torch's positional arguments."""

    def __init__(self, config: RecurrentConfig, input_size: int, batch_first: bool = False, device=None, dtype=None,
                 *, unknown: dict | None = None, known_options: list[str] | None = None) -> None:
        super().__init__()
        owner = type(self).__name__
        reject_unknown_options(owner, unknown or {}, known_options or _LAYER_OPTIONS)
        if not isinstance(batch_first, bool):
            raise TypeError(f"{owner}: batch_first must be True or False, got {batch_first!r}")
        config.check(owner, input_size=input_size)
        self.config = c = config
        family, hidden_size, num_layers, bias, dropout = c.family, c.hidden_size, c.num_layers, c.bias, c.dropout
        bidirectional, proj_size, backend = c.bidirectional, c.proj_size, c.backend
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{owner}: dropout={dropout} is applied between layers only, so it does nothing with "
                f"num_layers=1; use num_layers > 1 or apply dropout to the output yourself",
                stacklevel=3,
            )

        self.mode = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU", "mingru": "MINGRU",
                     "minlstm": "MINLSTM"}[family]
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.peephole = c.peephole
        self.coupled = c.coupled
        self.layer_norm = c.layer_norm
        self.init = c.init
        self.segment_steps = c.segment_steps
        self.input_dropout = float(c.input_dropout)
        self.recurrent_dropout = float(c.recurrent_dropout)
        self.zoneout = tuple(map(float, c.zoneout)) if isinstance(c.zoneout, (tuple, list)) else float(c.zoneout)
        self.weight_drop = float(c.weight_drop)

        first = c.cell_config(input_size)
        D = 2 if bidirectional else 1
        upper = c.cell_config(D * first.state_size)
        self._cells = [first] + [upper] * (num_layers - 1)  # per layer: input size differs

        # Parameters under torch's names: <role>_l<layer>[_reverse]; roles are the cell's parameter names.
        self._roles: list[dict[str, str]] = []  # per (layer, direction), index l*D + d: role -> attribute
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer, cfg in enumerate(self._cells):
            for direction in range(D):
                suffix = "_reverse" if direction == 1 else ""
                roles = {}
                for role, shape in cfg.param_shapes().items():
                    name = f"{role}_l{layer}{suffix}"
                    setattr(self, name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
                    roles[role] = name
                self._roles.append(roles)
                self._flat_weights_names.extend(roles.values())
                self._all_weights.append(list(roles.values()))
        self.reset_parameters()

        self.backend = backend  # its name was checked with the other options: forward trusts it
        if backend != "auto":  # fail at construction, not at the first forward (of a training step)
            registry.choose(owner, backend, RunOptions(first, in_loop=c.in_loop(True)), torch.device(device or "cpu"))

    # ----- what torch.nn.RNNBase users reach for -------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def cell_config(self) -> CellConfig:
        """The CellConfig of layer 0 (higher layers differ only in input_size)."""
        return self._cells[0]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list[nn.Parameter]:
        return [getattr(self, n) for n in self._flat_weights_names]

    def flatten_parameters(self) -> None:
        """No-op, kept for code written for torch.nn (rnnlab keeps no flattened copy of the weights)."""

    def reset_parameters(self) -> None:
        for k, roles in enumerate(self._roles):
            cfg = self._cells[k // self.num_directions]
            init_parameters_({role: getattr(self, name) for role, name in roles.items()}, cfg, self.init)

    def backend_for(
        self, device=None, *, record_gates: bool = False, return_states: bool = False, grad: bool = True,
        steps: int = 0,
    ) -> BackendChoice:
        """Which backend a forward on `device` (default: the parameters') would use, and why.
        grad=False: inference under torch.no_grad(); steps: the sequence length (0: a long one)."""
        device = torch.device(device) if device is not None else self.weight_ih_l0.device
        options = RunOptions(self._cells[0], record_gates, return_states, grad, self.config.in_loop(self.training),
                             steps=steps)
        return registry.choose(type(self).__name__, self.backend, options, device)[1]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        for name in self._cells[0].variants:
            s += f", {name}=True"
        if self.init != "torch":
            s += f", init={self.init!r}"
        if self.backend != "auto":
            s += f", backend={self.backend!r}"
        if self.segment_steps:
            s += f", segment_steps={self.segment_steps}"
        for name in ("input_dropout", "recurrent_dropout", "zoneout", "weight_drop"):
            if getattr(self, name):
                s += f", {name}={getattr(self, name)}"
        return s

    # ----- forward -----------------------------------------------------------------------------------
    def forward(self, input, hx=None, *, lengths=None, return_states: bool = False, record_gates: bool = False):
        """Run the layer. Returns (output, h_n) — (output, (h_n, c_n)) for the LSTM — as torch.nn does,
        plus a Trace as third element when return_states or record_gates is set."""
        owner = type(self).__name__
        x, lengths, batched, packed = self._to_time_major(owner, input, lengths)
        T, B = x.shape[0], x.shape[1]
        state0 = self._initial_states(owner, hx, x, B, batched)

        grad = torch.is_grad_enabled() and (x.requires_grad or self.weight_ih_l0.requires_grad)
        layout = BatchLayout.of(lengths, T)
        in_loop = self.config.in_loop(self.training)
        options = RunOptions(self._cells[0], bool(record_gates), bool(return_states), grad, in_loop,
                             padded=layout.padded, steps=layout.T_run)
        backend, _ = registry.choose(owner, self.backend, options, x.device)
        if B == 0:  # a batch of no sequences (torch.nn returns empty outputs): the reference loop has no row to miss
            backend = registry.get("reference")
        D = self.num_directions
        rev_index = reverse_index(lengths, layout.T_run, x.device) if D == 2 else None

        layer_input = x if layout.T_run == T else x[: layout.T_run]  # (T_run, B, I); a slice costs a copy in backward
        # whatever the padding holds (NaN, inf) must reach no gradient: the input projection's weight
        # gradient sums over every row, padded ones included (0 * NaN is NaN)
        layer_input = layout.zero_padding(layer_input)
        regularized = self.training and self.config.regularized or bool(in_loop)
        finals: list = []
        records: dict[tuple[int, int], DirectionTrace] = {}
        for layer in range(self.num_layers):
            options = RunOptions(self._cells[layer], options.record_gates, options.record_states, grad, in_loop,
                                 padded=layout.padded, steps=layout.T_run)
            outputs = []
            for d in range(D):
                k = layer * D + d
                params = {role: getattr(self, name) for role, name in self._roles[k].items()}
                xd = layer_input if d == 0 else reverse_time(layer_input, rev_index)
                masks = None
                if regularized:  # the documented order of draws: layers/regularize.py
                    masks = draw(self.config, self._cells[layer], self.training, B, T, layout.T_run, xd)
                    if masks.input is not None:
                        xd = xd * masks.input
                    if masks.weight_hh is not None:
                        params["weight_hh"] = params["weight_hh"] * masks.weight_hh
                    options = dataclasses.replace(options, masks=masks.step)
                y, state, rec = self._run_direction(backend, xd, params, state0[k], layout, options)
                if d == 1:
                    y = reverse_time(y, rev_index)
                    rec = rec.map(lambda t: reverse_time(t, rev_index)) if rec is not None else None
                outputs.append(y)
                finals.append(state)
                if rec is not None:
                    if masks is not None:
                        rec.masks = _user_frame_masks(masks.named(), d, rev_index)
                    rec = rec.map(lambda t: layout.full_length(layout.zero_padding(t)))
                    records[layer, d] = rec.map(lambda t: t.transpose(0, 1) if batched else t[:, 0])
            layer_input = layout.zero_padding(outputs[0] if D == 1 else torch.cat(outputs, dim=2))  # (T_run, B, D*R)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                # drawn over all T steps, so the random mask is the one the full-length output would get
                layer_input = F.dropout(layout.full_length(layer_input), self.dropout, True)[: layout.T_run]
        output = layout.full_length(layer_input)  # (T, B, D*R)

        if self.mode == "LSTM":
            h_n = (torch.stack([s[0] for s in finals]), torch.stack([s[1] for s in finals]))
        else:
            h_n = torch.stack(finals)
        if packed is not None:
            output = _repack(output, lengths, packed)
        elif not batched:
            output = output[:, 0]
            h_n = tuple(s[:, 0] for s in h_n) if self.mode == "LSTM" else h_n[:, 0]
        elif self.batch_first:
            output = output.transpose(0, 1)
        if record_gates or return_states:
            return output, h_n, Trace(records, self._cells[0].gate_names, lengths)
        return output, h_n

    def _run_direction(self, backend, x: Tensor, params: dict, h0, layout: BatchLayout, options: RunOptions):
        """One layer-direction; with segment_steps=k (and gradients on), in segments of k steps whose
        insides are recomputed in backward, so only the state at each segment boundary is kept.

        Memory kept for backward: the input and output of the layer plus B*(R+H) per segment boundary,
        instead of every step's gates and states; one segment's worth is rebuilt at a time in backward.
        Time: about one extra forward pass."""
        k, T = self.segment_steps, x.shape[0]
        if not k or not options.grad or T <= k:
            return backend.run(x, params, h0, layout, options)
        masks = options.masks
        ys, recs, state = [], [], h0
        # split, not a slice per segment: each slice's backward would write a zero gradient of all of x
        for start, xs in zip(range(0, T, k), x.split(k)):
            ended, seg = None, BatchLayout.of(None, xs.shape[0])
            if layout.lengths is not None:
                lens = (layout.lengths - start).clamp(0, xs.shape[0])
                # a sequence that ended before this segment runs one throw-away step and keeps its state
                # (its outputs there are padding, zeroed by forward)
                # (captured by torch.compile / torch.export: the lengths' values are unknown, so always the mask)
                ended = lens == 0 if layout.captured else None if bool((lens > 0).all()) else lens == 0
                seg = BatchLayout.of(lens.clamp(min=1), xs.shape[0])
            if seg.T_run != xs.shape[0]:  # x stops at the longest sequence, so every segment reaches its end
                raise RuntimeError(f"{type(self).__name__}: internal error: segment of {xs.shape[0]} steps runs "
                                   f"{seg.T_run}; please report it")
            seg_options = options if masks is None else dataclasses.replace(options, masks=masks.steps(start, start + k))
            y, new, rec = checkpoint(backend.run, xs, params, state, seg, seg_options, use_reentrant=False)
            if ended is not None:
                keep = ended[:, None]
                if isinstance(new, tuple):
                    new = tuple(torch.where(keep, s, n) for s, n in zip(state, new))
                else:
                    new = torch.where(keep, state, new)
            state = new
            ys.append(y)
            recs.append(rec)
        trace = None
        if recs[0] is not None:
            trace = DirectionTrace(
                {n: torch.cat([r.gates[n] for r in recs]) for n in recs[0].gates},
                {n: torch.cat([r.states[n] for r in recs]) for n in recs[0].states},
            )
        return torch.cat(ys), state, trace

    def _to_time_major(self, owner: str, input, lengths):
        """(x (T, B, I), lengths or None, batched, the PackedSequence or None) from what the user passed."""
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(f"{owner}: lengths= cannot be combined with a PackedSequence (it carries its own)")
            x, lens = pad_packed_sequence(input)  # original batch order, (T, B, I)
            self._check_features(owner, x, "a PackedSequence of (*, I={I})")
            return x, lens.to(x.device), True, input
        if not isinstance(input, Tensor):
            raise TypeError(f"{owner}: expected input to be a Tensor or a PackedSequence, got {type(input).__name__}")
        layout = "(B, T, I={I})" if self.batch_first else "(T, B, I={I})"
        if input.dim() not in (2, 3):
            raise ValueError(
                f"{owner}: expected input of shape {layout.format(I=self.input_size)} or unbatched "
                f"(T, I={self.input_size}), got {shape_str(input.shape)}"
            )
        batched = input.dim() == 3
        self._check_features(owner, input, layout if batched else "unbatched (T, I={I})")
        if not batched:
            if lengths is not None:
                raise ValueError(f"{owner}: lengths= needs batched input; unbatched input is one whole sequence")
            return input.unsqueeze(1), None, False, None
        x = input.transpose(0, 1) if self.batch_first else input
        if lengths is not None:
            lengths = check_lengths(owner, lengths, x.shape[1], x.shape[0], x.device)
        return x, lengths, True, None

    def _check_features(self, owner: str, x: Tensor, layout: str) -> None:
        if x.shape[-1] != self.input_size:
            raise InputShapeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {x.shape[-1]}. "
                f"{owner}: expected input of shape {layout.format(I=self.input_size)}, got {shape_str(x.shape)}; "
                f"the last dimension must equal input_size={self.input_size}"
            )
        w = self.weight_ih_l0
        if x.dtype != w.dtype:
            raise InputShapeError(
                f"input must have the type {w.dtype}, got type {x.dtype}. {owner}: input dtype {x.dtype} does not "
                f"match the weights' {w.dtype}; convert the input with .to({w.dtype}) or the module with .to({x.dtype})"
            )
        if x.device != w.device and not w.is_meta:
            raise InputShapeError(
                f"Input and parameter tensors are not at the same device, found input tensor at {x.device} and "
                f"parameter tensor at {w.device}. {owner}: move one with .to()"
            )

    def _initial_states(self, owner: str, hx, x: Tensor, B: int, batched: bool) -> list:
        """Per layer-direction initial states, h (B, R) or (h, c), from the user's hx or zeros."""
        LD, H, R = self.num_layers * self.num_directions, self.hidden_size, self._cells[0].state_size
        is_lstm = self.mode == "LSTM"
        sizes = {"h0": R, "c0": H} if is_lstm else {"h0": H}
        if hx is None:
            zeros = [x.new_zeros(LD, B, n) for n in sizes.values()]
        else:
            given = tuple(hx) if is_lstm and isinstance(hx, (tuple, list)) else (hx,)
            if len(given) != len(sizes) or not all(isinstance(t, Tensor) for t in given):
                want = "a tuple (h0, c0)" if is_lstm else "a Tensor h0"
                raise TypeError(f"{owner}: expected hx to be {want} or None, got {type(hx).__name__}")
            zeros = []
            for k, ((name, n), t) in enumerate(zip(sizes.items(), given)):
                want = (LD, B, n) if batched else (LD, n)
                if tuple(t.shape) != want:
                    layout = f"(L*D={LD}, B={B}, {n})" if batched else f"unbatched (L*D={LD}, {n})"
                    which = f"hidden[{k}]" if is_lstm else "hidden"
                    raise InputShapeError(
                        f"Expected {which} size {want}, got {list(t.shape)}. "
                        f"{owner}: expected {name} of shape {layout} (num_layers * directions, batch, "
                        f"{'proj_size' if is_lstm and name == 'h0' and self.proj_size else 'hidden_size'}), "
                        f"got {shape_str(t.shape)}"
                    )
                if t.dtype != x.dtype or t.device != x.device:
                    raise InputShapeError(
                        f"{owner}: {name} is {t.dtype} on {t.device} but the input is {x.dtype} on {x.device}; "
                        f"convert it with .to(input)"
                    )
                zeros.append(t if batched else t.unsqueeze(1))
        if is_lstm:
            return [(zeros[0][k], zeros[1][k]) for k in range(LD)]
        return [zeros[0][k] for k in range(LD)]


def _user_frame_masks(named: dict, direction: int, rev_index) -> dict:
    """The trace's masks: zoneout's time-major (T_run, B, n) indicators as the gates are (in the input's time
    order for the reverse direction, padded steps as drawn, batch-major (B, T_run, n)); the others as drawn."""
    out = {}
    for name, m in named.items():
        if name.startswith("zoneout") and m.dim() == 3:
            m = (reverse_time(m, rev_index) if direction == 1 else m).transpose(0, 1)
        out[name] = m
    return out


def _repack(output: Tensor, lengths: Tensor, packed: PackedSequence) -> PackedSequence:
    """Pack time-major output (T, B, n), in original batch order, like the input PackedSequence."""
    order = packed.sorted_indices
    if order is not None:
        output, lengths = output.index_select(1, order), lengths.index_select(0, order)
    data = pack_padded_sequence(output, lengths.cpu(), enforce_sorted=True).data
    return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
