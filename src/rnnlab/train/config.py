"""Every default of a training run, in one place: data, model (rnnlab.models.CharLMConfig), training.

Configs are typed dataclasses; a run folder's config.json is their resolved values, and reading one back
rejects unknown keys (a typo in a hand-edited config is an error, not a silently ignored option).
"""

from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from ..models.charlm import CharLMConfig

__all__ = ["CharLMRunConfig", "TextDataConfig", "TrainConfig", "from_dict", "versions"]

C = TypeVar("C")


@dataclass
class TextDataConfig:
    data: str = "builtin:pystdlib"  # a file, a folder of text files, or builtin:pystdlib | pydoc | kjv
    encoding: str = "utf-8"          # how the files are decoded
    val_fraction: float = 0.05       # the last 5% of the text is held out for validation
    seq_len: int = 100               # T: characters per chunk (truncated BPTT length)
    batch: int = 32                  # B: parallel streams
    eval_chars: int = 100_000        # validation characters scored at each evaluation (the split's first ones)


@dataclass
class TrainConfig:
    lr: float = 3e-3                 # AdamW peak learning rate
    weight_decay: float = 0.01       # AdamW decoupled weight decay, on matrices only (not biases, gains)
    beta1: float = 0.9
    beta2: float = 0.99
    clip: float = 1.0                # gradient-norm clipping threshold
    warmup_steps: int = 100          # linear warm-up from lr/warmup_steps to lr
    decay: str = "cosine"            # "cosine" (to min_lr_ratio * lr at the end of the budget) | "none"
    min_lr_ratio: float = 0.1
    max_steps: int | None = None     # stop after this many steps; if set, the schedule follows steps
    max_time: float | None = 180.0   # stop after this many seconds (wall clock, evaluations included)
    eval_every: int = 200            # steps between evaluations (each logs a line and saves `last`)
    patience: int | None = 10        # stop after this many evaluations without improvement (None: never)
    min_delta: float = 0.0           # an improvement must beat the best by more than this
    seed: int = 0                    # seeds the model's init, dropout and data offsets
    device: str = "cpu"

    def check(self) -> None:
        if self.lr <= 0 or self.clip <= 0:
            raise ValueError(f"training: lr and clip must be > 0, got lr={self.lr}, clip={self.clip}")
        if self.decay not in ("cosine", "none"):
            raise ValueError(f"training: decay must be 'cosine' or 'none', got {self.decay!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"training: max_steps must be >= 1, got {self.max_steps}")
        if self.max_time is not None and self.max_time <= 0:
            raise ValueError(f"training: max_time must be > 0 seconds, got {self.max_time}")
        if self.max_steps is None and self.max_time is None:
            raise ValueError("training: give max_steps or max_time (or both), or the run never ends")
        if self.eval_every < 1 or self.warmup_steps < 0:
            raise ValueError("training: eval_every must be >= 1 and warmup_steps >= 0")


@dataclass
class CharLMRunConfig:
    """Everything that defines a `rnnlab train charlm` run (written to the run folder's config.json)."""

    task: str = "charlm"
    data: TextDataConfig = field(default_factory=TextDataConfig)
    model: CharLMConfig = field(default_factory=CharLMConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CharLMRunConfig:
        d = dict(d)
        if d.get("task") != "charlm":
            raise ValueError(f"config: task is {d.get('task')!r}, expected 'charlm'")
        d.pop("versions", None)
        return from_dict(cls, {
            **d,
            "data": from_dict(TextDataConfig, d.get("data", {})),
            "model": from_dict(CharLMConfig, d.get("model", {})),
            "train": from_dict(TrainConfig, d.get("train", {})),
        })


def from_dict(cls: type[C], d: dict[str, Any]) -> C:
    """Build dataclass `cls` from `d`; an unknown key is an error naming the known ones."""
    if isinstance(d, cls):
        return d
    if not isinstance(d, dict):
        raise ValueError(f"config: {cls.__name__} must be a JSON object, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"config: unknown key(s) {unknown} in {cls.__name__}; known: {sorted(known)}")
    return cls(**d)


def versions() -> dict[str, str]:
    from .. import __version__

    return {"rnnlab": __version__, "torch": torch.__version__, "python": platform.python_version()}
