"""Batching over a fixed list of examples: a seeded train/validation split of rows, and endless reshuffled
batches that resume exactly. (Batches grouped by length are sequences.LengthBuckets; text streams for
truncated BPTT are streams.TextStreams.)

Several processes (and gradient accumulation) share one global batch: after `distribute(rank, world,
accumulate)` the batches are drawn exactly as one process drawing batch x world x accumulate would draw them,
and each is cut into world x accumulate parts of near-equal size (`part`); micro-step m of rank r takes part
r * accumulate + m. `share` is the fraction of the global batch the last part held: the loop weighs that
part's mean loss by it, so the step's loss and gradient are the global batch's mean however it was cut. A part
left empty (a global batch smaller than the number of parts, at an epoch's end) is filled with one example
weighed 0, because every rank must run a step for the gradients to be averaged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import DataError

__all__ = ["ShuffledBatches", "SplitBatches", "part", "split_rows"]


def part(indices: Sequence[int], parts: int, j: int) -> tuple[Any, float]:
    """(part j of `parts` near-equal contiguous parts of a global batch's indices, its share of the batch);
    an empty part is the first index with share 0 (module docstring)."""
    n = len(indices)
    start, stop = j * n // parts, (j + 1) * n // parts
    if stop == start:
        return indices[:1], 0.0
    return indices[start:stop], (stop - start) / n


class ShuffledBatches:
    """Endless batches over a fixed list of samples, reshuffled every epoch from (seed, epoch).

    `collate` turns a list of samples into a batch. The position (epoch, pos) is all a resume needs.
    """

    def __init__(self, samples: Sequence, batch: int, collate: Callable[[list], Any], seed: int = 0) -> None:
        self.samples, self.batch, self.collate, self.seed = samples, min(batch, len(samples)), collate, seed
        self.epoch, self.pos = 0, 0
        self.per_part, self.rank, self.parts, self.micro, self.accumulate = self.batch, 0, 1, 0, 1
        self.part = 0      # the part of the global batch being collated: collate may seed augmentation with it
        self.share = 1.0
        self._order = self._perm()

    def distribute(self, rank: int, world: int, accumulate: int = 1) -> None:
        """Draw global batches of batch x world x accumulate samples and return this rank's parts."""
        self.batch = min(self.per_part * world * accumulate, len(self.samples))
        self.rank, self.parts, self.accumulate, self.micro = rank, world * accumulate, accumulate, 0

    def _perm(self) -> list[int]:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.samples)).tolist()

    def __next__(self):
        if self.parts == 1:
            if self.pos + self.batch > len(self.samples):
                self.epoch, self.pos = self.epoch + 1, 0
                self._order = self._perm()
            idx = self._order[self.pos: self.pos + self.batch]
            self.pos += self.batch
            return self.collate([self.samples[i] for i in idx])
        # one part of the global batch at [pos, pos + batch); pos moves on after the rank's last micro-step
        if self.micro == 0 and self.pos + self.batch > len(self.samples):
            self.epoch, self.pos = self.epoch + 1, 0
            self._order = self._perm()
        self.part = self.rank * self.accumulate + self.micro
        idx, self.share = part(self._order[self.pos: self.pos + self.batch], self.parts, self.part)
        out = self.collate([self.samples[i] for i in idx])
        self.micro = (self.micro + 1) % self.accumulate
        if self.micro == 0:
            self.pos += self.batch
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos, self.micro = int(state["epoch"]), int(state["pos"]), 0
        self._order = self._perm()


class SplitBatches:
    """An endless sampler of index batches (sequences.LengthBuckets), made by `make(batch)`, whose batches
    `distribute` cuts into parts: the sampler is then made for the global batch, and each __next__ returns this
    rank's next part (module docstring). On one process without accumulation it is the sampler itself."""

    def __init__(self, make: Callable[[int], Any], batch: int) -> None:
        self.make, self.per_part = make, batch
        self.sampler = make(batch)
        self.rank, self.parts, self.accumulate, self.micro = 0, 1, 1, 0
        self.share, self._global = 1.0, None

    def distribute(self, rank: int, world: int, accumulate: int = 1) -> None:
        state = self.sampler.state_dict()
        self.sampler = self.make(self.per_part * world * accumulate)
        self.sampler.load_state_dict(state)
        self.rank, self.parts, self.accumulate, self.micro = rank, world * accumulate, accumulate, 0

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self.sampler)

    def __next__(self):
        if self.parts == 1:
            return next(self.sampler)
        if self.micro == 0:
            self._global = next(self.sampler)
        out, self.share = part(self._global, self.parts, self.rank * self.accumulate + self.micro)
        self.micro = (self.micro + 1) % self.accumulate
        return out

    def state_dict(self) -> dict:
        """The sampler's position between optimizer steps (the same on every rank)."""
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)
        self.micro = 0


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of n rows into (train, validation) indices; at least one of each when n >= 2."""
    if n < 2:
        raise DataError(f"need at least 2 labelled images (one to train on, one to validate), got {n}")
    order = np.random.default_rng([seed, 77]).permutation(n).tolist()
    k = min(n - 1, max(1, round(n * val_fraction)))
    return sorted(order[k:]), sorted(order[:k])
