"""What every run config shares: the training options, the run config's frame, and reading one back.

A task's run config is a dataclass subclassing `RunConfig` with four fields: `task` (its name), `data` (the
task's data options), `model` (the model head's config, which nests a rnnlab.layers.RecurrentConfig as
`model.rnn`) and `train` (TrainConfig, below). Every field is declared with rnnlab._fields.opt, so the
command line's options come from these declarations. A run folder's config.json is `to_dict()`;
`from_dict` reads it back by the fields' types and rejects unknown keys (a typo in a hand-edited config is
an error, not a silently ignored option). Configs written before RecurrentConfig (flat `hidden`, `layers`,
`cell`, ... in `model`) are read into the nested form.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import typing
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar

import torch

from .._fields import flag_of, opt
from ..layers import RecurrentConfig
from ..models.charlm import CharLMConfig

__all__ = ["RANGES", "CharLMRunConfig", "RunConfig", "TextDataConfig", "TrainConfig", "check_ranges", "from_dict",
           "leaves", "nest", "override",
           "preset_config", "versions"]

C = TypeVar("C")
DECAYS = ("cosine", "none", "wsd")  # the learning-rate schedules after warm-up (train/loop.py learning_rate)


@dataclass(slots=True)
class TrainConfig:
    lr: float = opt(3e-3, "AdamW peak learning rate")
    weight_decay: float = opt(0.01, "AdamW decoupled weight decay, on matrices only (not biases, gains)")
    beta1: float = opt(0.9, "AdamW beta1")
    beta2: float = opt(0.99, "AdamW beta2")
    clip: float = opt(1.0, "gradient-norm clipping threshold")
    warmup_steps: int = opt(100, "linear learning-rate warm-up from lr/warmup_steps to lr")
    decay: str = opt("cosine", "cosine: to min_lr_ratio x lr at the end of the budget; none: constant; wsd: "
                     "constant, then a cosine to min_lr_ratio x lr over the budget's last decay_fraction",
                     choices=DECAYS)
    min_lr_ratio: float = opt(0.1, "the decay's floor, as a fraction of lr")
    decay_fraction: float = opt(0.2, "wsd: the share of the budget (steps or time; with both, whichever is further) "
                                     "spent decaying")
    max_steps: int | None = opt(None, "step budget; the schedule then follows steps (runs are exactly reproducible)")
    max_time: float | None = opt(180.0, "time budget in seconds, evaluations included", metavar="SECONDS")
    eval_every: int = opt(200, "steps between evaluations (each logs a line and saves last/)", metavar="STEPS")
    patience: int | None = opt(10, "evaluations without improvement before stopping (early stopping; under wsd "
                                   "not before its decay)")
    min_delta: float = opt(0.0, "an improvement must beat the best by more than this")
    seed: int = opt(0, "random seed: initial weights, dropout, data order and splits")
    device: str = opt("cpu", "cpu, cuda, cuda:N, mps or auto")

    def check(self) -> None:
        """ValueError naming the first option out of its range (check_ranges: NaN and inf included)."""
        check_ranges(self, "training")
        if self.decay not in DECAYS:
            raise ValueError(f"training: decay must be one of {', '.join(DECAYS)}, got {self.decay!r}")
        if self.max_steps is None and self.max_time is None:
            raise ValueError("training: give max_steps or max_time (or both), or the run never ends")


# The range of every numeric option, by field name, whichever config declares it: (low, high, low included).
# A float must also be finite: NaN passes every comparison, so it is refused by name, not by a comparison.
RANGES: dict[str, tuple[float, float, bool]] = {
    "lr": (0, math.inf, False), "clip": (0, math.inf, False), "weight_decay": (0, math.inf, True),
    "beta1": (0, 1, True), "beta2": (0, 1, True), "min_lr_ratio": (0, 1, True), "decay_fraction": (0, 1, True),
    "min_delta": (0, math.inf, True),
    "warmup_steps": (0, math.inf, True), "max_steps": (1, math.inf, True), "max_time": (0, math.inf, False),
    "eval_every": (1, math.inf, True), "patience": (1, math.inf, True),
    "batch": (1, math.inf, True), "seq_len": (1, math.inf, True), "eval_chars": (2, math.inf, True),
    "val_fraction": (0, 1, False), "test_fraction": (0, 1, False), "val_size": (0, math.inf, True),
    "test_size": (0, math.inf, True), "horizon": (1, math.inf, True), "min_len": (1, math.inf, True),
    "max_len": (0, math.inf, True), "min_count": (1, math.inf, True), "shift": (0, math.inf, True),
    "limit": (1, math.inf, True), "season": (0, math.inf, True), "max_pixels": (1, math.inf, True),
}


def check_ranges(cfg: Any, owner: str = "config", name=None) -> None:
    """Every numeric field of dataclass `cfg` (nested ones walked) finite and within RANGES: the one place
    where options are range-checked, for the command line (each error names the flag) and for the library.
    name(field) -> how to call the field in the message (default: its flag)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, owner, name)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        shown = name(f.name) if name else flag_of(f)
        if not math.isfinite(value):
            raise ValueError(f"{owner}: {shown} must be a finite number, got {value}")
        if f.name in RANGES:
            low, high, closed = RANGES[f.name]
            if value > high or value < low or (value == low and not closed):
                bound = f"{'>=' if closed else '>'} {low:g}" + (f" and <= {high:g}" if math.isfinite(high) else "")
                raise ValueError(f"{owner}: {shown} must be {bound}, got {value}")


@dataclass(slots=True)
class RunConfig:
    """The frame of every task's run config (subclasses declare task, data, model and train)."""

    task: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, **{k: v for k, v in dataclasses.asdict(self).items() if k != "task"}}

    def check_ranges(self) -> None:
        """Every numeric option of the run (data, model, training) finite and in its range (RANGES); a
        ValueError names the first that is not by its flag."""
        check_ranges(self, f"rnnlab train {self.task}")

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """The config a config.json holds; ValueError if it is another task's or has unknown keys."""
        if not isinstance(d, dict) or d.get("task") != cls.task:
            got = d.get("task") if isinstance(d, dict) else None
            raise ValueError(f"config: task is {got!r}, expected {cls.task!r}")
        d = {k: v for k, v in d.items() if k not in ("task", "versions")}
        return from_dict(cls, d)


@dataclass(slots=True)
class TextDataConfig:
    data: str = opt("builtin:pystdlib", "a text file, a folder of text files, or builtin:pystdlib | builtin:pydoc "
                                        "| builtin:kjv", metavar="PATH")
    encoding: str = opt("utf-8", "text encoding of the files")
    val_fraction: float = opt(0.05, "share of the text held out for validation (its end)")
    seq_len: int = opt(100, "T: characters per chunk (truncated BPTT length)", metavar="T")
    batch: int = opt(32, "B: parallel streams per batch", metavar="B")
    eval_chars: int = opt(100_000, "validation characters scored at each evaluation (the split's first ones)")


@dataclass(slots=True)
class CharLMRunConfig(RunConfig):
    """Everything that defines a `rnnlab train charlm` run (written to the run folder's config.json)."""

    task: ClassVar[str] = "charlm"
    data: TextDataConfig = opt(default_factory=TextDataConfig)
    model: CharLMConfig = opt(default_factory=CharLMConfig)
    train: TrainConfig = opt(default_factory=lambda: TrainConfig(**CHARLM_TRAIN))


# The char-LM's training defaults, chosen on builtin:pystdlib's validation split at 60 and 180 CPU seconds
# (benchmarks/charlm_budget.py, benchmarks/CHARLM.md): a constant rate, then a decay over the budget's last fifth
# (wsd), learnt more within a budget than a cosine over all of it (which spends most of a short budget below its
# peak rate). No warm-up: from the same weights and batches fit's updates equal a plain Adam loop's (clipped at 1),
# and 10 warm-up steps alone cost 0.09 bits/char after 360 steps (2x256 LSTM, 2.31 vs 2.21); Adam's normalised
# steps with clipping need none at these sizes (--warmup-steps gives one back).
CHARLM_TRAIN = dict(lr=5e-3, warmup_steps=0, decay="wsd", decay_fraction=0.2)


def from_dict(cls: type[C], d: dict[str, Any], _path: str = "") -> C:
    """Build dataclass `cls` from `d`, nested dataclass fields from nested objects (by the fields' types);
    an unknown key, or a value of another type than its field's (a string for an int, NaN for a float), is an
    error naming the key."""
    if isinstance(d, cls):
        return d
    if not isinstance(d, dict):
        raise ValueError(f"config: {_path.rstrip('.') or cls.__name__} must be a JSON object, got {type(d).__name__}")
    d = dict(d)
    types = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if "rnn" in fields and "rnn" not in d:  # written before RecurrentConfig: the stack's options lay flat
        d["rnn"] = RecurrentConfig.take_legacy(d, cls().rnn)
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"config: unknown key(s) {unknown} in {cls.__name__}; known: {sorted(fields)}")
    out = {}
    for k, v in d.items():
        if dataclasses.is_dataclass(types[k]):
            out[k] = from_dict(types[k], v, f"{_path}{k}.")
        else:
            out[k] = _typed(v, types[k], f"{_path}{k}")
    return cls(**out)


_SCALARS = (bool, int, float, str)


def _typed(value: Any, annotation: Any, path: str) -> Any:
    """`value` when it fits `annotation` (int, float, str, bool, or one of them | None; an int is a float, and
    another annotation is not checked here), else a ValueError naming the key."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] if typing.get_args(annotation) \
        else [annotation]
    optional = type(None) in typing.get_args(annotation)
    if len(args) != 1 or args[0] not in _SCALARS or (value is None and optional):
        return value
    kind = args[0]
    fits = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, fits = float(value), True
    if kind is float and fits and not math.isfinite(value):
        fits = False
    if not fits:
        expected = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false"}[kind]
        raise ValueError(f"config: {path} must be {expected}{' or null' if optional else ''}, "
                         f"got {json.dumps(value)[:60] if _jsonable(value) else repr(value)[:60]}")
    return value


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


def override(cfg: C, changes: dict[str, Any]) -> C:
    """A copy of dataclass `cfg` with `changes` applied; a nested dict, or a dotted name, changes a nested
    dataclass field by field ({"model": {"rnn": {"cell": "gru"}}} or {"model.rnn.cell": "gru"}). An unknown
    name is a ValueError naming the known ones."""
    changes = nest(changes)
    fields = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise ValueError(f"config: unknown option(s) {unknown} for {type(cfg).__name__}; known: {sorted(fields)}")
    new = {}
    for name, value in changes.items():
        current = getattr(cfg, name)
        new[name] = override(current, value) if dataclasses.is_dataclass(current) and isinstance(value, dict) else value
    return dataclasses.replace(cfg, **new)


def nest(changes: dict[str, Any]) -> dict[str, Any]:
    """{"model.rnn.cell": "gru"} -> {"model": {"rnn": {"cell": "gru"}}}; nested dicts are merged."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        *parents, name = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        if isinstance(value, dict) and isinstance(node.get(name), dict):
            node[name].update(value)
        else:
            node[name] = value
    return out


def leaves(d: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted name, value) of every non-dict value of a nested dict: `nest`'s inverse."""
    for key, value in d.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def preset_config(cls: type[C], presets: dict[str, dict], data: str | None = None,
                  overrides: dict[str, Any] | None = None, recipe: dict[str, Any] | None = None) -> C:
    """A run config: the defaults, then the preset of the data set `data` (if it has one), then a recipe's
    overrides (a named set of options, `--recipe`), then `overrides` (nested or dotted, as `override` takes them)."""
    cfg = cls()
    data = data if data is not None else cfg.data.data
    cfg = override(cfg, {"data": {"data": data}})
    return override(override(override(cfg, presets.get(data, {})), recipe or {}), overrides or {})


def versions() -> dict[str, str]:
    from .. import __version__

    return {"rnnlab": __version__, "torch": torch.__version__, "python": platform.python_version()}
