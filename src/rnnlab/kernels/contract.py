"""What a backend receives and what it is: the values the layer, the registry, the rule and the backends share.

Every backend runs ONE layer-direction:

    run(x, params, h0, layout, options) -> (y, h_n, trace)
      x        (T, B, I) time-major, T = layout.T_run: the layer has already dropped the steps past the
               longest sequence
      params   name (role) -> tensor, the cell's parameter names (weight_ih, weight_hh, bias_ih, ...)
      h0       the initial state: h (B, R), or (h (B, R), c (B, H)) for the LSTM
      layout   BatchLayout: where each sequence's valid steps lie (sequences are valid prefixes; the layer
               reverses them for the reverse direction), computed once per forward by the layer
      options  RunOptions: the CellConfig and what to record
      y        (T, B, R) outputs; at padded steps any finite value (the layer zeroes them with
               BatchLayout.zero_padding: the one place padding is made to read as zero)
      h_n      state after each sequence's last valid step, same structure as h0
      trace    None, or a DirectionTrace time-major (T, B, H) when options ask for recording (padded steps
               as y: any finite value)

`supports(options, device) -> (ok, reason)` says whether a backend can serve; the reason is what errors and
`rnnlab.backend_report()` show.

Example (what a layer does for one layer-direction):
    >>> layout = BatchLayout.of(lengths, x.shape[0])
    >>> y, h_n, _ = backend.run(x[: layout.T_run], params, h0, layout, RunOptions(cfg))
    >>> y = layout.full_length(layout.zero_padding(y))  # (T, B, R), zero past each sequence's length
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cells.config import CellConfig
from ..trace import DirectionTrace

__all__ = ["Backend", "BackendChoice", "BatchLayout", "RunOptions", "StepMasks", "batched", "capturing",
           "func_transformed", "refuse_tracing"]


def func_transformed() -> bool:
    """Whether a torch.func transform (grad, vjp, jacrev, vmap) is active: a backend whose autograd.Functions have no
    torch.func support (setup_context, vmap rule) runs the reference loop's plain ops instead, which every
    transform composes to any order."""
    return not torch.compiler.is_compiling() and torch._C._are_functorch_transforms_active()


def batched(t: Tensor) -> bool:
    """Whether `t` is a vmap-batched tensor (a vmap over a backward: gradcheck's batched gradients,
    is_grads_batched): it has no data pointer for the compiled loops and takes no in-place write into a plain
    tensor. False inside torch.compile (a compiled graph carries no vmap level of its own)."""
    if torch.compiler.is_compiling():
        return False
    return torch._C._functorch.is_batchedtensor(t) or torch._C._functorch.is_legacy_batchedtensor(t)


def capturing(t: Tensor | None = None) -> bool:
    """Whether a graph is being captured, so no tensor's values may be read in Python: torch.compile, torch.export
    (`t` fake or functional), torch.jit.trace and the ONNX exporter that traces."""
    return (torch.compiler.is_compiling() or torch.jit.is_tracing()
            or (t is not None and type(t) is not Tensor and not isinstance(t, torch.nn.Parameter)))


def refuse_tracing(who: str, steps: Tensor | None = None) -> None:
    """Raise when torch.jit.trace (or the legacy ONNX exporter, which traces) is recording: a trace keeps a
    Python loop over time, and any size or value read from a tensor, as constants of the example, so the
    traced model would run the example's number of steps on every input (a silent wrong answer).

    steps: the (T, ...) input of a Python loop over time; torch.export with a dynamic T cannot capture such a
    loop (it would fix T to the example's), so it is refused there too, naming the operator backends."""
    if torch.jit.is_tracing():
        raise RuntimeError(
            f"rnnlab {who}: torch.jit.trace (also torch.onnx.export(..., dynamo=False)) cannot record it: the trace "
            f"would keep the example's number of steps and return that many for any input; use torch.export.export "
            f"(with a dynamic time dimension), rnnlab.export(module, example, path) (ONNX for plain cells, with "
            f"lengths too; format='pt2' for every variant) or `rnnlab export RUN`; plain cells without lengths= can be "
            f"traced with backend='native'")
    if steps is not None and isinstance(steps.shape[0], torch.SymInt) and torch.compiler.is_exporting():
        raise RuntimeError(
            f"rnnlab {who}: torch.export cannot capture its Python loop over time with a dynamic time dimension "
            f"(the loop would run the example's number of steps); use backend='auto' (the fused or scan backend: one "
            f"registered operator per layer-direction, any T), or export with a static time dimension")


@dataclass(frozen=True)
class StepMasks:
    """What a backend applies inside its time loop, drawn by the layer (layers/regularize.py) so that every
    backend sees the same numbers. Each entry is None when that regularizer is off.

    recurrent  (B, R) multiplier of h_{t-1} where it enters W_hh (recurrent dropout, already scaled by
               1/(1-p)); the cell's other uses of h_{t-1} (the GRU's z h_{t-1}) see the unmasked state
    zone_c     zoneout of the LSTM's cell state: (T, B, H) 0/1 "keep c_{t-1}" indicators in training, a 0-dim
               tensor holding p in evaluation (the expectation); c_t = zone_c c_{t-1} + (1 - zone_c) c~_t
    zone_h     the same for h: (T, B, R) or 0-dim; h_t = zone_h h_{t-1} + (1 - zone_h) h~_t

    The cell computes c~_t, h~_t as without zoneout (o and tanh see the unzoned c~_t: Krueger et al. 2017).
    """

    recurrent: Tensor | None = None
    zone_c: Tensor | None = None
    zone_h: Tensor | None = None

    def tensors(self) -> dict[str, Tensor]:
        """The masks present, by name (what the fused Functions take beside the parameters)."""
        return {k: v for k, v in (("recurrent", self.recurrent), ("zone_c", self.zone_c), ("zone_h", self.zone_h))
                if v is not None}

    def steps(self, start: int, stop: int) -> StepMasks:
        """The masks of steps [start, stop) (a segment of segment_steps)."""
        def cut(z):
            return z[start:stop] if z is not None and z.dim() == 3 else z
        return StepMasks(self.recurrent, cut(self.zone_c), cut(self.zone_h))

    def rows(self, index: Tensor) -> StepMasks:
        """The masks with their batch rows reordered by `index` (a backend sorting its batch)."""
        def pick(m, dim):
            return m.index_select(dim, index) if m is not None and m.dim() > dim else m
        return StepMasks(pick(self.recurrent, 0), pick(self.zone_c, 1), pick(self.zone_h, 1))


@dataclass(frozen=True)
class RunOptions:
    """What a backend is asked to run: the cell, what to record, and what regularizes its time loop.

    in_loop  names of the regularizers active inside the time loop ("recurrent_dropout", "zoneout"): what
             `supports` decides on (known before any mask is drawn)
    masks    their masks for this layer-direction (StepMasks), or None
    """

    cell: CellConfig
    record_gates: bool = False
    record_states: bool = False
    grad: bool = True  # gradients will flow (training); False for inference under no_grad
    in_loop: tuple[str, ...] = ()
    masks: StepMasks | None = field(default=None, compare=False)
    padded: bool = False  # some sequence is shorter than the batch's steps (lengths=): auto's rule reads it
    steps: int = 0  # the steps this forward runs (0: not known, as in backend_for): auto's rule reads it

    @property
    def recording(self) -> bool:
        return self.record_gates or self.record_states


@dataclass(frozen=True, eq=False)
class BatchLayout:
    """Where the sequences of a batch lie on the time axis, from the valid lengths: one value per forward.

    T             steps in the layer's input
    lengths       (B,) int64 valid lengths on the input's device, or None (every sequence spans T)
    T_run         steps any sequence needs, max(lengths): the only ones a backend runs
    sorted_lengths  (B,) int64 on the CPU, longest first (a PackedSequence's order), or None
    perm          (B,) the batch order longest first (stable sort), None when the batch is already in it
    batch_sizes   rows still running at each step t < T_run of the sorted batch; None when nothing is padded
    last          (B,) last valid step of each row of the sorted batch; None when nothing is padded
    captured      True for the layout of a graph being captured (`for_capture`): values unknown, every step runs
    inverse       (B,) the permutation that undoes perm (sorted batch -> the caller's order), None with perm
    valid         (T_run, B, 1) bool in the caller's order: step t of sequence b is valid; None when nothing is padded

    "Nothing padded" (`padded` False) also covers lengths that all equal T: the plain path serves them.
    """

    T: int
    lengths: Tensor | None = None
    T_run: int = 0
    sorted_lengths: Tensor | None = None
    perm: Tensor | None = None
    batch_sizes: tuple[int, ...] | None = None
    last: Tensor | None = None
    captured: bool = False  # made while a graph is captured (BatchLayout.for_capture): padded, batch_sizes None
    inverse: Tensor | None = None
    valid: Tensor | None = None

    @classmethod
    def of(cls, lengths: Tensor | None, T: int) -> BatchLayout:
        """The layout of (T, B, ...) input whose sequence b has lengths[b] valid steps (1 <= lengths <= T)."""
        if lengths is None:
            return cls(T, None, T)
        if capturing(lengths):
            return cls.for_capture(lengths, T)
        lens = lengths.cpu()
        if int(lens.min()) == T:  # nothing padded
            return cls(T, lengths, T, lens)
        sorted_lens, perm = torch.sort(lens, descending=True, stable=True)
        T_run = int(sorted_lens[0])
        batch_sizes = tuple((sorted_lens[None, :] > torch.arange(T_run)[:, None]).sum(1).tolist())
        in_order = torch.equal(perm, torch.arange(len(lens)))
        perm = None if in_order else perm.to(lengths.device)
        inverse = None
        if perm is not None:
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(len(perm), device=perm.device)
        return cls(T, lengths, T_run, sorted_lens, perm, batch_sizes, (sorted_lens - 1).to(lengths.device),
                   inverse=inverse, valid=_valid(lengths, T_run))

    @classmethod
    def for_capture(cls, lengths: Tensor, T: int) -> BatchLayout:
        """The layout while a graph is captured (torch.compile, torch.export, the ONNX exporter): made of tensor
        operations only, since the lengths' values are not known. Every row counts as padded and every step runs
        (T_run = T: a backend runs steps past the longest sequence with no row active, the fused and scan ones
        at no cost); the batch is always sorted; batch_sizes stays None (the fused operator computes its rows per
        step from the lengths when it runs). torch.jit.trace would keep the example's values: refused, except
        under the ONNX exporter, whose graph keeps the sort and the lengths as operators (rnnlab.export)."""
        if torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            refuse_tracing("lengths=")
        # rows are independent, so ties may come in any order (the ONNX exporter has no stable sort)
        sorted_lens, perm = torch.sort(lengths, descending=True)
        # the inverse without an in-place write: an exporter keeps it as one operator
        return cls(T, lengths, T, sorted_lens, perm, None, sorted_lens - 1, captured=True,
                   inverse=torch.argsort(perm), valid=_valid(lengths, T))

    @property
    def padded(self) -> bool:
        """Whether some sequence may be shorter than T (then last is set, and batch_sizes unless captured)."""
        return self.batch_sizes is not None or self.captured

    def zero_padding(self, t: Tensor) -> Tensor:
        """(T_run, B, n) time-major with zeros at every padded step; t itself when nothing is padded."""
        return t if not self.padded else torch.where(self.valid, t, 0.0)

    def full_length(self, t: Tensor) -> Tensor:
        """(T_run, B, n) -> (T, B, n): zeros appended for the steps past the longest sequence."""
        return t if self.captured or self.T_run == self.T else F.pad(t, (0, 0, 0, 0, 0, self.T - self.T_run))


def _valid(lengths: Tensor, T_run: int) -> Tensor:
    """(T_run, B, 1) bool: step t of sequence b is valid (computed once per layout: no cached_property, whose lock
    torch.compile cannot trace with fullgraph=True)."""
    return (torch.arange(T_run, device=lengths.device)[:, None] < lengths[None, :]).unsqueeze(-1)


RunFn = Callable[[Tensor, dict, Any, BatchLayout, RunOptions], "tuple[Tensor, Any, DirectionTrace | None]"]


@dataclass(frozen=True)
class Backend:
    """A way to run one layer-direction: `run` (the contract above), `supports`, and one line for reports."""

    name: str
    run: RunFn
    supports: Callable[[RunOptions, torch.device], tuple[bool, str]]
    summary: str


@dataclass(frozen=True)
class BackendChoice:
    """The backend a module will use, and why."""

    name: str
    reason: str
