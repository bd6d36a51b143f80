"""Training on several processes: torchrun's environment, the process group, and the few collectives the
loop needs (DistributedDataParallel averages the gradients itself).

rnnlab does not launch processes of its own: torch's launcher (torchrun, `python -m torch.distributed.run`)
starts one process per rank and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `fit` reads
them (`World.from_env`), joins the group (gloo on CPUs, NCCL on CUDA devices) and leaves it at the end.

    rank 0   writes the run folder (config, metrics, plots, checkpoints, progress) and evaluates
    others   train on their shard of every global batch, write nothing, wait for rank 0's evaluation

A rank that dies (a crash, kill -9, a lost machine) closes its connections: the others' next collective fails
at once (gloo) or after RNNLAB_DIST_TIMEOUT seconds at the latest (a hung peer, a silent network), and
`collective` turns that failure into one line (DistributedError) instead of a traceback.

Nothing here pickles: objects cross as JSON text in uint8 tensors.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["ENV_TIMEOUT", "DistributedError", "World", "all_gather_tensors", "all_reduce", "broadcast_json",
           "collective", "gather_json", "init", "teardown", "timeout_s"]

ENV_TIMEOUT = "RNNLAB_DIST_TIMEOUT"
_PEER_WORDS = re.compile(r"gloo|nccl|NCCL|[Cc]onnection|[Tt]imed out|timeout|c10d|ProcessGroup|peer")
DEFAULT_TIMEOUT = 600.0  # seconds a collective may wait for a silent peer; rank 0's evaluation must fit in it


class DistributedError(RuntimeError):
    """A collective failed: another rank died, hung past the timeout, or cannot be reached."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    backend: str = ""

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> World:
        """From torchrun's variables; a ValueError names one that is malformed."""
        values = {}
        for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0), ("LOCAL_WORLD_SIZE", 1)):
            text = os.environ.get(name)
            try:
                values[name] = default if text is None else int(text)
            except ValueError:
                raise ValueError(f"environment: {name}={text!r} is not an integer; start the processes with "
                                 f"torchrun (or rnnlab train TASK --nproc N), which sets it") from None
        rank, size = values["RANK"], values["WORLD_SIZE"]
        if size < 1 or not 0 <= rank < size:
            raise ValueError(f"environment: RANK={rank} must be in [0, WORLD_SIZE={size}); start the processes with "
                             f"torchrun, which sets both")
        return cls(rank, size, values["LOCAL_RANK"], max(1, values["LOCAL_WORLD_SIZE"]))


def timeout_s() -> float:
    """How long a collective waits for a silent peer (RNNLAB_DIST_TIMEOUT, default 600 s)."""
    text = os.environ.get(ENV_TIMEOUT)
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e7:
        raise ValueError(f"environment: {ENV_TIMEOUT}={text!r} must be a number of seconds > 0 (default "
                         f"{DEFAULT_TIMEOUT:.0f})")
    return value


def init(device: torch.device) -> tuple[World, bool]:
    """Join torchrun's process group (gloo for CPU tensors, NCCL for CUDA ones) when WORLD_SIZE > 1.
    Returns (world, whether this call created the group: then `teardown` should end it)."""
    world = World.from_env()
    if world.size == 1:
        return world, False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if dist.is_initialized():
        return World(world.rank, world.size, world.local_rank, world.local_size, dist.get_backend()), False
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"distributed training runs on cpu (gloo) or cuda (nccl) devices, not {device.type}; "
                         f"use --device cpu or cuda")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ValueError(f"environment: WORLD_SIZE={world.size} but {' and '.join(missing)} not set; start the "
                         f"processes with torchrun (or rnnlab train TASK --nproc N)")
    if backend == "nccl" and device.index is not None:
        torch.cuda.set_device(device)  # NCCL's collectives (and `_device`) use the current device: the model's
    timeout = datetime.timedelta(seconds=timeout_s())
    with collective("joining the process group", world):
        store = _store(world, timeout)
        if backend == "nccl":
            dist.init_process_group(backend, store=store, rank=world.rank, world_size=world.size, timeout=timeout,
                                    device_id=device)
        else:
            dist.init_process_group(backend, store=store, rank=world.rank, world_size=world.size, timeout=timeout)
    return World(world.rank, world.size, world.local_rank, world.local_size, backend), True


def _store(world: World, timeout: datetime.timedelta):
    """The rendezvous store at MASTER_ADDR:MASTER_PORT, its keys prefixed by torchrun's restart count.

    Why not init_process_group's own env:// store: under torchrun the workers share the agent's store, which
    outlives a restart (--max-restarts), and a restarted rank could read a dead rank's address from the attempt
    before (gloo then fails with "Connection refused"); a prefix per attempt keeps each attempt's keys apart."""
    use_agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    try:
        port = int(os.environ["MASTER_PORT"])
    except ValueError:
        raise ValueError(f"environment: MASTER_PORT={os.environ['MASTER_PORT']!r} is not a port number") from None
    store = dist.TCPStore(os.environ["MASTER_ADDR"], port, world.size, is_master=not use_agent and world.rank == 0,
                          timeout=timeout, multi_tenant=not use_agent)
    return dist.PrefixStore(f"rnnlab/attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def teardown(created: bool) -> None:
    """Leave the process group that `init` created (a no-op otherwise)."""
    if created and dist.is_initialized():
        with contextlib.suppress(Exception):  # after a peer died there is nothing left to say goodbye to
            dist.destroy_process_group()


@contextlib.contextmanager
def collective(what: str, world: World | None = None) -> Iterator[None]:
    """Turn a failed collective (a dead or silent peer) into one line naming this rank and what it was doing."""
    try:
        yield
    except RuntimeError as e:  # DistBackendError, DistNetworkError, and a RuntimeError from gloo or NCCL
        if isinstance(e, DistributedError) or not (isinstance(e, dist.DistError) or _PEER_WORDS.search(str(e))):
            raise  # not a failed collective (an error in the model's backward under DDP, say): as it is
        world = world or World.from_env()
        first = re.sub(r"^\[[^\]]*\]\s*", "", (str(e).strip().splitlines() or [type(e).__name__])[0])
        first = first.split(". ")[0][:120]  # gloo's first sentence: "Connection closed by peer [127.0.0.1]:1727"
        raise DistributedError(
            f"rank {world.rank} of {world.size}: {what} failed, another rank stopped or cannot be reached ({first}); "
            f"rank 0's last checkpoint is intact: continue with --resume RUN once every rank can run") from None


def _device() -> torch.device:
    """Where collective tensors live: the current CUDA device under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce(values: list[float], op: str = "sum") -> list[float]:
    """The sum (or max) of `values` over every rank, as float64."""
    t = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return t.cpu().tolist()


def _encode(obj: Any) -> Tensor:
    return torch.frombuffer(bytearray(json.dumps(obj, ensure_ascii=True).encode("ascii")), dtype=torch.uint8)


def broadcast_json(obj: Any) -> Any:
    """Rank 0's `obj` (JSON-able) on every rank."""
    device = _device()
    size = torch.tensor([_encode(obj).numel() if dist.get_rank() == 0 else 0], dtype=torch.int64, device=device)
    dist.broadcast(size, 0)
    data = _encode(obj).to(device) if dist.get_rank() == 0 else torch.empty(int(size), dtype=torch.uint8,
                                                                              device=device)
    dist.broadcast(data, 0)
    return json.loads(data.cpu().numpy().tobytes().decode("ascii"))


def gather_json(obj: Any) -> list[Any]:
    """Every rank's `obj` (JSON-able), in rank order, on every rank."""
    device = _device()
    data = _encode(obj).to(device)
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([data.numel()], dtype=torch.int64, device=device))
    longest = max(int(s) for s in sizes)
    padded = torch.zeros(longest, dtype=torch.uint8, device=device)
    padded[: data.numel()] = data
    parts = [torch.empty(longest, dtype=torch.uint8, device=device) for _ in sizes]
    dist.all_gather(parts, padded)
    return [json.loads(p[: int(s)].cpu().numpy().tobytes().decode("ascii")) for p, s in zip(parts, sizes)]


def all_gather_tensors(t: Tensor) -> list[Tensor]:
    """Every rank's tensor `t` (the same shape and dtype on every rank), in rank order."""
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return parts
