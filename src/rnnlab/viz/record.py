"""A Recording: what a character model computed over a text, step by step, ready to be drawn.

It holds numbers only (numpy, float32): for every (layer, direction) the recorded gates and states of the
single sequence, each (T, H), and the model's next-character distribution at every step (its top k). The
values come from the layer's own recording (`record_gates=True, return_states=True`, an rnnlab.Trace); no
cell equation is recomputed here.

    quantities[(l, d)]  {"c": (T, H), "h": (T, R), "i": ..., "f": ..., "g": ..., "o": ...}   (LSTM)
                        {"h", "r", "z", "n"} (GRU), {"h"} (RNN), {"h", "z", "h~"} (minGRU),
                        {"h", "f", "i", "h~"} (minLSTM)
    top_ids, top_probs  (T, k): the k most likely next characters after reading character t
    next_prob           (T,): the probability given to the character that actually follows (NaN at the end)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import CharVocab, DataError
from ..models import CharLM

__all__ = ["Recording", "record_charlm"]

GATE_ORDER = {"lstm": ("c", "h", "i", "f", "g", "o"), "gru": ("h", "r", "z", "n"), "rnn": ("h",),
              "mingru": ("h", "z", "h~"), "minlstm": ("h", "f", "i", "h~")}


@dataclass
class Recording:
    text: str
    cell: str                                   # "lstm" | "gru" | "rnn" | "mingru" | "minlstm"
    quantities: dict[tuple[int, int], dict[str, np.ndarray]]
    chars: list[str] = field(default_factory=list)   # the vocabulary, for top_ids
    top_ids: np.ndarray | None = None           # (T, k) int
    top_probs: np.ndarray | None = None         # (T, k) float
    next_prob: np.ndarray | None = None         # (T,)
    info: dict = field(default_factory=dict)    # what the page shows about the model (run, bpc, sizes)

    def __post_init__(self) -> None:
        T = len(self.text)
        for key, qs in self.quantities.items():
            for name, v in qs.items():
                if v.ndim != 2 or v.shape[0] != T:
                    raise ValueError(f"Recording: {name} of {key} must be (T={T}, H), got {v.shape}")

    @property
    def keys(self) -> list[tuple[int, int]]:
        return sorted(self.quantities)

    @property
    def names(self) -> list[str]:
        """Quantity names in display order (states first, then gates)."""
        present = self.quantities[self.keys[0]]
        return [n for n in GATE_ORDER[self.cell] if n in present]

    @property
    def gate_names(self) -> list[str]:
        return [n for n in self.names if n not in ("c", "h")]


@torch.no_grad()
def record_charlm(model: CharLM, vocab: CharVocab, text: str, *, top: int = 5, info: dict | None = None) -> Recording:
    """Run `model` over `text` (one sequence from a zero state) recording every gate and state.

    The layer is asked for its recording (rnnlab.Trace); the "auto" backend serves it with the fused kernel,
    which records at little cost. The head turns h_t into the next-character distribution.
    """
    if len(text) < 2:
        raise DataError("the text to inspect needs at least 2 characters")
    ids = vocab.encode(text, what="the text to inspect")
    was_training = model.training
    model.eval()
    try:
        device = model.head.weight.device
        x = model.embed(ids.to(device)[:, None])  # (T, 1, embed): time-major, the layer's own layout
        out, _, trace = model.rnn(x, record_gates=True, return_states=True)
        probs = torch.softmax(model.head(out[:, 0]).float(), dim=-1)  # (T, C)
    finally:
        model.train(was_training)
    quantities = {}
    for key in sorted(trace.keys()):
        rec = trace[key]
        quantities[key] = {name: v[0].float().cpu().numpy() for name, v in {**rec.states, **rec.gates}.items()}
    k = min(top, probs.shape[1])
    top_probs, top_ids = probs.topk(k, dim=-1)
    nxt = torch.full((len(ids),), float("nan"))
    nxt[:-1] = probs[:-1].cpu().gather(1, ids[1:, None])[:, 0]
    return Recording(text, model.config.rnn.cell, quantities, list(vocab.chars), top_ids.cpu().numpy(),
                     top_probs.cpu().numpy(), nxt.numpy(), dict(info or {}))
