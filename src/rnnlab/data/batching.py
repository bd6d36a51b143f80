"""Batching over a fixed list of examples: a seeded train/validation split of rows, and endless reshuffled
batches that resume exactly. (Batches grouped by length are sequences.LengthBuckets; text streams for
truncated BPTT are streams.TextStreams.)"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import DataError

__all__ = ["ShuffledBatches", "split_rows"]


class ShuffledBatches:
    """Endless batches over a fixed list of samples, reshuffled every epoch from (seed, epoch).

    `collate` turns a list of samples into a batch. The position (epoch, pos) is all a resume needs.
    """

    def __init__(self, samples: Sequence, batch: int, collate: Callable[[list], Any], seed: int = 0) -> None:
        self.samples, self.batch, self.collate, self.seed = samples, min(batch, len(samples)), collate, seed
        self.epoch, self.pos = 0, 0
        self._order = self._perm()

    def _perm(self) -> list[int]:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.samples)).tolist()

    def __next__(self):
        if self.pos + self.batch > len(self.samples):
            self.epoch, self.pos = self.epoch + 1, 0
            self._order = self._perm()
        idx = self._order[self.pos: self.pos + self.batch]
        self.pos += self.batch
        return self.collate([self.samples[i] for i in idx])

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._perm()


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of n rows into (train, validation) indices; at least one of each when n >= 2."""
    if n < 2:
        raise DataError(f"need at least 2 labelled images (one to train on, one to validate), got {n}")
    order = np.random.default_rng([seed, 77]).permutation(n).tolist()
    k = min(n - 1, max(1, round(n * val_fraction)))
    return sorted(order[k:]), sorted(order[:k])
