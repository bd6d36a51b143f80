"""Text cut for truncated backpropagation through time (BPTT).

The training text is laid out as B parallel streams, each a contiguous stretch of the text, and read in
chunks of T characters: chunk k of stream b continues exactly where chunk k-1 of stream b ended. That is
what lets a model carry its recurrent state from one batch to the next (the training loop carries it and
cuts the gradient at the chunk boundary).

    text   a b c d e f g h i j k l m n o p q r s t u v w x       (N characters)
    B = 2  stream 0: a b c d e f g h i j k      stream 1: l m n o p q r s t u v
    T = 4  batch 0: x = [abcd, lmno], y = [bcde, mnop];  batch 1: x = [efgh, pqrs] ...

Each epoch starts the streams at a different offset in [0, T) (drawn from the seed and the epoch), so
chunk boundaries fall elsewhere; the position (epoch, chunk) is all that an exact resume needs.

Several processes (and gradient accumulation) share the streams of one global batch: after
`distribute(rank, world, accumulate)` the text is laid out as G = B x world x accumulate streams, exactly as
one process with --batch G would lay it out, and micro-step m of rank r reads streams [j*B, (j+1)*B) with
j = r * accumulate + m (stream b goes to rank b // (B * accumulate)). Every part holds B streams, so the mean
of the parts' mean losses is the global batch's mean loss.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from .errors import DataError

__all__ = ["Batch", "TextStreams", "eval_batches", "split_ids"]


class Batch(NamedTuple):
    """One chunk of every stream: x (B, T) ids, y (B, T) the next ids; reset_state at an epoch start,
    where the text the carried state summarised does not continue into this chunk."""

    x: Tensor
    y: Tensor
    reset_state: bool


def split_ids(ids: Tensor, val_fraction: float) -> tuple[Tensor, Tensor]:
    """(train, validation): the validation part is the last `val_fraction` of the text."""
    if not 0 < val_fraction < 1:
        raise DataError(f"validation fraction must be in (0, 1), got {val_fraction}")
    n_val = max(2, int(len(ids) * val_fraction))
    if len(ids) - n_val < 2:
        raise DataError(f"the corpus has only {len(ids)} characters; give a longer text")
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


class TextStreams:
    """The training text as `batch` parallel streams read in chunks of `seq_len`, epoch after epoch."""

    def __init__(self, ids: Tensor, batch: int, seq_len: int, seed: int = 0) -> None:
        if batch < 1 or seq_len < 1:
            raise DataError(f"batch and sequence length must be >= 1, got batch={batch}, seq_len={seq_len}")
        if len(ids) - seq_len < batch * seq_len + 1:
            # the room that the epoch offsets (< T) may take is kept so every epoch has >= 1 chunk
            raise DataError(
                f"the training text has {len(ids)} characters, fewer than one batch needs "
                f"({batch} streams x ({seq_len} + 1) characters, plus {seq_len} of slack); "
                f"use a smaller --batch or --seq-len, or a longer text"
            )
        self.ids, self.batch, self.seq_len, self.seed = ids, batch, seq_len, seed
        self.epoch, self.chunk = 0, 0
        self.rank, self.world, self.accumulate, self.micro = 0, 1, 1, 0
        self.share = 1.0  # the fraction of the global batch the last batch held
        self._layout()

    def distribute(self, rank: int, world: int, accumulate: int = 1) -> None:
        """Read this rank's parts of global batches of batch x world x accumulate streams (module docstring)."""
        G, T = self.batch * world * accumulate, self.seq_len
        if len(self.ids) - T < G * T + 1:
            raise DataError(
                f"the training text has {len(self.ids)} characters, fewer than one global batch needs "
                f"({G} streams = {self.batch} x {world} processes x {accumulate} accumulated, x ({T} + 1) characters, "
                f"plus {T} of slack); use a smaller --batch, --seq-len or --accumulate, or a longer text")
        self.rank, self.world, self.accumulate, self.micro = rank, world, accumulate, 0
        self.share = 1.0 / (world * accumulate)
        self._layout()

    def _layout(self) -> None:
        B, T = self.batch * self.world * self.accumulate, self.seq_len
        offset = 0 if self.epoch == 0 else random.Random(f"{self.seed}-{self.epoch}").randrange(T)
        L = (len(self.ids) - offset - 1) // B  # characters per stream
        self._x = self.ids[offset: offset + B * L].view(B, L)  # (B, L)
        self._y = self.ids[offset + 1: offset + B * L + 1].view(B, L)  # (B, L) shifted by one
        self.chunks_per_epoch = L // T

    def __next__(self) -> Batch:
        if self.micro == 0 and self.chunk >= self.chunks_per_epoch:
            self.epoch, self.chunk = self.epoch + 1, 0
            self._layout()
        T, k = self.seq_len, self.chunk
        # this rank's streams of the global batch (all of them on one process without accumulation)
        j = self.rank * self.accumulate + self.micro
        rows = slice(j * self.batch, (j + 1) * self.batch)
        # the text's ids are stored compact (int16); the model's embedding and loss take int64
        batch = Batch(self._x[rows, k * T: (k + 1) * T].long(), self._y[rows, k * T: (k + 1) * T].long(),
                      reset_state=k == 0)
        self.micro = (self.micro + 1) % self.accumulate
        if self.micro == 0:
            self.chunk += 1
        return batch

    def __iter__(self) -> Iterator[Batch]:
        return self

    def state_dict(self) -> dict:
        """The position between optimizer steps (every rank's is the same: the global batch's)."""
        return {"epoch": self.epoch, "chunk": self.chunk}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.chunk, self.micro = int(state["epoch"]), int(state["chunk"]), 0
        self._layout()
        if not 0 <= self.chunk <= self.chunks_per_epoch:
            raise DataError(
                f"data position {state} does not fit this text ({self.chunks_per_epoch} chunks per epoch); "
                f"resume with the same --data, --batch and --seq-len"
            )


def eval_batches(ids: Tensor, batch: int, seq_len: int) -> Iterator[Batch]:
    """The whole text once, as at most `batch` streams in chunks of `seq_len` (the last may be shorter).

    Every character but the first of each stream is predicted once; the state is carried across chunks.
    """
    if len(ids) < 2:
        raise DataError(f"the evaluation text has {len(ids)} character(s); it needs at least 2")
    B = max(1, min(batch, (len(ids) - 1) // seq_len))
    L = (len(ids) - 1) // B
    x, y = ids[: B * L].view(B, L), ids[1: B * L + 1].view(B, L)  # (B, L)
    for start in range(0, L, seq_len):
        yield Batch(x[:, start: start + seq_len].long(), y[:, start: start + seq_len].long(), reset_state=start == 0)
