"""SequenceClassifier: many-to-one, a whole sequence in, one label out.

    e_t    = E[x_t]  (token ids)  or  W_in x_t + b_in  (feature vectors)      (B, T, embed)
    h_t    = RNN(e_t, h_{t-1})    any rnnlab cell and variant, D directions    (B, T, D*R)
    s      = pool(h_1..h_len)     last | mean | max over each sequence's valid steps   (B, D*R)
    logits = W s + b                                                           (B, C)
    loss   = mean cross-entropy(logits, y)

Pooling with lengths (padded batches give the same result as each sequence alone):
    last  the final state h_n of each direction: forward at step len-1, reverse after reading back to
          step 0 (the tutorial's picture: the state after the whole sequence is read), concatenated
    mean  the mean of h_t over t < len
    max   the element-wise max of h_t over t < len
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cells import INIT_SCHEMES
from ..kernels import backend_names
from .charlm import CELLS

__all__ = ["POOLING", "SequenceClassifier", "SequenceClassifierConfig", "pool"]

POOLING = ("last", "mean", "max")


@dataclass
class SequenceClassifierConfig:
    num_classes: int = 0       # C, set from the data
    vocab_size: int = 0        # token ids in (text); 0 when the input is feature vectors
    n_features: int = 0        # F, features per step (numeric sequences); 0 for text
    embed: int = 64            # embedding / input projection width
    cell: str = "lstm"         # rnn | lstm | gru
    hidden: int = 128          # H
    layers: int = 1            # L
    bidirectional: bool = False
    pooling: str = "last"      # last | mean | max
    dropout: float = 0.0       # on the embedding, between layers and before the output layer
    peephole: bool = False     # LSTM variants
    coupled: bool = False
    layer_norm: bool = False
    proj_size: int = 0
    backend: str = "auto"
    init: str = "orthogonal"

    def check(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"SequenceClassifier: unknown cell {self.cell!r}; expected one of {', '.join(CELLS)}")
        if self.cell != "lstm":
            for name in ("peephole", "coupled", "proj_size"):
                if getattr(self, name):
                    raise ValueError(f"SequenceClassifier: {name} is an LSTM variant; use cell='lstm' or drop {name}")
        if self.pooling not in POOLING:
            raise ValueError(f"SequenceClassifier: unknown pooling {self.pooling!r}; expected one of {', '.join(POOLING)}")
        if (self.vocab_size > 0) == (self.n_features > 0):
            raise ValueError("SequenceClassifier: give exactly one of vocab_size (token ids) or n_features (vectors)")
        for name in ("num_classes", "hidden", "layers", "embed"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"SequenceClassifier: {name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.num_classes < 2:
            raise ValueError(f"SequenceClassifier: num_classes must be >= 2, got {self.num_classes}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"SequenceClassifier: dropout must be in [0, 1), got {self.dropout}")
        if self.proj_size < 0 or (self.proj_size and self.proj_size >= self.hidden):
            raise ValueError(f"SequenceClassifier: proj_size must be in [0, hidden={self.hidden}), got {self.proj_size}")
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"SequenceClassifier: unknown init {self.init!r}; expected one of {', '.join(INIT_SCHEMES)}")
        if self.backend not in backend_names():
            raise ValueError(f"SequenceClassifier: unknown backend {self.backend!r}; expected one of "
                             f"{', '.join(backend_names())}")


def pool(out: Tensor, h_n: Tensor, lengths: Tensor | None, mode: str, directions: int) -> Tensor:
    """(B, D*R) summary of a layer's output out (T, B, D*R) and final states h_n (L*D, B, R).

    Padded steps of `out` are zero (rnnlab layers guarantee it) and never enter mean or max."""
    T, B, _ = out.shape
    if mode == "last":
        return torch.cat([h_n[-directions + d] for d in range(directions)], dim=-1)  # (B, D*R)
    if lengths is None:
        return out.mean(0) if mode == "mean" else out.amax(0)
    lengths = lengths.to(out.device)
    valid = (torch.arange(T, device=out.device)[:, None] < lengths[None, :]).unsqueeze(-1)  # (T, B, 1)
    if mode == "mean":
        return (out * valid).sum(0) / lengths[:, None].to(out.dtype)
    return out.masked_fill(~valid, float("-inf")).amax(0)


class SequenceClassifier(nn.Module):
    """forward(x, lengths=None, targets=None) -> (logits (B, C), loss or None)

    x        (B, T) int64 token ids (vocab_size > 0) or (B, T, F) float features (n_features > 0)
    lengths  (B,) valid steps of each sequence (None: all T)
    """

    def __init__(self, config: SequenceClassifierConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        if c.vocab_size:
            self.inp = nn.Embedding(c.vocab_size, c.embed, padding_idx=0)
        else:
            self.inp = nn.Linear(c.n_features, c.embed)
        variants = dict(layer_norm=c.layer_norm)
        if c.cell == "lstm":
            variants.update(peephole=c.peephole, coupled=c.coupled, proj_size=c.proj_size)
        self.rnn = CELLS[c.cell](c.embed, c.hidden, c.layers, dropout=c.dropout if c.layers > 1 else 0.0,
                                 bidirectional=c.bidirectional, init=c.init, backend=c.backend, **variants)
        self.drop = nn.Dropout(c.dropout)
        self.directions = 2 if c.bidirectional else 1
        self.head = nn.Linear(self.directions * (c.proj_size or c.hidden), c.num_classes)

    def features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The pooled summary s (B, D*R) that the output layer reads."""
        c = self.config
        if c.vocab_size and (x.dim() != 2 or x.dtype not in (torch.int64, torch.int32)):
            raise ValueError(f"SequenceClassifier: expected token ids of shape (B, T), got {tuple(x.shape)} {x.dtype}")
        if c.n_features and (x.dim() != 3 or x.shape[-1] != c.n_features):
            raise ValueError(f"SequenceClassifier: expected features of shape (B, T, F={c.n_features}), "
                             f"got {tuple(x.shape)}")
        e = self.drop(self.inp(x.transpose(0, 1)))  # (T, B, embed): time-major, the layers' own layout
        out, state = self.rnn(e, lengths=lengths)
        h_n = state[0] if isinstance(state, tuple) else state
        return pool(out, h_n, lengths, c.pooling, self.directions)

    def forward(self, x: Tensor, lengths: Tensor | None = None, targets: Tensor | None = None):
        logits = self.head(self.drop(self.features(x, lengths)))
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items() if v)
