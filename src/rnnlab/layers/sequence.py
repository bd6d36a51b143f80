"""Time-axis helpers for layers: checking valid lengths, reversing padded sequences (padding stays at the end)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from .._validate import shape_str
from ..kernels.contract import capturing

__all__ = ["check_lengths", "reverse_index", "reverse_time"]


def check_lengths(owner: str, lengths, B: int, T: int, device: torch.device) -> Tensor:
    """Validate `lengths` (B,) of ints in [1, T]; return them as int64 on `device`."""
    if isinstance(lengths, Tensor):
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
            raise TypeError(
                f"{owner}: lengths must hold integers, got a {lengths.dtype} tensor; "
                f"pass lengths.long() or a list of ints"
            )
        t = lengths
    elif isinstance(lengths, Sequence) and all(isinstance(v, int) and not isinstance(v, bool) for v in lengths):
        t = torch.tensor(list(lengths), dtype=torch.long)
    else:
        raise TypeError(
            f"{owner}: lengths must be a 1-D integer tensor or a list of ints (one per sequence), "
            f"got {type(lengths).__name__}"
        )
    if tuple(t.shape) != (B,):
        raise ValueError(f"{owner}: expected lengths of shape (B={B},), one per sequence, got {shape_str(t.shape)}")
    if capturing(t) and not torch.jit.is_tracing():  # torch.compile / torch.export: checked when the graph runs
        torch._assert_async(((t >= 1) & (t <= T)).all(), f"{owner}: lengths must lie in [1, T] (T = steps in the "
                            f"input); drop empty sequences and pad the input to the longest one")
        return t.to(device=device, dtype=torch.long)
    if torch.jit.is_tracing():  # the ONNX exporter's trace: the example's lengths are checked, nothing is kept
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            lo, hi = int(t.min()), int(t.max())
    else:
        lo, hi = int(t.min()), int(t.max())
    if lo < 1 or hi > T:
        bad = lo if lo < 1 else hi
        raise ValueError(
            f"{owner}: lengths must lie in [1, T={T}] (T = steps in the input), got {bad}; "
            f"drop empty sequences and pad the input to the longest one"
        )
    return t.to(device=device, dtype=torch.long)


def reverse_index(lengths: Tensor | None, T: int, device: torch.device) -> Tensor | None:
    """(T, B) time index that reverses each sequence within its valid length and leaves padding at the end.

    Applying it twice is the identity. None when there are no lengths (a plain flip does)."""
    if lengths is None:
        return None
    t = torch.arange(T, device=device)[:, None]  # (T, 1)
    return torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)


def reverse_time(x: Tensor, index: Tensor | None) -> Tensor:
    """Reverse time-major x (T, B, n) per sequence with `reverse_index`'s index (None: flip all T)."""
    if index is None:
        return x.flip(0)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))
