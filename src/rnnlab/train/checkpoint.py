"""Checkpoints: a folder of safetensors (weights, optimizer state, carried recurrent state) and JSON.

    <run>/last/ and <run>/best/
      model.safetensors       the model's state_dict
      optimizer.safetensors   the optimizer's tensors (AdamW moments, step counts)
      carry.safetensors       the recurrent state carried between chunks (truncated BPTT), if any
      config.json             the resolved run config, so the checkpoint alone rebuilds the model
      state.json              step, data position, RNG states, metrics, the task's extras (vocabulary),
                              the optimizer's non-tensor state, and the SHA-256 of every file above

Writing is atomic at the level of the whole folder: everything goes into `.<name>.tmp/`, then the old
folder is renamed away (`.<name>.old/`) and the new one renamed into place. A crash at any moment leaves
either the old or the new checkpoint complete, and `load_checkpoint` finds it (it falls back to
`.<name>.old/` when `<name>/` is missing). No pickle anywhere: loading never runs code from the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

__all__ = [
    "Checkpoint", "CheckpointError", "checkpoint_task", "find_checkpoint", "first_non_finite", "flatten_state",
    "load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state", "unflatten_state",
]

FORMAT = "rnnlab-checkpoint"
_TENSOR_FILES = ("model.safetensors", "optimizer.safetensors", "carry.safetensors")


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete, corrupt, or does not match what it is loaded into."""


@dataclass
class Checkpoint:
    path: Path
    config: dict[str, Any]
    state: dict[str, Any]
    model: dict[str, Tensor]
    optimizer: dict[str, Tensor]
    carry: dict[str, Tensor]


def first_non_finite(tensors: dict[str, Tensor]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, or None when all are finite."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


# ----- writing ---------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _write_json(path: Path, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=True)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: dict[str, Tensor],
    optimizer: dict[str, Tensor],
    carry: dict[str, Tensor],
    config: dict[str, Any],
    state: dict[str, Any],
) -> Path:
    """Write a checkpoint folder at `path` atomically (see the module docstring). Returns `path`.
    Weights or carried state holding NaN or inf are refused (CheckpointError), so `path` keeps its last
    finite checkpoint: a diverged model is never saved over a good one."""
    path = Path(path)
    for file, tensors in (("model", model), ("carry", carry)):
        bad = first_non_finite(tensors)
        if bad is not None:
            raise CheckpointError(f"{path}: not saved, the {file} tensor {bad!r} holds NaN or inf; "
                                  f"the previous checkpoint there is kept")
    tmp, old = path.with_name(f".{path.name}.tmp"), path.with_name(f".{path.name}.old")
    if tmp.exists():
        shutil.rmtree(tmp)  # left by a crash during an earlier save
    tmp.mkdir(parents=True)
    files = {"model.safetensors": model, "optimizer.safetensors": optimizer}
    if carry:
        files["carry.safetensors"] = carry
    hashes = {}
    for name, tensors in files.items():
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / name))
        _fsync(tmp / name)
        hashes[name] = _sha256(tmp / name)
    _write_json(tmp / "config.json", config)
    hashes["config.json"] = _sha256(tmp / "config.json")
    # state.json last: it vouches for the other files, so a folder without it is never taken as complete
    _write_json(tmp / "state.json", {"format": FORMAT, "version": 1, **state, "files": hashes})
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old)
    return path


# ----- reading ---------------------------------------------------------------------------------------------
def find_checkpoint(path: str | os.PathLike, prefer: tuple[str, ...] = ("best", "last")) -> Path:
    """The checkpoint folder that `path` names: a checkpoint folder itself, or a run folder (then the
    first of `prefer` that exists, also as its `.NAME.old` left by a save that crashed mid-swap)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run or checkpoint; give a run folder such as runs/NAME or its last/")
    if (path / "state.json").exists() or (path / "model.safetensors").exists():
        return path
    for name in prefer:
        for candidate in (path / name, path / f".{name}.old"):
            if (candidate / "state.json").exists():
                return candidate
    raise CheckpointError(
        f"{path}: holds no checkpoint (expected {' or '.join(prefer)}/ with state.json); "
        f"give a run folder written by `rnnlab train`, or one of its checkpoint folders"
    )


def _read_json(path: Path) -> dict:
    from .schema import JSON_LIMITS, regular_file  # schema.py builds on this module's CheckpointError

    # a regular file of a bounded size only: a FIFO or /dev/zero in its place would hang or fill the memory
    size, limit = regular_file(path).st_size, JSON_LIMITS.get(path.name, 1 << 20)
    if size > limit:
        raise CheckpointError(f"{path}: {size:,} bytes, more than the {limit:,} a checkpoint's {path.name} may have; "
                              f"the file was edited or replaced: use the run's other checkpoint or train again")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint file, not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint file, expected a JSON object")
    return data


def load_checkpoint(path: str | os.PathLike, prefer: tuple[str, ...] = ("best", "last")) -> Checkpoint:
    """Read and verify a checkpoint (a run folder or a checkpoint folder). Every problem is a
    CheckpointError that names the file: missing, truncated or altered (SHA-256 mismatch), unreadable."""
    from .schema import check_state, regular_file

    folder = find_checkpoint(path, prefer)
    state = _read_json(folder / "state.json")
    if state.get("format") != FORMAT:
        shown = str(state.get("format"))[:40]
        raise CheckpointError(f"{folder}/state.json: not an rnnlab checkpoint (format {shown!r})")
    check_state(folder, state)  # before any file it names is opened: only rnnlab's own names, no paths
    for name, digest in state["files"].items():
        f = folder / name
        regular_file(f)
        if _sha256(f) != digest:
            raise CheckpointError(
                f"{f}: corrupt or truncated (its SHA-256 does not match state.json); "
                f"use the run's other checkpoint (best/ or last/) or train again"
            )
    tensors = {}
    for name in _TENSOR_FILES:
        if name in state["files"]:
            try:
                tensors[name] = load_file(str(folder / name))
            except (SafetensorError, OSError, ValueError) as e:
                raise CheckpointError(f"{folder / name}: unreadable safetensors file ({e})") from None
        else:
            tensors[name] = {}
    if not tensors["model.safetensors"]:
        raise CheckpointError(f"{folder}: incomplete checkpoint, model.safetensors is missing or empty")
    # A checkpoint written by a run that diverged (before rnnlab refused to save one) loads, then gives NaN
    # everywhere: say so here, once, instead.
    for name in ("model.safetensors", "carry.safetensors"):
        bad = first_non_finite(tensors[name])
        if bad is not None:
            raise CheckpointError(f"{folder / name}: tensor {bad!r} holds NaN or inf (the run diverged); "
                                  f"use the run's other checkpoint (best/ or last/) or train again with a lower --lr")
    return Checkpoint(
        folder, _read_json(folder / "config.json"), state,
        tensors["model.safetensors"], tensors["optimizer.safetensors"], tensors["carry.safetensors"],
    )


# ----- helpers for what a checkpoint holds --------------------------------------------------------------
def flatten_state(carry: Any) -> tuple[dict[str, Tensor], str]:
    """A recurrent state (None, a Tensor, or a tuple of Tensors) as named tensors plus its kind."""
    if carry is None:
        return {}, "none"
    if isinstance(carry, Tensor):
        return {"0": carry}, "tensor"
    return {str(i): t for i, t in enumerate(carry)}, "tuple"


def unflatten_state(tensors: dict[str, Tensor], kind: str, device: torch.device) -> Any:
    """flatten_state's inverse; a CheckpointError when the tensors do not make a state of that kind."""
    n = {"none": 0, "tensor": 1}.get(kind, len(tensors))
    if kind not in ("none", "tensor", "tuple") or sorted(tensors) != sorted(map(str, range(n))) or \
            (kind == "tuple" and n == 0):
        raise CheckpointError(f"carry.safetensors holds {sorted(tensors)[:4]}, not a carried state of kind "
                              f"{kind!r} (state.json); use the run's other checkpoint or train again")
    if kind == "none":
        return None
    if kind == "tensor":
        return tensors["0"].to(device)
    return tuple(tensors[str(i)].to(device) for i in range(len(tensors)))


def rng_state() -> dict[str, Any]:
    """torch's RNG states (CPU and every CUDA device) as base64 text for state.json."""
    enc = lambda t: base64.b64encode(t.numpy().tobytes()).decode("ascii")  # noqa: E731
    out = {"torch": enc(torch.get_rng_state())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [enc(s) for s in torch.cuda.get_rng_state_all()]
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    dec = lambda s: torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)  # noqa: E731
    torch.set_rng_state(dec(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([dec(s) for s in state["cuda"]])


def checkpoint_task(path: str | os.PathLike) -> str:
    """The task ("charlm", "classify", ...) a run folder or checkpoint was trained for, from its config.json
    alone (commands that serve several tasks dispatch on it before loading any weights)."""
    ck_dir = find_checkpoint(path)
    task = _read_json(ck_dir / "config.json").get("task")
    if not isinstance(task, str):
        raise CheckpointError(f"{ck_dir}/config.json names no task; it was not written by `rnnlab train`")
    return task
