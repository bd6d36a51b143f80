"""The interface between one training loop (`fit`) and the tasks it trains.

A task is (data, model, metrics). `fit` owns everything else: optimizer, clipping, schedule, evaluation
cadence, early stopping, checkpoints, resume, progress and metric files. A new task (classification,
forecasting, CTC, captioning) subclasses Task and never copies the loop.

Recurrent state that crosses batches (truncated BPTT) is the task's to produce and the loop's to carry:
`step_loss` receives the state the previous batch returned and returns the new one; the loop detaches it,
drops it when a batch has `reset_state`, and saves it in checkpoints so that a resume continues exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from torch import Tensor, nn

__all__ = ["Loaded", "Recipe", "ResumableBatches", "StepLoss", "Task", "TaskKind", "same_size"]


class ResumableBatches(Protocol):
    """Training batches, endless, with a position that a checkpoint saves and restores."""

    def __next__(self) -> Any: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class StepLoss(NamedTuple):
    loss: Tensor       # scalar, what backward runs on
    state: Any         # recurrent state to carry into the next batch (None if the task carries none)
    units: int         # how many units (characters, samples, frames) this batch trained on


class Task(ABC):
    """Subclass and set: name, model, batches; implement step_loss, evaluate, config_dict."""

    name: str                       # "charlm": written to config.json, checked when loading
    unit: str = "item"              # what throughput counts: "char" -> "chars/s"
    metrics: tuple[str, ...] = ("loss",)  # metric names; "loss" (mean, nats) comes first
    monitor: str = "val_loss"       # validation metric that picks `best` and drives early stopping
    monitor_mode: str = "min"       # "min": lower wins (a loss); "max": higher wins (an accuracy)
    plot: tuple[str, str] = ("loss", "loss")  # (metric, axis label) drawn in loss.png
    model: nn.Module
    batches: ResumableBatches

    @abstractmethod
    def step_loss(self, batch: Any, state: Any) -> StepLoss:
        """Forward one training batch (the model is in train mode) and return its loss."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """Validation metrics {name: value} for every name in `metrics` (the loop has set eval mode and no_grad)."""

    def describe(self, loss: float) -> dict[str, float]:
        """All of `metrics` computed from a mean loss (for train rows and the progress bar)."""
        return {"loss": loss}

    @abstractmethod
    def config_dict(self) -> dict[str, Any]:
        """The resolved run config, written to config.json and into every checkpoint."""

    def extra_state(self) -> dict[str, Any]:
        """JSON-able extras a checkpoint must carry to use the model (a vocabulary, normalisation stats)."""
        return {}

    def summary(self) -> str:
        """One or two lines for people: the data and the model (the command line prints them before training)."""
        return f"{self.name}: {sum(p.numel() for p in self.model.parameters()) / 1e6:.2f} M parameters"


@dataclass
class Loaded:
    """A trained run back from its folder (rnnlab.train.load_run): the model in eval mode, its run config and
    the checkpoint it came from. Each task's subclass adds what its checkpoint keeps beside the weights."""

    model: nn.Module
    config: Any
    checkpoint: Any


def same_size(vocab, model: int, what: str = "vocabulary") -> dict[str, Any]:
    """{"vocab": vocab}, once a checkpoint's vocabulary (alphabet, ...) has as many entries as its model has
    rows for: what the character- and token-level tasks' read_state returns."""
    if len(vocab) != model:
        raise ValueError(f"the {what} has {len(vocab)} entries but the model {model}")
    return {"vocab": vocab}


@dataclass(frozen=True)
class Recipe:
    """A named set of options a user asks for with `rnnlab train TASK --recipe NAME`: applied over the data
    set's preset, under the options given on the command line. help says which settings and why."""

    help: str
    overrides: dict


@dataclass(frozen=True)
class TaskKind:
    """A task's one registration (rnnlab/train/registry.py lists them): what the run lifecycle needs to know
    of it to train it from the command line, resume it, and load a trained run of it back."""

    name: str                                  # config.json's "task"; `rnnlab train NAME`
    what: str                                  # how messages name such a run: "a character language model"
    help: str                                  # one line: `rnnlab train --help`
    description: str                           # a paragraph: `rnnlab train NAME --help`
    config: type                               # its RunConfig subclass (rnnlab.train.config)
    task: Callable[..., Task]                  # Task(config, **restored)
    model: Callable[[Any], nn.Module]          # the model, from config.model
    loaded: Callable[..., Loaded]              # what load_run returns: (model=, config=, checkpoint=, **extras)
    read_state: Callable[[dict, Any], dict]    # extras from a checkpoint's state.json and config (a vocabulary)
    restore: tuple[str, ...] = ()              # extras a resumed Task takes back instead of rebuilding them
    presets: Mapping[str, dict] = field(default_factory=dict)  # per built-in data set: measured overrides
    recipes: Mapping[str, Recipe] = field(default_factory=dict)  # named sets of options: `--recipe NAME`
