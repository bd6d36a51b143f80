"""Handwriting recognition with CTC: what `fit` needs (data, CTCRecognizer, metrics), loading a trained
recognizer from a checkpoint, transcribing images, and measuring character error rate.

Data: `builtin:mnist-strings` (rnnlab.data.mnist_strings: training strings are generated fresh for every
batch from the training pool of digit images; validation and test strings come from their own pools), or
a labels file (TSV/CSV of `filename, transcription`, rnnlab.data.images) whose rows are split into training
and validation by a seeded shuffle. The alphabet (ids 1..C; 0 is the CTC blank) is the sorted set of
characters of the training transcriptions, or --alphabet, and is saved in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..data import CharVocab, DataError
from ..data.batching import ShuffledBatches, split_rows
from ..data.images import DEFAULT_MAX_PIXELS, read_labels, read_line_image
from ..data.mnist_strings import MnistStrings, load_mnist_digits
from ..models.ctc import WIDTH_STRIDE, CTCRecognizer, CTCRecognizerConfig, greedy_decode, min_frames, prefix_beam_search
from .._fields import opt
from .config import RunConfig, TrainConfig
from .device import resolve_device
from .seq_metrics import cer, sequence_accuracy
from .task import Loaded, StepLoss, Task, TaskKind, same_size

__all__ = [
    "BUILTIN_LINES", "KIND", "LineBatch", "LineDataConfig", "LoadedRecognizer", "RecognizeRunConfig", "RecognizeTask",
    "check_alphabet", "collate_lines", "evaluate_lines", "load_line_samples", "transcribe",
]

BUILTIN_LINES = "builtin:mnist-strings"


@dataclass(slots=True)
class LineDataConfig:
    data: str = opt(BUILTIN_LINES, f"{BUILTIN_LINES}, or a TSV/CSV of `filename, transcription` (or its folder)",
                    metavar="PATH")
    alphabet: str | None = opt(None, "the characters the model may output (default: those of the training "
                                     "transcriptions; others are then an error naming them)")
    batch: int = opt(32, "B: images per batch", metavar="B")
    val_fraction: float = opt(0.1, "your data: share of the rows held out for validation")
    val_size: int = opt(500, "mnist-strings: validation strings (from the validation digit pool)")
    test_size: int = opt(1000, "mnist-strings: test strings scored by `rnnlab eval` (from the test digit pool)")
    min_len: int = opt(3, "mnist-strings: shortest string, in digits")
    max_len: int = opt(10, "mnist-strings: longest string, in digits")
    max_pixels: int = opt(DEFAULT_MAX_PIXELS, "your data: the largest image accepted, in pixels (checked before "
                          "decoding: a guard against decompression bombs)", flags=("--max-image-pixels",))


@dataclass(slots=True)
class RecognizeRunConfig(RunConfig):
    task: ClassVar[str] = "recognize"
    data: LineDataConfig = opt(default_factory=LineDataConfig)
    model: CTCRecognizerConfig = opt(default_factory=CTCRecognizerConfig)
    # A step budget, so the result does not depend on the machine's speed. Measured (README "Handwriting
    # recognition"): 1,500 steps of 32 fresh strings reach a test CER of 2.5 % on mnist-strings.
    train: TrainConfig = opt(default_factory=lambda: TrainConfig(lr=3e-3, max_steps=1500, max_time=None,
                                                                 eval_every=250, warmup_steps=100, patience=6))


class Sample(NamedTuple):
    image: np.ndarray   # (H, W) float32, ink 1
    text: str
    name: str           # where it came from (a file name, or "mnist-strings test #12")


class LineBatch(NamedTuple):
    images: Tensor          # (B, 1, H, W_max) zero-padded on the right
    widths: Tensor          # (B,) int64
    labels: Tensor          # (sum of label lengths,) int64, ids 1..C
    label_lengths: Tensor   # (B,)
    texts: list[str]


def collate_lines(samples: list[Sample], vocab: CharVocab, device: torch.device | str = "cpu") -> LineBatch:
    H = samples[0].image.shape[0]
    W = max(s.image.shape[1] for s in samples)
    W += -W % WIDTH_STRIDE
    images = np.zeros((len(samples), 1, H, W), dtype=np.float32)
    for i, s in enumerate(samples):
        images[i, 0, :, : s.image.shape[1]] = s.image
    ids = [vocab.encode(s.text, what=s.name) + 1 for s in samples]  # +1: class 0 is the blank
    return LineBatch(
        torch.from_numpy(images).to(device), torch.tensor([s.image.shape[1] for s in samples], device=device),
        torch.cat(ids).to(device), torch.tensor([len(i) for i in ids], device=device), [s.text for s in samples],
    )


def check_alphabet(vocab: CharVocab, samples: list[Sample], fix: str) -> None:
    """Every transcription uses only the alphabet's characters, or a DataError naming the first row and
    the characters."""
    for s in samples:
        unseen = vocab.unseen(s.text)
        if unseen:
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unseen[:8])
            raise DataError(f"{s.name}: the transcription {s.text!r} has {len(unseen)} character(s) outside the "
                            f"alphabet {''.join(vocab.chars)!r}: {shown}; {fix}")


def check_width(sample: Sample) -> None:
    """CTC needs a frame per character (and a blank between repeats): reject images too narrow for their text."""
    need = min_frames(sample.text) * WIDTH_STRIDE
    if sample.image.shape[1] < need:
        raise DataError(
            f"{sample.name}: {sample.image.shape[1]} px wide at height {sample.image.shape[0]}, too narrow for its "
            f"{len(sample.text)}-character transcription under CTC; the minimum width is {need} px "
            f"(at this height); crop less tightly or split the line"
        )


def load_line_samples(path: str | Path, height: int = 32, max_pixels: int | None = None) -> list[Sample]:
    """A user's labelled line images, each checked: readable, within max_pixels, non-empty transcription,
    wide enough."""
    samples = []
    for image, text in read_labels(path, "transcription"):
        s = Sample(read_line_image(image, height, max_pixels), text, str(image))
        check_width(s)
        samples.append(s)
    return samples


def _generated(gen: MnistStrings, n: int) -> list[Sample]:
    return [Sample(s.image, s.text, f"mnist-strings {gen.split} #{i}") for i, s in
            ((i, gen.sample(i)) for i in range(n))]


class GeneratedBatches:
    """Endless fresh mnist-strings training batches; batch k holds strings k*B .. k*B+B-1 (exact resume).

    Under several processes (`distribute`) global batch k holds strings k*G .. k*G+G-1 (G = B x world x
    accumulate) and micro-step m of rank r generates its part j = r * accumulate + m, strings k*G + j*B ..
    k*G + (j+1)*B - 1: every rank draws strings of its own, and together exactly one process's batch of G."""

    def __init__(self, gen: MnistStrings, batch: int, vocab: CharVocab, device: torch.device) -> None:
        self.gen, self.batch, self.vocab, self.device, self.next = gen, batch, vocab, device, 0
        self.rank, self.parts, self.accumulate, self.micro, self.share = 0, 1, 1, 0, 1.0

    def distribute(self, rank: int, world: int, accumulate: int = 1) -> None:
        self.rank, self.parts, self.accumulate, self.micro = rank, world * accumulate, accumulate, 0
        self.share = 1.0 / self.parts

    def __next__(self) -> LineBatch:
        k, B = self.next, self.batch
        first = k * B * self.parts + (self.rank * self.accumulate + self.micro) * B
        self.micro = (self.micro + 1) % self.accumulate
        if self.micro == 0:
            self.next += 1
        strings = (self.gen.sample(i) for i in range(first, first + B))
        return collate_lines([Sample(s.image, s.text, "mnist-strings") for s in strings], self.vocab, self.device)

    def state_dict(self) -> dict:
        return {"next": self.next}

    def load_state_dict(self, state: dict) -> None:
        self.next, self.micro = int(state["next"]), 0


class RecognizeTask(Task):
    """Line images -> transcriptions with CTC. Validation: greedy-decoded CER, which picks `best`."""

    name = "recognize"
    unit = "image"
    metrics = ("loss", "cer", "seq_acc")
    monitor = "val_cer"
    plot = ("loss", "CTC loss (nats per label character)")

    def __init__(self, config: RecognizeRunConfig, *, vocab: CharVocab | None = None,
                 digits: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.config = config
        d, t, m = config.data, config.train, config.model
        self.device = resolve_device(t.device)
        if d.alphabet is not None and len(set(d.alphabet)) != len(d.alphabet):
            raise DataError(f"--alphabet repeats characters: {d.alphabet!r}; list each character once")
        if d.data == BUILTIN_LINES:
            digits = digits if digits is not None else load_mnist_digits()
            kw = dict(seed=t.seed, min_len=d.min_len, max_len=d.max_len, digits=digits)
            train_gen = MnistStrings("train", **kw)
            self.val = _generated(MnistStrings("val", **kw), d.val_size)
            self.vocab = vocab or CharVocab(d.alphabet or "0123456789")
            self.batches = GeneratedBatches(train_gen, d.batch, self.vocab, self.device)
            self.train_size = None  # endless
        else:
            samples = load_line_samples(d.data, m.height, d.max_pixels)
            tr, va = split_rows(len(samples), d.val_fraction, t.seed)
            train = [samples[i] for i in tr]
            self.val = [samples[i] for i in va]
            if vocab is not None:
                self.vocab = vocab
            elif d.alphabet:
                self.vocab = CharVocab(d.alphabet)
            else:
                self.vocab = CharVocab.from_text("".join(s.text for s in train))
            check_alphabet(self.vocab, samples, "add them to --alphabet, or correct the transcription"
                           if vocab is None else "the model cannot output them; correct the transcription")
            self.batches = ShuffledBatches(train, d.batch, lambda b: collate_lines(b, self.vocab, self.device), t.seed)
            self.train_size = len(train)
        m.num_classes = len(self.vocab)
        torch.manual_seed(t.seed)
        self.model = CTCRecognizer(m).to(self.device)

    def step_loss(self, batch: LineBatch, state) -> StepLoss:
        _, _, loss = self.model(batch.images, batch.widths, batch.labels, batch.label_lengths)
        return StepLoss(loss, None, len(batch.texts))

    def evaluate(self) -> dict[str, float]:
        return evaluate_lines(self.model, self.vocab, self.val, self.config.data.batch, device=self.device)

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def extra_state(self) -> dict[str, Any]:
        return {"alphabet": self.vocab.to_json()}

    def summary(self) -> str:
        params = sum(p.numel() for p in self.model.parameters())
        data = "fresh strings every batch from the training digit pool" if self.train_size is None else \
            f"{self.train_size} training images"
        return (f"{data}, {len(self.val)} validation images; alphabet {''.join(self.vocab.chars)!r}; model: CNN + "
                f"{self.config.model.rnn.describe()}, {params / 1e6:.2f} M parameters, device {self.device}")


@torch.no_grad()
def _decode(model: CTCRecognizer, vocab: CharVocab, batch: LineBatch, beam: int) -> tuple[list[str], float]:
    log_probs, frames, loss = model(batch.images, batch.widths, batch.labels, batch.label_lengths)
    if beam <= 1:
        seqs = greedy_decode(log_probs, frames)
    else:
        seqs = [list(prefix_beam_search(log_probs[b, : int(frames[b])], beam)[0][0]) for b in range(len(frames))]
    return [vocab.decode(i - 1 for i in s) for s in seqs], float(loss)


@torch.no_grad()
def evaluate_lines(model: CTCRecognizer, vocab: CharVocab, samples: list[Sample], batch: int = 32, *,
                   beam: int = 1, device: torch.device | str = "cpu", return_texts: bool = False):
    """{"loss", "cer", "seq_acc"} of `model` on labelled samples (greedy decoding, or prefix beam search when
    beam > 1); with return_texts also the decoded texts."""
    was = model.training
    model.eval()
    hyps, total = [], 0.0
    for i in range(0, len(samples), batch):
        chunk = samples[i: i + batch]
        texts, loss = _decode(model, vocab, collate_lines(chunk, vocab, device), beam)
        hyps += texts
        total += loss * len(chunk)
    model.train(was)
    refs = [s.text for s in samples]
    out = {"loss": total / len(samples), "cer": cer(hyps, refs), "seq_acc": sequence_accuracy(hyps, refs)}
    return (out, hyps) if return_texts else out


@torch.no_grad()
def transcribe(model: CTCRecognizer, vocab: CharVocab, images: list[np.ndarray], *, beam: int = 1,
               device: torch.device | str = "cpu") -> list[str]:
    """Transcriptions of (H, W) ink-1 images (rnnlab.data.images.read_line_image)."""
    model.eval()
    out = []
    for img in images:
        W = img.shape[1] + (-img.shape[1] % WIDTH_STRIDE)
        x = np.zeros((1, 1, img.shape[0], W), dtype=np.float32)
        x[0, 0, :, : img.shape[1]] = img
        log_probs, frames, _ = model(torch.from_numpy(x).to(device), torch.tensor([img.shape[1]], device=device))
        seq = greedy_decode(log_probs, frames)[0] if beam <= 1 else list(prefix_beam_search(log_probs[0, : int(frames[0])], beam)[0][0])
        out.append(vocab.decode(i - 1 for i in seq))
    return out


def builtin_test_samples(config: RecognizeRunConfig, split: str = "test", limit: int | None = None) -> list[Sample]:
    """The run's held-out mnist-strings (its seed and lengths): test_size test strings, or val_size validation."""
    d = config.data
    gen = MnistStrings(split, seed=config.train.seed, min_len=d.min_len, max_len=d.max_len)
    n = d.test_size if split == "test" else d.val_size
    return _generated(gen, n if limit is None else min(n, limit))


@dataclass
class LoadedRecognizer(Loaded):
    vocab: CharVocab  # the alphabet; model: CTCRecognizer, config: RecognizeRunConfig


def _read_state(state: dict, config: RecognizeRunConfig) -> dict:
    return same_size(CharVocab.from_json(state["alphabet"]), config.model.num_classes, "alphabet")


KIND = TaskKind(
    "recognize", "a handwriting recognizer", "handwriting recognition (CNN + bidirectional RNN + CTC)",
    "Train a handwriting recognizer: a small CNN reads the image's columns, a bidirectional recurrent layer reads "
    "them in both directions, CTC aligns the output with the transcription. Validation: character error rate "
    "(greedy decoding).",
    RecognizeRunConfig, RecognizeTask, CTCRecognizer, LoadedRecognizer, _read_state, restore=("vocab",))
