"""Image captioning: what `fit` needs (data, Captioner, metrics), loading a trained captioner, captioning
images, and BLEU / WER on held-out images (their contact sheet is rnnlab.viz.contact_sheet).

Data: `builtin:emoji` (rnnlab.data.emoji: held-out emoji for validation and test), or a labels file (TSV/CSV of
`filename, caption`, several rows per image allowed) whose IMAGES are split into training and validation by a
seeded shuffle (all captions of an image stay on one side). Every (image, caption) row is a training pair; the
held-out images are scored against all of their captions. The token vocabulary (words by default) is built
from the training captions and saved in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..data import DataError
from ..data.batching import ShuffledBatches, split_rows
from ..data.emoji import caption_of, emoji_code_points, emoji_split, render_emoji
from ..data.images import DEFAULT_MAX_PIXELS, read_image_rgb, read_labels
from ..data.tokens import EOS, TokenVocab
from ..models.captioner import Captioner, CaptionerConfig
from .._fields import opt
from .config import RunConfig, TrainConfig
from .device import resolve_device
from .seq_metrics import bleu, wer
from .task import Loaded, StepLoss, Task, TaskKind, same_size

__all__ = [
    "BUILTIN_CAPTIONS", "KIND", "CaptionDataConfig", "CaptionRunConfig", "CaptionTask", "CaptionedImage",
    "LoadedCaptioner", "caption_images", "evaluate_captions", "load_caption_split",
]

BUILTIN_CAPTIONS = "builtin:emoji"


@dataclass(slots=True)
class CaptionDataConfig:
    data: str = opt(BUILTIN_CAPTIONS, f"{BUILTIN_CAPTIONS}, or a TSV/CSV of `filename, caption` (or its folder)",
                    metavar="PATH")
    level: str = opt("word", "caption tokens: words or characters", choices=("word", "char"))
    batch: int = opt(32, "B: image-caption pairs per batch", metavar="B")
    val_fraction: float = opt(0.1, "your data: share of the images held out for validation")
    max_len: int = opt(24, "longest generated caption, in tokens")
    shift: int = opt(6, "augmentation: training images are shifted by up to this many pixels (0: none)")
    limit: int | None = opt(None, "builtin:emoji: use only the first N emoji (a quick look)")
    max_pixels: int = opt(DEFAULT_MAX_PIXELS, "your data: the largest image accepted, in pixels (checked before "
                          "decoding: a guard against decompression bombs)", flags=("--max-image-pixels",))


@dataclass(slots=True)
class CaptionRunConfig(RunConfig):
    task: ClassVar[str] = "caption"
    data: CaptionDataConfig = opt(default_factory=CaptionDataConfig)
    model: CaptionerConfig = opt(default_factory=CaptionerConfig)
    train: TrainConfig = opt(default_factory=lambda: TrainConfig(lr=2e-3, max_time=300.0, eval_every=200,
                                                                 warmup_steps=100, patience=6, weight_decay=0.05))


class CaptionedImage(NamedTuple):
    image: np.ndarray        # (3, S, S) float32 in [0, 1]
    captions: list[str]      # one or more true captions
    name: str                # a file name, or "U+1F600"


def load_caption_split(config: CaptionRunConfig) -> dict[str, list[CaptionedImage]]:
    """{"train", "val"[, "test"]} captioned images (builtin:emoji has a test split; user data train/val only)."""
    d, S = config.data, config.model.image_size
    if d.data == BUILTIN_CAPTIONS:
        cps = emoji_code_points()
        if d.limit is not None:
            cps = cps[: d.limit]
        cps, images = render_emoji(cps, S)
        by_cp = dict(zip(cps, images))
        return {k: [CaptionedImage(by_cp[cp], [caption_of(cp)], f"U+{cp:04X}") for cp in v]
                for k, v in emoji_split(cps, config.train.seed).items()}
    return split_images(load_captioned_images(d.data, S, d.max_pixels), d.val_fraction, config.train.seed)


def load_captioned_images(path: str | Path, size: int = 64, max_pixels: int | None = None) -> list[CaptionedImage]:
    """A user's captioned images: rows with the same filename are one image with several captions."""
    grouped: dict[Path, list[str]] = {}
    for image, caption in read_labels(path, "caption"):
        grouped.setdefault(image, []).append(caption)
    return [CaptionedImage(read_image_rgb(p, size, max_pixels), caps, str(p)) for p, caps in grouped.items()]


def split_images(items: list[CaptionedImage], val_fraction: float, seed: int) -> dict[str, list[CaptionedImage]]:
    tr, va = split_rows(len(items), val_fraction, seed)
    return {"train": [items[i] for i in tr], "val": [items[i] for i in va]}


class CaptionBatch(NamedTuple):
    images: Tensor    # (B, 3, S, S)
    targets: Tensor   # (B, T) caption ids, <eos>, then <pad>
    lengths: Tensor   # (B,) including <eos>


def shift_images(images: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each (3, S, S) image moved by up to `shift` pixels in x and y, the uncovered border white."""
    if shift <= 0:
        return images
    N, _, S, _ = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (shift, shift), (shift, shift)), constant_values=1.0)
    dx, dy = rng.integers(0, 2 * shift + 1, size=(2, N))
    return np.stack([padded[i, :, dy[i]: dy[i] + S, dx[i]: dx[i] + S] for i in range(N)])


def collate_captions(pairs: list[tuple[np.ndarray, str]], vocab: TokenVocab, device,
                     shift: int = 0, rng: np.random.Generator | None = None) -> CaptionBatch:
    ids = [vocab.encode(c) + [EOS] for _, c in pairs]
    T = max(len(i) for i in ids)
    targets = torch.zeros(len(ids), T, dtype=torch.long)
    for b, i in enumerate(ids):
        targets[b, : len(i)] = torch.tensor(i)
    images = np.stack([im for im, _ in pairs])
    if shift:
        images = shift_images(images, shift, rng)
    images = torch.from_numpy(np.ascontiguousarray(images))
    return CaptionBatch(images.to(device), targets.to(device), torch.tensor([len(i) for i in ids], device=device))


class CaptionTask(Task):
    """Images -> captions. Validation: teacher-forced loss (picks `best`), plus greedy BLEU and WER."""

    name = "caption"
    unit = "image"
    metrics = ("loss", "bleu", "wer")
    monitor = "val_loss"
    plot = ("loss", "cross-entropy (nats per token)")

    def __init__(self, config: CaptionRunConfig, *, vocab: TokenVocab | None = None,
                 splits: dict[str, list[CaptionedImage]] | None = None) -> None:
        self.config = config
        d, t, m = config.data, config.train, config.model
        self.device = resolve_device(t.device)
        splits = splits if splits is not None else load_caption_split(config)
        self.train, self.val = splits["train"], splits["val"]
        if not self.train or not self.val:
            raise DataError(f"{d.data}: need images to train on and to validate on; got {len(self.train)} and {len(self.val)}")
        self.vocab = vocab or TokenVocab.build((c for item in self.train for c in item.captions), d.level)
        pairs = [(item.image, c) for item in self.train for c in item.captions]
        # augmentation draws from (seed, epoch, position[, part of the global batch]): the same batches again
        # after a resume, and different shifts on each process's part
        self.batches = ShuffledBatches(pairs, d.batch, lambda b: collate_captions(
            b, self.vocab, self.device, d.shift, np.random.default_rng(self._augment_key())), t.seed)
        self.pairs = len(pairs)
        m.vocab_size = len(self.vocab)
        torch.manual_seed(t.seed)
        self.model = Captioner(m).to(self.device)

    def _augment_key(self) -> list[int]:
        b = self.batches
        return [self.config.train.seed, b.epoch, b.pos] + ([b.part] if b.parts > 1 else [])

    def step_loss(self, batch: CaptionBatch, state) -> StepLoss:
        _, loss = self.model(batch.images, batch.targets, batch.lengths)
        return StepLoss(loss, None, len(batch.lengths))

    def evaluate(self) -> dict[str, float]:
        return evaluate_captions(self.model, self.vocab, self.val, self.config.data.batch,
                                 max_len=self.config.data.max_len, device=self.device)

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def extra_state(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_json()}

    def summary(self) -> str:
        m = self.config.model
        params = sum(p.numel() for p in self.model.parameters())
        return (f"{len(self.train)} training images ({self.pairs} captions), {len(self.val)} validation images; "
                f"{len(self.vocab)} {self.config.data.level} tokens; model: CNN -> {m.features} features -> "
                f"{m.rnn.describe()}, {params / 1e6:.2f} M parameters, device {self.device}")


@torch.no_grad()
def caption_images(model: Captioner, vocab: TokenVocab, images: np.ndarray | Tensor, *, method: str = "greedy",
                   temperature: float = 1.0, beam: int = 5, max_len: int = 24, batch: int = 64,
                   device: torch.device | str = "cpu", seed: int | None = 0) -> list[str]:
    """Captions of (N, 3, S, S) images."""
    model.eval()
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    images = torch.as_tensor(np.asarray(images))
    out = []
    for i in range(0, len(images), batch):
        ids = model.generate(images[i: i + batch].to(device), max_len, method=method, temperature=temperature,
                             beam=beam, generator=generator)
        out += [vocab.decode(s) for s in ids]
    return out


@torch.no_grad()
def evaluate_captions(model: Captioner, vocab: TokenVocab, items: list[CaptionedImage], batch: int = 32, *,
                      method: str = "greedy", beam: int = 5, max_len: int = 24, device="cpu",
                      return_texts: bool = False):
    """{"loss" (teacher-forced, nats per token), "bleu" (0-100), "wer"} on captioned images."""
    was = model.training
    model.eval()
    pairs = [(item.image, c) for item in items for c in item.captions]
    total, count = 0.0, 0
    for i in range(0, len(pairs), batch):
        b = collate_captions(pairs[i: i + batch], vocab, device)
        _, loss = model(b.images, b.targets, b.lengths)
        n = int(b.lengths.sum())
        total, count = total + float(loss) * n, count + n
    hyps = caption_images(model, vocab, np.stack([it.image for it in items]), method=method, beam=beam,
                          max_len=max_len, batch=batch, device=device)
    model.train(was)
    refs = [it.captions for it in items]
    # WER against each image's first caption (the one reference a WER can use)
    out = {"loss": total / count, "bleu": bleu(hyps, refs), "wer": wer(hyps, [r[0] for r in refs])}
    return (out, hyps) if return_texts else out


@dataclass
class LoadedCaptioner(Loaded):
    vocab: TokenVocab  # model: Captioner, config: CaptionRunConfig


def _read_state(state: dict, config: CaptionRunConfig) -> dict:
    return same_size(TokenVocab.from_json(state["vocab"], kind="decoder"), config.model.vocab_size)


KIND = TaskKind(
    "caption", "an image captioner", "image captioning (CNN encoder + recurrent decoder)",
    "Train an image captioner: a small CNN trained from scratch encodes the image, its feature vector starts a "
    "recurrent decoder that writes the caption (teacher forcing). Validation: loss, BLEU and word error rate on "
    "held-out images.",
    CaptionRunConfig, CaptionTask, Captioner, LoadedCaptioner, _read_state, restore=("vocab",))
