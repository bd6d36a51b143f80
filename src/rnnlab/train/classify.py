"""The sequence classification task: what `fit` needs (data, model, metrics), presets for the built-in data
sets, loading a trained classifier back, scoring labelled data and predicting labels.

The split (train / validation / test, stratified, seeded) is a pure function of the data and the config,
so `rnnlab eval RUN` rebuilds exactly the test split the run never trained on. The vocabulary, the label
names and the feature normalisation are fitted on the training split and saved in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ..data import DataError
from ..data.batching import SplitBatches
from ..data.sequences import (
    Columns, LabelledSequences, LengthBuckets, collate, feature_stats, load_labelled, stratified_split,
)
from ..data.tokens import TokenVocab
from ..layers import RecurrentConfig
from ..models import SequenceClassifier, SequenceClassifierConfig
from .._fields import opt
from .config import RunConfig, TrainConfig, preset_config
from .device import resolve_device
from .metrics import classification_report
from .task import Loaded, StepLoss, Task, TaskKind

__all__ = [
    "CLASSIFY_PRESETS", "KIND", "ClassifyDataConfig", "ClassifyRunConfig", "ClassifyTask", "LoadedClassifier",
    "classify_config", "prepare_split",
]


@dataclass(slots=True)
class ClassifyDataConfig:
    data: str = opt("builtin:sentiment", "builtin:sentiment | builtin:sentiment-movies | builtin:vowels | "
                                         "builtin:mnist-rows | builtin:mnist-pixels, or a CSV / JSONL file", metavar="PATH")
    tokens: str = opt("word", "text: characters or words", choices=("char", "word"))
    min_count: int = opt(2, "text: tokens seen fewer times in training become <unk>")
    max_len: int = opt(0, "keep each sequence's first N steps (0: all)")
    # user files: which columns hold what (see rnnlab.data.sequences)
    text_column: str = opt("text", "user files: the text column")
    label_column: str = opt("label", "user files: the label column")
    sequence_column: str = opt("sequence", "user files: a column holding a JSON list of vectors per row")
    id_column: str = opt("id", "long-format CSV: the sequence id column")
    step_column: str = opt("step", "long-format CSV: the step column")
    encoding: str = opt("utf-8", "user files: text encoding")
    val_fraction: float = opt(0.1, "validation share (stratified, seeded by --seed)")
    test_fraction: float = opt(0.1, "test share (vowels keeps its own test split)")
    batch: int = opt(32, "B: sequences per batch", metavar="B")

    def columns(self) -> Columns:
        return Columns(self.text_column, self.label_column, self.sequence_column, self.id_column, self.step_column)


def _default_model() -> SequenceClassifierConfig:
    # A user's file has no preset: word tokens read both ways by a small GRU, averaged over the text, with
    # dropout on whole words of the embedding and on the summary, weight decay 0.1 and lr 1e-2 (below). Chosen
    # on validation over the old LSTM 128 / last-state / lr 3e-3 defaults; on a two-class CSV of 4,000
    # sentences: 0.738 test accuracy (three seeds) against 0.653 before and 0.743 for TF-IDF (docs/TASKS.md).
    return SequenceClassifierConfig(embed=64, pooling="mean", embed_dropout=0.3, rnn=RecurrentConfig(
        cell="gru", hidden_size=64, bidirectional=True, dropout=0.5, init="orthogonal"))


@dataclass(slots=True)
class ClassifyRunConfig(RunConfig):
    """Everything that defines a `rnnlab train classify` run (written to config.json)."""

    task: ClassVar[str] = "classify"
    monitor: str = opt("acc", "validation metric for the best checkpoint and early stopping: acc, f1 (higher "
                              "wins) or loss (lower wins; steadier on a small validation split)",
                       choices=("acc", "f1", "loss"))
    data: ClassifyDataConfig = opt(default_factory=ClassifyDataConfig)
    model: SequenceClassifierConfig = opt(default_factory=_default_model)
    train: TrainConfig = opt(default_factory=lambda: TrainConfig(lr=1e-2, max_time=180.0, eval_every=100,
                                                                 patience=8, warmup_steps=50, weight_decay=0.1))


# Defaults per built-in data set, each chosen among candidates by its mean validation score over seeds 0-2
# (benchmarks/classify_select.py; the grid and the test scores of the choice: docs/TASKS.md). Every option the
# defaults above set is spelled out, so a preset does not move when they do. The user's options override them.
CLASSIFY_PRESETS: dict[str, dict[str, Any]] = {
    "builtin:sentiment": dict(data=dict(tokens="word", min_count=2, batch=64),
                              model=dict(embed=128, pooling="max", embed_dropout=0.0,
                                         rnn=dict(cell="gru", hidden_size=128, bidirectional=False, dropout=0.2)),
                              train=dict(max_steps=3000, max_time=None, eval_every=200, patience=6,
                                         weight_decay=0.01, lr=3e-3)),
    "builtin:sentiment-movies": dict(data=dict(tokens="word", min_count=2, batch=32),
                                     model=dict(embed=64, pooling="mean", embed_dropout=0.3,
                                                rnn=dict(cell="gru", hidden_size=64, bidirectional=True,
                                                         dropout=0.5)),
                                     train=dict(max_steps=3000, max_time=None, eval_every=100, patience=8,
                                                weight_decay=0.1, lr=1e-2)),
    "builtin:vowels": dict(data=dict(batch=16, val_fraction=0.15),
                           model=dict(embed=32, pooling="last", embed_dropout=0.0,
                                      rnn=dict(cell="lstm", hidden_size=128, bidirectional=True, dropout=0.5)),
                           train=dict(max_steps=1500, max_time=None, eval_every=25, patience=None, warmup_steps=20,
                                      weight_decay=0.01, lr=3e-3),
                           monitor="loss"),
    "builtin:mnist-rows": dict(data=dict(batch=64),
                               model=dict(embed=64, pooling="last", embed_dropout=0.0,
                                          rnn=dict(cell="lstm", hidden_size=128, bidirectional=False, dropout=0.0)),
                               train=dict(max_steps=1500, max_time=None, eval_every=100, patience=8,
                                          weight_decay=0.01, lr=3e-3)),
    # pixel by pixel (T = 784): the long-sequence benchmark of minGRU/minLSTM's paper; not tuned (issue 17)
    "builtin:mnist-pixels": dict(data=dict(batch=64),
                                 model=dict(embed=16, pooling="last", embed_dropout=0.0,
                                            rnn=dict(cell="lstm", hidden_size=128, bidirectional=False, dropout=0.0)),
                                 train=dict(max_steps=1500, max_time=None, eval_every=100, patience=8,
                                            weight_decay=0.01, lr=3e-3)),
}


def classify_config(data: str, overrides: dict[str, Any] | None = None) -> ClassifyRunConfig:
    """A run config: the defaults, then the data set's preset, then `overrides` ({"model.rnn.cell": "gru"})."""
    return preset_config(ClassifyRunConfig, CLASSIFY_PRESETS, data, overrides)


@dataclass
class Split:
    data: LabelledSequences
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def prepare_split(cfg: ClassifyRunConfig, data: LabelledSequences | None = None) -> Split:
    """The data (read from cfg.data unless given) and its seeded stratified split."""
    d = cfg.data
    if data is None:
        data = load_labelled(d.data, d.columns(), encoding=d.encoding)
    train, val, test = stratified_split(data.targets, d.val_fraction, d.test_fraction, cfg.train.seed, data.test_mask)
    return Split(data, train, val, test)


class Encoder:
    """Items -> model inputs: token ids through the vocabulary, or features standardised with the training
    split's per-feature mean and std. Built on the training split; saved in checkpoints."""

    def __init__(self, kind: str, vocab: TokenVocab | None, mean: list[float] | None, std: list[float] | None,
                 max_len: int = 0) -> None:
        self.kind, self.vocab, self.max_len = kind, vocab, max_len
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.std = None if std is None else np.asarray(std, dtype=np.float32)

    @classmethod
    def fit(cls, items: list, kind: str, tokens: str, min_count: int, max_len: int) -> Encoder:
        if kind == "text":
            return cls(kind, TokenVocab.build(items, tokens, min_count, kind="classifier"), None, None, max_len)
        mean, std = feature_stats(items)
        return cls(kind, None, mean, std, max_len)

    def encode(self, items: list) -> list:
        if self.kind == "text":
            if any(not isinstance(t, str) for t in items):
                raise DataError("this classifier reads text; give text items (--text), not numeric sequences")
            # a text with no tokens (only whitespace) is still one unknown step: the model needs at least one
            out = [self.vocab.encode(t) or [self.vocab.unk] for t in items]
        else:
            if any(not isinstance(a, np.ndarray) or a.ndim != 2 or a.shape[1] != len(self.mean) for a in items):
                raise DataError(f"this classifier reads sequences of {len(self.mean)} features per step; the input "
                                f"does not match")
            out = [(a - self.mean) / self.std for a in items]
        return [s[: self.max_len] for s in out] if self.max_len else out

    def to_json(self) -> dict:
        return {"kind": self.kind, "vocab": self.vocab.to_json() if self.vocab else None,
                "mean": None if self.mean is None else self.mean.tolist(),
                "std": None if self.std is None else self.std.tolist(), "max_len": self.max_len}

    @classmethod
    def from_json(cls, d: dict) -> Encoder:
        vocab = TokenVocab.from_json(d["vocab"], kind="classifier") if d.get("vocab") else None
        return cls(d["kind"], vocab, d.get("mean"), d.get("std"), int(d.get("max_len", 0)))


@torch.no_grad()
def predict_proba(model: SequenceClassifier, encoded: list, batch: int = 256, device=None) -> np.ndarray:
    """(N, C) class probabilities of encoded items, in their order (batched by length for speed)."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    order = np.argsort([len(s) for s in encoded], kind="stable")
    probs = np.zeros((len(encoded), model.config.num_classes), dtype=np.float64)
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        x, lengths = collate([encoded[i] for i in idx])
        logits, _ = model(x.to(device), lengths.to(device))
        probs[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    model.train(was_training)
    return probs


class ClassifyTask(Task):
    """Many-to-one classification: the loop trains on length-bucketed batches of the training split and
    keeps the checkpoint with the best validation accuracy."""

    name = "classify"
    unit = "sequence"
    metrics = ("loss", "acc", "f1")
    monitor = "val_acc"
    monitor_mode = "max"
    plot = ("loss", "cross-entropy (nats)")

    def __init__(self, config: ClassifyRunConfig, *, split: Split | None = None, encoder: Encoder | None = None) -> None:
        self.config = config
        d, t = config.data, config.train
        if config.monitor not in ("acc", "f1", "loss"):
            raise ValueError(f"classify: monitor must be acc, f1 or loss, got {config.monitor!r}")
        self.monitor, self.monitor_mode = f"val_{config.monitor}", "min" if config.monitor == "loss" else "max"
        self.device = resolve_device(t.device)
        self.split = split if split is not None else prepare_split(config)
        data = self.split.data
        self.label_names = data.label_names
        train_items = [data.items[i] for i in self.split.train]
        self.encoder = encoder if encoder is not None else Encoder.fit(train_items, data.kind, d.tokens, d.min_count,
                                                                       d.max_len)
        encoded = self.encoder.encode(data.items)
        targets = data.targets
        self.train_x = [encoded[i] for i in self.split.train]
        self.train_y = torch.from_numpy(targets[self.split.train])
        self.val_x = [encoded[i] for i in self.split.val]
        self.val_y = targets[self.split.val]
        lengths = [len(s) for s in self.train_x]
        # length-bucketed batches; under several processes each takes its part of every global batch
        self.batches = SplitBatches(lambda size: LengthBuckets(lengths, size, seed=t.seed), d.batch)
        m = config.model
        m.num_classes = len(self.label_names)
        if data.kind == "text":
            m.vocab_size, m.n_features = len(self.encoder.vocab), 0
        else:
            m.vocab_size, m.n_features = 0, data.n_features
        torch.manual_seed(t.seed)  # the model's initial weights follow from the seed
        self.model = SequenceClassifier(m).to(self.device)

    def step_loss(self, batch, state) -> StepLoss:
        x, lengths = collate([self.train_x[i] for i in batch])
        _, loss = self.model(x.to(self.device), lengths.to(self.device), self.train_y[batch].to(self.device))
        return StepLoss(loss, None, len(batch))

    def evaluate(self) -> dict[str, float]:
        probs = predict_proba(self.model, self.val_x, device=self.device)
        loss = float(-np.log(np.clip(probs[np.arange(len(self.val_y)), self.val_y], 1e-12, None)).mean())
        r = classification_report(self.val_y, probs.argmax(1), len(self.label_names))
        return {"loss": loss, "acc": r["accuracy"], "f1": r["macro_f1"]}

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def extra_state(self) -> dict[str, Any]:
        return {"labels": self.label_names, "encoder": self.encoder.to_json()}

    def summary(self) -> str:
        d, c = self.split.data, self.config
        counts = ", ".join(f"{n} {int((d.targets == i).sum()):,}" for i, n in enumerate(d.label_names))
        what = (f"{len(self.encoder.vocab):,} {c.data.tokens} tokens (min count {c.data.min_count})"
                if d.kind == "text" else f"{d.n_features} features per step")
        params = sum(p.numel() for p in self.model.parameters())
        return (f"{len(d.items):,} sequences, {len(d.label_names)} classes ({counts}); {what}; split train "
                f"{len(self.split.train):,} / val {len(self.split.val):,} / test {len(self.split.test):,}\n"
                f"model: {c.model.rnn.describe()}, {c.model.pooling} pooling, {params / 1e6:.2f} M parameters, "
                f"backend {self.model.rnn.backend_for().name}")


@dataclass
class LoadedClassifier(Loaded):
    encoder: Encoder   # vocabulary or feature scaling; model: SequenceClassifier, config: ClassifyRunConfig
    labels: list[str]

    def predict_proba(self, items: list) -> np.ndarray:
        return predict_proba(self.model, self.encoder.encode(items))


def _read_state(state: dict, config: ClassifyRunConfig) -> dict:
    return {"encoder": Encoder.from_json(state["encoder"]), "labels": list(state["labels"])}


KIND = TaskKind(
    "classify", "a sequence classifier", "sequence classification (many-to-one)",
    "Train a sequence classifier (embedding or feature projection -> recurrent layer -> pooling -> linear) on "
    "labelled text or numeric sequences, then score it on the test split.",
    ClassifyRunConfig, ClassifyTask, SequenceClassifier, LoadedClassifier, _read_state, restore=("encoder",),
    presets=CLASSIFY_PRESETS)
