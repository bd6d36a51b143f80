"""Recording as a value: the gates and states of every step, returned by a layer when asked.

A backend returns one `DirectionTrace` per layer-direction, time-major like everything inside the
library: gates[name] and states[name] of shape (T, B, H). The layer (RecurrentBase.forward) puts each
into the user's frame: time in the input's order also for the reverse direction, padded steps zeroed
(BatchLayout.zero_padding, as the output), then batch-major (B, T, H). A `Trace` holds them by (layer, direction).

    gates   LSTM: i, f, g, o;  GRU: r, z, n;  RNN: none
    states  h (B, T, R) (R = proj_size or H), and for the LSTM c (B, T, H)
    masks   in training mode with recurrent regularization (rnnlab/layers/regularize.py), the masks drawn:
            input (B, I), weight_hh (G*H, R), recurrent (B, R), zoneout_c (B, T, H), zoneout_h (B, T, R)

Values are the same on every backend. Gradients flow through the recorded tensors with the reference
backend; the fused backend records copies of its saved activations, detached (h is the output itself).

Example:
    >>> out, (h, c), trace = lstm(x, record_gates=True, return_states=True)
    >>> trace[0, 0].gates["f"]          # forget gate of layer 0, forward direction, (B, T, H)
    >>> trace.gate("f", layer=1, direction=1)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

__all__ = ["DirectionTrace", "Trace"]


@dataclass
class DirectionTrace:
    """Recorded gates and states of one layer-direction: name -> tensor, time-major (T, B, H) inside
    a backend, batch-major (B, T, H) once a layer returns it."""

    gates: dict[str, Tensor] = field(default_factory=dict)
    states: dict[str, Tensor] = field(default_factory=dict)
    masks: dict[str, Tensor] = field(default_factory=dict)  # regularization masks drawn (training mode)

    def map(self, fn) -> DirectionTrace:
        """fn applied to every gate and state (masks, of other shapes, are kept as they are)."""
        return DirectionTrace(
            {k: fn(v) for k, v in self.gates.items()}, {k: fn(v) for k, v in self.states.items()}, self.masks
        )


@dataclass
class Trace:
    """Everything a layer recorded in one forward pass, keyed by (layer, direction).

    lengths: the valid length of each sequence (B,), or None when all sequences span T.
    """

    records: dict[tuple[int, int], DirectionTrace]
    gate_names: tuple[str, ...]
    lengths: Tensor | None = None

    def __getitem__(self, key: tuple[int, int]) -> DirectionTrace:
        if key not in self.records:
            raise KeyError(f"Trace: no record for (layer, direction)={key}; recorded: {sorted(self.records)}")
        return self.records[key]

    def keys(self):
        return self.records.keys()

    def gate(self, name: str, layer: int = 0, direction: int = 0) -> Tensor:
        rec = self[layer, direction]
        if name not in rec.gates:
            hint = "pass record_gates=True" if not rec.gates else f"recorded gates: {sorted(rec.gates)}"
            raise KeyError(f"Trace: no gate {name!r}; {hint}")
        return rec.gates[name]

    def state(self, name: str, layer: int = 0, direction: int = 0) -> Tensor:
        rec = self[layer, direction]
        if name not in rec.states:
            hint = "pass return_states=True" if not rec.states else f"recorded states: {sorted(rec.states)}"
            raise KeyError(f"Trace: no state {name!r}; {hint}")
        return rec.states[name]

    def detach(self) -> Trace:
        return Trace({k: _with_masks(v.map(Tensor.detach), v, Tensor.detach) for k, v in self.records.items()},
                     self.gate_names, self.lengths)

    def to(self, *args, **kwargs) -> Trace:
        return Trace(
            {k: _with_masks(v.map(lambda t: t.to(*args, **kwargs)), v, lambda t: t.to(*args, **kwargs))
             for k, v in self.records.items()},
            self.gate_names,
            self.lengths,
        )


def _with_masks(new: DirectionTrace, old: DirectionTrace, fn) -> DirectionTrace:
    new.masks = {k: fn(v) for k, v in old.masks.items()}
    return new
