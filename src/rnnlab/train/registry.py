"""The tasks rnnlab trains, one registration each, and loading a trained run of any of them.

Adding a task: a module in train/ with its RunConfig, Task, model loading (`KIND`, a TaskKind), plus one
line in TASKS below; the command line (rnnlab/cli/train.py) lists its own module for the task's words.

    load_run(path)                 any run folder or checkpoint: the task's Loaded value (model, config, extras)
    load_charlm(path) ...          the same, insisting on one task (an error names what the run is instead)
    run_config(task, data, ...)    a fresh run config: defaults, the data set's preset, overrides
"""

from __future__ import annotations

import os
from typing import Any

from . import caption, charlm, classify, forecast, recognize
from .checkpoint import CheckpointError, load_checkpoint
from .config import preset_config
from .device import resolve_device
from .schema import check_sizes, check_weights
from .task import TaskKind

__all__ = ["TASKS", "checked_config", "load_captioner", "load_charlm", "load_classifier", "load_forecaster",
           "load_recognizer", "load_run", "run_config"]

TASKS: dict[str, TaskKind] = {kind.name: kind for kind in (
    charlm.KIND, classify.KIND, forecast.KIND, recognize.KIND, caption.KIND,
)}


def run_config(task: str, data: str | None = None, overrides: dict[str, Any] | None = None):
    """A fresh run config for `task`: the defaults, the preset of `data` if it has one, then `overrides`."""
    kind = TASKS[task]
    return preset_config(kind.config, kind.presets, data, overrides)


def load_run(path: str | os.PathLike, device: str = "cpu", task: str | None = None):
    """The trained model of a run folder (its best/, else last/) or checkpoint folder, with its config and
    what its task keeps beside the weights (vocabulary, encoder, scaler): the task's Loaded value, in eval
    mode on `device`. task: insist on one task. Every problem is a CheckpointError naming the file."""
    ck = load_checkpoint(path)
    name = ck.config.get("task")
    if task is not None and name != task:
        raise CheckpointError(f"{ck.path}: a {name!r} checkpoint, not {TASKS[task].what}")
    kind = TASKS.get(name)
    if kind is None:
        raise CheckpointError(f"{ck.path}: a {name!r} checkpoint; rnnlab knows {', '.join(TASKS)} runs")
    config = checked_config(kind, ck)
    try:
        extras = kind.read_state(ck.state, config)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        raise CheckpointError(f"{ck.path}/state.json: does not describe {kind.what} ({_first_line(e)})") from None
    try:
        model = kind.model(config.model)
        model.load_state_dict(ck.model)
    except (RuntimeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{ck.path}: the weights do not match the checkpoint's config ({first})") from None
    model.to(resolve_device(device)).eval()
    return kind.loaded(model=model, config=config, checkpoint=ck, **extras)


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def checked_config(kind: TaskKind, ck) -> Any:
    """The run config of checkpoint `ck` (a Checkpoint of task `kind`), held to the run-folder schema before
    any model is built from it (schema.py): every size within its cap, every field of its type and range, and
    the model it describes, built on the meta device, of exactly the shapes in model.safetensors."""
    where = f"{ck.path}/config.json"
    check_sizes(ck.config, where)
    try:
        config = kind.config.from_dict(ck.config)
        config.model.check()
        config.train.check()
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{where}: does not describe {kind.what} ({_first_line(e)}); restore the file or "
                              f"train again") from None
    check_weights(kind.model, config.model, ck.model, str(ck.path))
    return config


def load_charlm(path: str | os.PathLike, device: str = "cpu") -> charlm.LoadedCharLM:
    """A trained CharLM, its vocabulary and config (load_run for charlm runs)."""
    return load_run(path, device, "charlm")


def load_classifier(path: str | os.PathLike, device: str = "cpu") -> classify.LoadedClassifier:
    """A trained classifier, its encoder (vocabulary or feature scaling) and label names."""
    return load_run(path, device, "classify")


def load_forecaster(path: str | os.PathLike, device: str = "cpu") -> forecast.LoadedForecaster:
    """A trained forecaster and its scaler."""
    return load_run(path, device, "forecast")


def load_recognizer(path: str | os.PathLike, device: str = "cpu") -> recognize.LoadedRecognizer:
    """A trained CTCRecognizer and its alphabet."""
    return load_run(path, device, "recognize")


def load_captioner(path: str | os.PathLike, device: str = "cpu") -> caption.LoadedCaptioner:
    """A trained Captioner and its vocabulary."""
    return load_run(path, device, "caption")
