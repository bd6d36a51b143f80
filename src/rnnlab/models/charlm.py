"""CharLM: a character-level language model, embedding -> rnnlab recurrent layer -> linear.

    e_t      = E[x_t]                              (B, T, embed)
    h_t      = RNN(e_t, h_{t-1})                   (B, T, R)      any rnnlab cell, variants, backend
    logits_t = W h_t + b                           (B, T, C)      C = vocabulary size
    loss     = mean cross-entropy(logits_t, x_{t+1}) in nats (bits per character = loss / ln 2)

The recurrent stack is `config.rnn` (rnnlab.layers.RecurrentConfig: cell, sizes, variants, backend). Its
weights are initialised orthogonally by default (init="orthogonal": orthogonal W_hh blocks, Xavier W_ih,
LSTM forget-gate bias `forget_bias`); init="torch" gives torch.nn's uniform initialisation. Dropout
(`rnn.dropout`), when set, is applied to the embeddings, between layers and before the output layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._fields import opt
from .._validate import check_positive_ints
from ..layers import CELLS, RecurrentConfig

__all__ = ["CELLS", "CharLM", "CharLMConfig"]


@dataclass(slots=True)
class CharLMConfig:
    """The model's shape. Defaults are the quick start's (`rnnlab train charlm`), measured to learn fastest
    on 2 CPU cores within a few minutes; see README "Character-level language model"."""

    vocab_size: int = opt(0, "C, set from the data", cli=False)
    embed: int = opt(64, "embedding width")
    # LSTM forget-gate bias with init="orthogonal" (the layer's own default is 1; see CharLM.__init__)
    forget_bias: float = opt(0.0, "LSTM forget-gate bias at init (with --init orthogonal)")
    # 1 x 256: 256 beat 384 and 512 within the 3-minute CPU budget; dropout also on embeddings and outputs
    rnn: RecurrentConfig = opt(default_factory=lambda: RecurrentConfig(hidden_size=256, init="orthogonal"))

    def check(self, owner: str = "CharLM", name=str, sizes: bool = True) -> None:
        """Raise ValueError naming the option (name(field): the keyword, or the command line's flag).
        sizes=False skips the sizes the data sets (vocabulary, classes): the command line checks the options
        before it reads the data."""
        self.rnn.check(owner, name, one_way="a language model reads left to right (both ways it would see the "
                                           "characters it predicts)")
        check_positive_ints(owner, self, ("vocab_size", "embed")[not sizes:], name)


class CharLM(nn.Module):
    """forward(x, targets=None, state=None, *, return_state=False) -> (logits, loss[, state])

    x        (B, T) int64 character ids
    targets  (B, T) the next characters, or None (then loss is None)
    state    the recurrent state from the previous chunk (h, or (h, c) for the LSTM), or None for zeros
    logits   (B, T, C); loss: mean cross-entropy in nats; state: the final state, returned when asked
             (as rnnlab's layers return a trace only when asked)
    """

    def __init__(self, config: CharLMConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        r = c.rnn
        self.embed = nn.Embedding(c.vocab_size, c.embed)
        self.rnn = r.build(c.embed)
        if r.cell == "lstm" and not r.coupled and r.init == "orthogonal":
            # Measured on builtin:pystdlib with the quick-start budget (benchmarks/CHARLM.md): forget-gate
            # bias 1 (the layer's orthogonal default, made for long-memory tasks) cost 0.08 bits/char after
            # 2 minutes against torch.nn's init; bias 0 matched it. So the char LM starts from 0.
            with torch.no_grad():
                for name, p in self.rnn.named_parameters():
                    if name.startswith("bias_ih"):
                        p[r.hidden_size : 2 * r.hidden_size] = c.forget_bias
        self.drop = nn.Dropout(r.dropout)
        self.head = nn.Linear(r.output_size, c.vocab_size)

    def forward(self, x: Tensor, targets: Tensor | None = None, state=None, *, return_state: bool = False):
        if x.dim() != 2 or x.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"CharLM: expected x of shape (B, T) with integer ids, got {tuple(x.shape)} {x.dtype}")
        # time-major inside, the layers' own layout: no transposed copies around the recurrent kernel
        out, state = self.rnn(self.drop(self.embed(x.t())), state)  # (T, B, R)
        logits = self.head(self.drop(out))  # (T, B, C)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.t().reshape(-1))
        logits = logits.transpose(0, 1)  # (B, T, C), a view
        return (logits, loss, state) if return_state else (logits, loss)

    @torch.no_grad()
    def generate(
        self,
        prime: Tensor,
        length: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Iterator[int]:
        """Yield `length` character ids, one at a time, continuing the ids in `prime` (T,) (T >= 1).

        temperature 0 picks the most likely character; top_k keeps the k most likely before sampling.
        The model runs the prime once, then steps one character at a time, carrying the state.
        """
        if prime.dim() != 1 or len(prime) == 0:
            raise ValueError("CharLM.generate: prime must be a non-empty (T,) tensor of ids")
        if temperature < 0:
            raise ValueError(f"CharLM.generate: temperature must be >= 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"CharLM.generate: top_k must be >= 1, got {top_k}")
        was_training = self.training
        self.eval()
        try:
            device = self.head.weight.device
            logits, _, state = self(prime.to(device).unsqueeze(0), return_state=True)
            for _ in range(length):
                last = logits[0, -1].float()  # (C,)
                if temperature == 0:
                    nxt = int(last.argmax())
                else:
                    if top_k is not None and top_k < last.numel():
                        kth = last.topk(top_k).values[-1]
                        last = last.masked_fill(last < kth, float("-inf"))
                    probs = F.softmax(last / temperature, dim=-1).cpu()
                    nxt = int(torch.multinomial(probs, 1, generator=generator))
                yield nxt
                logits, _, state = self(torch.tensor([[nxt]], device=device), state=state, return_state=True)
        finally:
            self.train(was_training)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items() if k != "rnn")  # the layer prints itself
