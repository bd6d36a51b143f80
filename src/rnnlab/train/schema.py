"""What a checkpoint folder may hold, checked before anything is read or built from it.

A checkpoint is data from wherever it came from: a crafted one (its hashes recomputed) could otherwise name
any path in state.json's file list (`/dev/zero` hangs, `../../etc/passwd` is read), ask config.json for any
size (hidden 30,000 tries 14 GB; 10^6 layers hang before any shape check) or give fields of the wrong type.

    files       only the names rnnlab writes (CHECKPOINT_FILES): no path, no `..`, no link, regular files only;
                JSON files read only up to JSON_LIMITS bytes
    state.json  every field the loop reads, by type and range (check_state)
    config.json the fields' types come from the run config's dataclasses (train/config.py from_dict); every
                size is held to a cap (check_sizes) before a model is built, and the model is first built on
                torch's "meta" device, which allocates nothing, so its parameter names and shapes can be held
                against the safetensors file (check_weights)

The caps are generous for this library; raise one with the environment, e.g.
RNNLAB_MAX_SIZES="hidden_size=65536,num_layers=256". Every violation is one CheckpointError line naming the
file, the key and the fix.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError

__all__ = ["CAPS", "CHECKPOINT_FILES", "ENV_CAPS", "caps", "check_sizes", "check_state", "check_weights",
           "regular_file"]

CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "carry.safetensors", "config.json")
JSON_LIMITS = {"config.json": 1 << 20, "state.json": 256 << 20}  # bytes; a word vocabulary can be megabytes
ENV_CAPS = "RNNLAB_MAX_SIZES"

# Largest accepted value of each size in config.json (any section); any other integer: OTHER_INT.
CAPS = {
    "hidden_size": 16_384, "proj_size": 16_384, "num_layers": 64, "embed": 16_384, "features": 65_536,
    "channels": 4_096, "image_size": 4_096, "height": 4_096, "vocab_size": 2_000_000, "num_classes": 1_000_000,
    "src_vocab": 2_000_000, "tgt_vocab": 2_000_000, "n_features": 1_000_000, "lookback": 1_000_000,
    "horizon": 1_000_000, "season": 1_000_000, "batch": 1_000_000, "seq_len": 10_000_000, "ensemble": 256,
}
OTHER_INT = 10**12


def caps() -> dict[str, int]:
    """CAPS with the environment's raises (RNNLAB_MAX_SIZES="name=value,..."); a bad entry is a ValueError."""
    out = dict(CAPS)
    for item in filter(None, (s.strip() for s in os.environ.get(ENV_CAPS, "").split(","))):
        name, _, value = item.partition("=")
        if name.strip() not in CAPS or not value.strip().isdigit():
            raise ValueError(f"{ENV_CAPS}: expected name=integer with a name among {sorted(CAPS)}, got {item!r}")
        out[name.strip()] = int(value)
    return out


def regular_file(path: Path, what: str = "") -> os.stat_result:
    """lstat of `path`, which must be a regular file (not a link, device, FIFO or folder)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path.parent}: incomplete checkpoint, {path.name} is missing") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a link" if stat.S_ISLNK(st.st_mode) else \
            "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise CheckpointError(f"{path}: {kind}{what}; a checkpoint holds only the regular files rnnlab writes")
    return st


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_LOOP_KIND = {"step": "count", "units": "count", "n_loss": "count", "bad_evals": "count", "last_eval_step": "int",
              "elapsed": "time", "train_time": "time", "sum_loss": "finite"}  # "best" may be infinite
_KIND_OK = {"count": lambda v: _is_int(v) and v >= 0, "int": _is_int,
            "time": lambda v: math.isfinite(v) and v >= 0, "finite": math.isfinite}
_LOOP = {k: _KIND_OK[kind] for k, kind in _LOOP_KIND.items()}


_BOOL_GROUP_KEYS = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay")


def check_state(folder: Path, state: Mapping[str, Any]) -> None:
    """The fields of a checkpoint's state.json that rnnlab reads, by type and range."""
    where = f"{folder / 'state.json'}"

    def bad(key: str, expected: str) -> CheckpointError:
        value = repr(state.get(key))[:60]
        return CheckpointError(f"{where}: {key!r} must be {expected}, got {value}; the file was edited or damaged: "
                               f"use the run's other checkpoint (best/ or last/) or train again")

    files = state.get("files")
    if not isinstance(files, dict):
        raise bad("files", "an object of file name -> SHA-256")
    for name, digest in files.items():
        if name not in CHECKPOINT_FILES:
            raise CheckpointError(f"{where}: 'files' names {name!r}, which a checkpoint does not hold (only "
                                  f"{', '.join(CHECKPOINT_FILES)}); the file was edited: train again or restore it")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise CheckpointError(f"{where}: 'files' gives {name!r} the SHA-256 {str(digest)[:70]!r}, not 64 hex "
                                  f"digits; the file was edited: train again or restore it")
    for name in ("model.safetensors", "config.json"):
        if name not in files:
            raise CheckpointError(f"{where}: 'files' lacks {name}; the checkpoint is incomplete: use the run's "
                                  f"other checkpoint or train again")
    if "step" in state and not (_is_int(state["step"]) and state["step"] >= 0):
        raise bad("step", "an integer >= 0")
    if "task" in state and not isinstance(state["task"], str):
        raise bad("task", "a task name")
    for key in ("loop", "metrics", "best_metrics"):
        if key not in state:
            continue
        if not isinstance(state[key], dict):
            raise bad(key, "an object of numbers")
        for k, v in state[key].items():
            if not _is_number(v) or (key == "loop" and _LOOP.get(k, "") and not _LOOP[k](v)):
                expected = {"int": "an integer", "count": "an integer >= 0", "time": "a finite number >= 0",
                            "finite": "a finite number"}.get(_LOOP_KIND.get(k, ""), "a number") if key == "loop" \
                    else "a number"
                raise CheckpointError(f"{where}: {key}.{k} must be {expected}, got {repr(v)[:60]}; the file was "
                                      f"edited: use the run's other checkpoint (best/ or last/) or train again")
    if "carry" in state and state["carry"] not in ("none", "tensor", "tuple"):
        raise bad("carry", "'none', 'tensor' or 'tuple'")
    if "rng" in state:
        rng = state["rng"]
        if not isinstance(rng, dict) or not isinstance(rng.get("torch"), str) or not all(
                isinstance(s, str) for s in rng.get("cuda", [])) or not isinstance(rng.get("cuda", []), list):
            raise bad("rng", "an object with 'torch' (and 'cuda') RNG states as base64 text")
    if "optimizer" in state:
        o = state["optimizer"]
        if not isinstance(o, dict) or not isinstance(o.get("param_groups"), list) or \
                not isinstance(o.get("scalars"), dict) or not all(isinstance(g, dict) for g in o["param_groups"]):
            raise bad("optimizer", "an object with 'param_groups' (a list of objects) and 'scalars' (an object)")
        for i, group in enumerate(o["param_groups"]):
            params = group.get("params")
            betas = group.get("betas", (0.9, 0.999))
            numbers = [group.get(k, 0.0) for k in ("lr", "eps", "weight_decay")]
            flags_ok = all(isinstance(group.get(k, False), bool) for k in _BOOL_GROUP_KEYS) and all(
                group.get(k) is None or isinstance(group.get(k), bool) for k in ("foreach", "fused"))
            if not flags_ok or not isinstance(params, list) or not all(_is_int(p) and p >= 0 for p in params) or \
                    not isinstance(betas, list | tuple) or len(betas) != 2 or \
                    not all(_is_number(v) and math.isfinite(v) for v in (*numbers, *betas)):
                raise CheckpointError(f"{where}: optimizer.param_groups[{i}] must hold 'params' (parameter indices), "
                                      f"finite numbers 'lr', 'betas' (two), 'eps', 'weight_decay' and true/false "
                                      f"flags; the file "
                                      f"was edited: use the run's other checkpoint (best/ or last/) or train again")
        for key, v in o["scalars"].items():
            pid, _, name = str(key).partition(".")
            if not pid.isdigit() or not name or not _is_number(v):
                raise CheckpointError(f"{where}: optimizer.scalars has {str(key)[:40]!r}: {repr(v)[:40]}, expected "
                                      f"'INDEX.NAME': number; the file was edited: use the run's other checkpoint")
    if "data" in state and (not isinstance(state["data"], dict) or not all(
            _is_int(v) and v >= 0 for v in state["data"].values())):
        raise bad("data", "an object of integers >= 0 (the data position)")


def check_sizes(config: Mapping[str, Any], where: str) -> None:
    """Every integer of config.json within its cap (CAPS, raised by RNNLAB_MAX_SIZES), before any model is built
    from it; each violation names the key and the fix."""
    limits = caps()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif _is_int(node):
            name = path.rpartition(".")[2]
            cap = limits.get(name, OTHER_INT)
            if abs(node) > cap:
                fix = (f"raise the cap with {ENV_CAPS}=\"{name}={node}\" if the run is really that large"
                       if name in limits else "the file was edited: restore it or train again")
                raise CheckpointError(f"{where}: {path} is {node}, above the limit {cap}; {fix}")
        elif isinstance(node, float) and not math.isfinite(node):
            raise CheckpointError(f"{where}: {path} is {node}, expected a finite number; the file was edited: "
                                  f"restore it or train again")

    walk(config, "")


def check_weights(model_factory, config_model: Any, tensors: Mapping[str, Any], where: str) -> None:
    """The model that `model_factory(config_model)` builds, built on the meta device (nothing allocated), has
    exactly the parameter names and shapes of `tensors` (read from the safetensors file, whose size bounds
    them); else a CheckpointError naming the first difference."""
    import torch

    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in model_factory(config_model).state_dict().items()}
    except (ValueError, TypeError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{where}: config.json does not describe a model rnnlab can build ({first})") from None
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{where}: the weights do not match the checkpoint's config (missing "
                              f"{missing[:3]}, unexpected {extra[:3]}); the files were edited or mixed: train again")
    for k, shape in expected.items():
        if got[k] != shape:
            raise CheckpointError(f"{where}: the weights do not match the checkpoint's config ({k} is {list(got[k])} "
                                  f"in model.safetensors, config.json asks for {list(shape)}); train again")
