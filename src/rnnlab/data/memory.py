"""The copy-memory problem (Hochreiter & Schmidhuber 1997, experiment 2; in the form of Arjovsky, Shah &
Bengio 2016, "Unitary Evolution Recurrent Neural Networks"): see n symbols, wait T steps, write them back.

    ids    0 blank, 1..K data symbols, K+1 the delimiter ("now recall")
    input  s_1 .. s_n   blank x (T-1)   delim   blank x n          length L = T + 2n
    target blank x (T+n)                        s_1 .. s_n

So symbol s_j is seen at step j-1 and must be written at step T+n+j-1: every symbol crosses T+n steps.
A model that remembers nothing scores 1/K on the recalled symbols (chance); the blanks before the recall are
trivial and are not scored (`recall` marks the n steps that are).

Deterministic: a batch follows from (seed, index), so training data resumes exactly and the validation set
is the same for every model.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .errors import DataError

__all__ = ["CopyMemoryBatches", "MemoryBatch", "copy_memory_batch"]


class MemoryBatch(NamedTuple):
    x: Tensor       # (B, L) input ids in 0..K+1
    y: Tensor       # (B, L) target ids in 0..K (blank or a data symbol)
    recall: Tensor  # (L,) bool: the n steps whose targets are the remembered symbols


def copy_memory_batch(batch: int, delay: int, symbols: int = 5, alphabet: int = 8,
                      generator: torch.Generator | None = None) -> MemoryBatch:
    """One batch of the copy-memory problem with delay T=`delay`, n=`symbols` data symbols out of K=`alphabet`."""
    if delay < 1 or symbols < 1 or alphabet < 2 or batch < 1:
        raise DataError(f"copy memory: need delay >= 1, symbols >= 1, alphabet >= 2 and batch >= 1; "
                        f"got delay={delay}, symbols={symbols}, alphabet={alphabet}, batch={batch}")
    n, L = symbols, delay + 2 * symbols
    s = torch.randint(1, alphabet + 1, (batch, n), generator=generator)
    x = torch.zeros(batch, L, dtype=torch.long)
    y = torch.zeros(batch, L, dtype=torch.long)
    x[:, :n] = s
    x[:, delay + n - 1] = alphabet + 1  # the delimiter: the step before the first recall
    y[:, delay + n:] = s
    recall = torch.zeros(L, dtype=torch.bool)
    recall[delay + n:] = True
    return MemoryBatch(x, y, recall)


class CopyMemoryBatches:
    """Endless training batches; batch k is drawn from seed*1_000_003 + k, so a resume continues exactly."""

    def __init__(self, batch: int, delay: int, symbols: int, alphabet: int, seed: int = 0) -> None:
        copy_memory_batch(1, delay, symbols, alphabet)  # checks the arguments now
        self.batch, self.delay, self.symbols, self.alphabet, self.seed = batch, delay, symbols, alphabet, seed
        self.index = 0

    def __iter__(self):
        return self

    def __next__(self) -> MemoryBatch:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.index)
        self.index += 1
        return copy_memory_batch(self.batch, self.delay, self.symbols, self.alphabet, g)

    def state_dict(self) -> dict:
        return {"index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.index = int(state["index"])
