"""SequenceClassifier: many-to-one, a whole sequence in, one label out.

    e_t    = E[x_t]  (token ids)  or  W_in x_t + b_in  (feature vectors)      (B, T, embed)
    e_t    = e_t * m_t / (1 - p)  token ids only, in training: m_t ~ Bernoulli(1 - p) per token (embed_dropout
             = p: a whole word dropped at a time; Gal & Ghahramani 2016, AWD-LSTM's embedding dropout)
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

from .._fields import opt
from .._validate import check_positive_ints
from ..layers import RecurrentConfig

__all__ = ["POOLING", "SequenceClassifier", "SequenceClassifierConfig", "pool"]

POOLING = ("last", "mean", "max")


@dataclass(slots=True)
class SequenceClassifierConfig:
    num_classes: int = opt(0, "C, set from the data", cli=False)
    vocab_size: int = opt(0, "token ids in (text); 0 when the input is feature vectors", cli=False)
    n_features: int = opt(0, "F, features per step (numeric sequences); 0 for text", cli=False)
    embed: int = opt(64, "embedding / input projection width")
    pooling: str = opt("last", "summary over time: the final states, or the mean or max over valid steps",
                       choices=POOLING)
    embed_dropout: float = opt(0.0, "text: drop whole tokens of the embedded input in training, each with this "
                                    "probability (feature vectors: not used)", metavar="P")
    # dropout (rnn.dropout) also on the embedding and before the output layer
    rnn: RecurrentConfig = opt(default_factory=lambda: RecurrentConfig(hidden_size=128, init="orthogonal"))

    def check(self, owner: str = "SequenceClassifier", name=str, sizes: bool = True) -> None:
        """Raise ValueError naming the option (name(field): the keyword, or the command line's flag).
        sizes=False skips the sizes the data sets (vocabulary, classes): the command line checks the options
        before it reads the data."""
        self.rnn.check(owner, name)
        if self.pooling not in POOLING:
            raise ValueError(f"{owner}: unknown {name('pooling')} {self.pooling!r}; expected one of {', '.join(POOLING)}")
        check_positive_ints(owner, self, ("embed",), name)
        if not 0 <= self.embed_dropout < 1:
            raise ValueError(f"{owner}: {name('embed_dropout')} must be in [0, 1), got {self.embed_dropout}")
        if not sizes:
            return
        if (self.vocab_size > 0) == (self.n_features > 0):
            raise ValueError(f"{owner}: give exactly one of vocab_size (token ids) or n_features (vectors)")
        if self.num_classes < 2:
            raise ValueError(f"{owner}: num_classes must be >= 2, got {self.num_classes}")


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
        self.rnn = c.rnn.build(c.embed)
        self.drop = nn.Dropout(c.rnn.dropout)
        self.directions = c.rnn.directions
        self.head = nn.Linear(c.rnn.output_size, c.num_classes)

    def features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The pooled summary s (B, D*R) that the output layer reads."""
        c = self.config
        if c.vocab_size and (x.dim() != 2 or x.dtype not in (torch.int64, torch.int32)):
            raise ValueError(f"SequenceClassifier: expected token ids of shape (B, T), got {tuple(x.shape)} {x.dtype}")
        if c.n_features and (x.dim() != 3 or x.shape[-1] != c.n_features):
            raise ValueError(f"SequenceClassifier: expected features of shape (B, T, F={c.n_features}), "
                             f"got {tuple(x.shape)}")
        e = self.drop(self.inp(x.transpose(0, 1)))  # (T, B, embed): time-major, the layers' own layout
        p = c.embed_dropout
        if self.training and p > 0 and c.vocab_size:  # one draw per token: the whole vector goes
            e = e * (torch.rand(e.shape[:2], device=e.device) >= p).unsqueeze(-1).to(e.dtype) / (1 - p)
        out, state = self.rnn(e, lengths=lengths)
        h_n = state[0] if isinstance(state, tuple) else state
        return pool(out, h_n, lengths, c.pooling, self.directions)

    def forward(self, x: Tensor, lengths: Tensor | None = None, targets: Tensor | None = None):
        logits = self.head(self.drop(self.features(x, lengths)))
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items() if k != "rnn")  # the layer prints itself
