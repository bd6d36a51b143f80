"""The character-level language model task: what `fit` needs (data, model, metrics), loading a trained
model back from a checkpoint, evaluating bits per character, and sampling text."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..data import CharVocab, DataError, TextStreams, eval_batches, read_corpus_ids, split_ids
from ..models import CharLM
from .config import CharLMRunConfig
from .device import resolve_device
from .task import Loaded, Recipe, StepLoss, Task, TaskKind, same_size

__all__ = ["KIND", "CharLMTask", "LoadedCharLM", "evaluate_ids", "sample_text"]

LN2 = math.log(2.0)


class CharLMTask(Task):
    """Next-character prediction on a text, cut into parallel streams (truncated BPTT).

    text/vocab: given when resuming or testing; otherwise read from config.data and built from the text.
    """

    name = "charlm"
    unit = "char"
    metrics = ("loss", "bpc")
    monitor = "val_bpc"
    plot = ("bpc", "bits per character")

    def __init__(self, config: CharLMRunConfig, *, text: str | None = None, vocab: CharVocab | None = None) -> None:
        self.config = config
        d, t = config.data, config.train
        self.device = resolve_device(t.device)
        if text is None:  # read in pieces into compact ids: the text itself is never held whole
            ids, self.vocab = read_corpus_ids(d.data, d.encoding, vocab)
        else:
            self.vocab = vocab if vocab is not None else CharVocab.from_text(text)
            ids = self.vocab.encode(text, what=d.data).to(self.vocab.id_dtype)
        train_ids, val_ids = split_ids(ids, d.val_fraction)
        self.batches = TextStreams(train_ids.to(self.device), d.batch, d.seq_len, seed=t.seed)
        self.val_ids = val_ids[: d.eval_chars + 1].to(self.device)
        self.chars = len(ids)
        config.model.vocab_size = len(self.vocab)
        torch.manual_seed(t.seed)  # the model's initial weights follow from the seed
        self.model = CharLM(config.model).to(self.device)

    def step_loss(self, batch, state) -> StepLoss:
        _, loss, state = self.model(batch.x, batch.y, state, return_state=True)
        return StepLoss(loss, state, batch.x.numel())

    def evaluate(self) -> dict[str, float]:
        return evaluate_ids(self.model, self.val_ids, self.config.data.batch, self.config.data.seq_len)

    def describe(self, loss: float) -> dict[str, float]:
        return {"loss": loss, "bpc": loss / LN2}

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def extra_state(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_json()}

    def summary(self) -> str:
        params = sum(p.numel() for p in self.model.parameters())
        return (f"{self.chars:,} characters, {len(self.vocab)} distinct; model: {self.config.model.rnn.describe()}, "
                f"{params / 1e6:.2f} M parameters, backend {self.model.rnn.backend_for().name}, device {self.device}")


@torch.no_grad()
def evaluate_ids(model: CharLM, ids: Tensor, batch: int = 32, seq_len: int = 100) -> dict[str, float]:
    """Mean loss (nats) and bits per character of `model` predicting every next character of `ids`,
    read as up to `batch` streams with the state carried across chunks of `seq_len`."""
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    for b in eval_batches(ids, batch, seq_len):
        _, loss, state = model(b.x, b.y, None if b.reset_state else state, return_state=True)
        total += loss.item() * b.y.numel()
        count += b.y.numel()
    model.train(was_training)
    return {"loss": total / count, "bpc": total / count / LN2}


@dataclass
class LoadedCharLM(Loaded):
    vocab: CharVocab  # model: CharLM, config: CharLMRunConfig


def _read_state(state: dict, config: CharLMRunConfig) -> dict:
    return same_size(CharVocab.from_json(state["vocab"]), config.model.vocab_size)


KIND = TaskKind(
    "charlm", "a character language model", "character-level language model",
    "Train a character-level language model (embedding -> recurrent layer -> linear) on a text, with truncated "
    "BPTT, then print a sample.",
    CharLMRunConfig, CharLMTask, CharLM, LoadedCharLM, _read_state, restore=("vocab",),
    recipes={"awd": Recipe(
        "the AWD-LSTM recipe (Merity et al. 2018) for runs that overfit (a small corpus, a long budget, a large "
        "model): DropConnect 0.5 on W_hh (their wdrop), locked dropout 0.1 on each layer's input (their "
        "dropouti/dropouth), dropout 0.1 on the embeddings and before the output layer; the sizes and the "
        "optimizer stay yours. Measured (docs/REGULARIZE.md): on a 2,000-step 1 x 256 char-LM it was 0.09 "
        "bits/char worse than none (too much for so short a run), where --weight-drop 0.2 alone was 0.04 better",
        {"model": {"rnn": {"weight_drop": 0.5, "input_dropout": 0.1, "dropout": 0.1}}})})


def sample_text(
    model: CharLM,
    vocab: CharVocab,
    prime: str = "\n",
    length: int = 500,
    *,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int | None = 0,
) -> Iterator[str]:
    """Yield `length` characters continuing `prime`, one at a time (print them as they come).

    A fixed seed gives the same text every time (on the same device); seed None draws a fresh one.
    Checks everything before the first character, so errors come before any output.
    """
    if temperature < 0:
        raise DataError(f"temperature must be >= 0 (0 picks the most likely character), got {temperature}")
    if top_k is not None and top_k < 1:
        raise DataError(f"top-k must be >= 1, got {top_k}")
    if not prime:
        raise DataError("the prime text is empty; give at least one character (for example --prime 'def ')")
    if length < 0:
        raise DataError(f"length must be >= 0, got {length}")
    ids = vocab.encode(prime, what="the prime text")
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return (vocab.chars[i] for i in model.generate(ids, length, temperature=temperature, top_k=top_k,
                                                   generator=generator))
