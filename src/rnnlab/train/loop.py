"""fit: the one training loop, for every task (see task.py for what a task provides).

    per step: learning rate (warm-up, then cosine decay over the budget) -> next batch -> forward with the
    carried state -> stop on a NaN/inf loss -> backward -> clip the gradient norm -> AdamW step
    every eval_every steps: validate, log one line and a CSV row, save `last` (and `best` if improved),
    stop early after `patience` evaluations without improvement; a non-finite validation result or weight
    stops the run without saving, so `last` stays the last good checkpoint (the message names it)
    Ctrl-C or SIGTERM: finish the current step, save `last`, return; a second one aborts at once
    the run folder is locked while fit writes it (runlock.py): a second fit on it is refused

Several processes (torchrun, distributed.py): each rank trains on its part of every global batch (the task's
batches cut it: batch x world x accumulate, exactly as one process drawing that batch would draw it), the
model is wrapped in DistributedDataParallel, which averages the gradients; rank 0 alone holds the run
folder's lock, writes the run folder and evaluates (the other ranks wait for its result, broadcast so that
every rank takes the same decisions). Each step's loss, the stop decisions (budget, Ctrl-C) and checkpoints
are agreed by collectives; a checkpoint gathers every rank's data position, RNG state and carried state.
`accumulate` K: K forward/backward micro-steps per optimizer step (gradients averaged locally, synchronised
across ranks on the last one only: DDP's no_sync). The learning rate is not rescaled with the global batch.

Exactness of resume: a checkpoint holds weights, optimizer moments, the carried recurrent state, the data
position, torch's RNG state and the loop's counters, and evaluation neither draws random numbers nor
touches the training state. So on CPU with the same config, an interrupted-and-resumed run computes the
same losses as an uninterrupted one, step for step. (Only a step-bound schedule is exact: with a time
budget the schedule and the end depend on the clock.)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .checkpoint import (
    CheckpointError, first_non_finite, flatten_state, load_checkpoint, rng_state, save_checkpoint, set_rng_state,
    unflatten_state,
)
from . import distributed
from .config import TrainConfig, versions
from .distributed import DistributedError, World, collective
from .runlock import RunLock
from .runlog import MetricsLog
from .task import Task

__all__ = ["DistributedError", "FitResult", "fit", "learning_rate", "make_optimizer"]


@dataclass
class FitResult:
    step: int                          # steps done in total (including those before a resume)
    stopped: str                       # why: "max_steps", "max_time", "early_stop", "interrupted", "nan"
    message: str                       # one line for people
    losses: list[float] = field(default_factory=list)  # training loss of each step run in this call
    best: dict[str, float] = field(default_factory=dict)   # validation metrics of the best evaluation
    last: dict[str, float] = field(default_factory=dict)   # metrics of the last evaluation
    elapsed: float = 0.0               # seconds, including those before a resume
    units_per_s: float = 0.0           # training throughput (evaluation time excluded)
    signal: str = ""                   # "SIGINT" or "SIGTERM" when that stopped it ("interrupted")


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (decaying biases, gains and peepholes only hurts)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def learning_rate(cfg: TrainConfig, step: int, elapsed: float) -> float:
    """Linear warm-up over warmup_steps, then the decay: cosine to min_lr_ratio * lr at the end of the budget
    (max_steps if given, else max_time), none (constant), or wsd (warm-up, stable, decay: constant until the
    budget's last decay_fraction, then the same cosine over that part)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.decay == "none":
        return cfg.lr
    progress = _budget_progress(cfg, step, elapsed)
    if cfg.decay == "wsd":
        start = 1.0 - cfg.decay_fraction
        progress = (progress - start) / cfg.decay_fraction if cfg.decay_fraction > 0 else float(progress >= 1)
    progress = min(max(progress, 0.0), 1.0)
    low = cfg.lr * cfg.min_lr_ratio
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * progress))


def _budget_progress(cfg: TrainConfig, step: int, elapsed: float) -> float:
    """How much of the budget the decay runs over is spent: steps after warm-up (max_steps, so that runs are
    reproducible), else seconds. wsd with both budgets: whichever is further, so that its decay runs before
    either budget ends the run."""
    steps = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps) if cfg.max_steps is not None else None
    seconds = elapsed / cfg.max_time if cfg.max_time is not None else None
    if steps is None or (seconds is not None and cfg.decay == "wsd"):
        return seconds if steps is None else max(steps, seconds)
    return steps


def may_stop_early(cfg: TrainConfig, step: int, lr: float) -> bool:
    """Whether patience counts at an evaluation after `step` steps, the last run at rate `lr`: under wsd only once
    its decay has begun, because a plateau at the peak rate is not where the run ends up (the decay brought the
    last 0.2 bits/char of the README's char-LM run; the best checkpoint is kept meanwhile). Read off the rate, which
    every rank computes from the same agreed clock, so that all ranks count alike and stop together."""
    return cfg.decay != "wsd" or cfg.decay_fraction == 0 or (step > cfg.warmup_steps and lr < cfg.lr * (1 - 1e-9))


def _counting(cfg: TrainConfig, row: dict[str, float]) -> bool:
    """Whether patience counted at the evaluation that wrote `row` (none yet: it did not)."""
    return bool(row) and may_stop_early(cfg, int(row["step"]), float(row["lr"]))


def _detach(state: Any) -> Any:
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return tuple(_detach(s) for s in state)


# ----- optimizer state <-> safetensors + JSON --------------------------------------------------------------
def _optimizer_to_files(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, entries in sd["state"].items():
        for k, v in entries.items():
            (tensors if isinstance(v, Tensor) else scalars)[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_files(opt: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in [*tensors.items(), *meta["scalars"].items()]:
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# ----- Ctrl-C and SIGTERM -----------------------------------------------------------------------------------
class _Interrupt:
    """While active, the first SIGINT or SIGTERM (what `kill` and job schedulers send) sets a flag the loop
    checks between steps, so the run saves and ends as after Ctrl-C; a second one raises KeyboardInterrupt."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, distributed: bool = False) -> None:
        self.requested = False
        self.signal = ""   # "SIGINT" or "SIGTERM": the first one received
        self.distributed = distributed

    def _handler(self, signum, frame) -> None:
        if self.requested:
            # torchrun's agent follows a Ctrl-C with SIGTERM to every worker (and SIGKILL 30 s later): let the
            # save the first signal asked for finish; a second Ctrl-C still aborts
            if self.distributed and signum == signal.SIGTERM:
                return
            raise KeyboardInterrupt
        self.requested, self.signal = True, signal.Signals(signum).name

    @contextlib.contextmanager
    def active(self) -> Iterator[_Interrupt]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach only the main thread; elsewhere Ctrl-C is the caller's business
            return
        previous = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


# ----- the loop's state ------------------------------------------------------------------------------------
_COUNTERS = ("step", "elapsed", "train_time", "units", "sum_loss", "n_loss", "best", "bad_evals", "last_eval_step")


@dataclass
class LoopState:
    """Where the loop stands. The counters go into a checkpoint's state.json as "loop" (names unchanged since
    bfeb559, so older checkpoints resume); the two metric rows are stored beside them."""

    step: int = 0                  # optimizer steps done, across resumes
    elapsed: float = 0.0           # seconds of training and evaluation, across resumes (the max_time budget)
    train_time: float = 0.0        # seconds inside training steps only: throughput leaves evaluation out
    units: int = 0                 # units trained on (characters, sequences, ...; task.unit)
    sum_loss: float = 0.0          # training loss summed since the last evaluation ...
    n_loss: int = 0                # ... over this many steps
    best: float = math.inf         # best monitored score; lower wins (a "max" metric is stored negated)
    bad_evals: int = 0             # evaluations since the best one (early stopping)
    last_eval_step: int = -1       # step of the last evaluation: decides whether the end needs one
    best_metrics: dict[str, float] = field(default_factory=dict)  # the row of the best evaluation
    last_metrics: dict[str, float] = field(default_factory=dict)  # the row of the last evaluation

    def to_dict(self) -> dict[str, Any]:
        """The counters, as state.json's "loop"."""
        return {name: getattr(self, name) for name in _COUNTERS}

    @classmethod
    def from_dict(cls, loop: dict[str, Any], metrics: dict[str, float] | None = None,
                  best_metrics: dict[str, float] | None = None) -> LoopState:
        """From state.json's "loop" (and its "metrics", "best_metrics"); a counter it lacks keeps its default."""
        counters = {name: loop[name] for name in _COUNTERS if name in loop}
        return cls(**counters, last_metrics=metrics or {}, best_metrics=best_metrics or {})


def _saved_world(ck) -> tuple[int, int, list]:
    """(world size, accumulate, per-rank states) a checkpoint was written with; (1, 1, []) before issue 15."""
    d = ck.state.get("distributed", {"world": 1, "accumulate": 1, "ranks": []})
    try:
        world, accumulate, ranks = d["world"], d["accumulate"], d["ranks"]
        if not (isinstance(world, int) and isinstance(accumulate, int) and world >= 1 and accumulate >= 1 and
                isinstance(ranks, list) and all(isinstance(r, dict) for r in ranks) and len(ranks) in (0, world)):
            raise TypeError
    except (KeyError, TypeError):
        raise CheckpointError(f"{ck.path}/state.json: 'distributed' must hold world, accumulate (integers >= 1) and "
                              f"one state per rank; the file was edited: use the run's other checkpoint") from None
    return world, accumulate, ranks


def _plan(ck, world: World, accumulate: int | None) -> int:
    """The accumulation K of this run: given, or (resuming) the one that keeps the checkpoint's global batch
    (world x accumulate); a resume that would change the global batch is refused, naming the original size."""
    if ck is None:
        return 1 if accumulate is None else accumulate
    saved_world, saved_k, _ = _saved_world(ck)
    parts = saved_world * saved_k
    if accumulate is None and parts % world.size == 0:
        accumulate = parts // world.size
    if accumulate is None or world.size * accumulate != parts:
        fix = (f"--accumulate {parts // world.size}" if parts % world.size == 0 else
               f"a number of processes that divides {parts}")
        raise CheckpointError(
            f"{ck.path}: trained on {saved_world} process(es) with --accumulate {saved_k} (global batch = --batch x "
            f"{parts}), resumed on {world.size} with --accumulate {accumulate or 1}; resume on {saved_world} "
            f"process(es), or keep processes x accumulate = {parts} ({fix})")
    return accumulate


def _resume(ck, task: Task, opt: torch.optim.Optimizer, device: torch.device, world: World,
            accumulate: int) -> tuple[LoopState, list]:
    """Load weights, optimizer moments and data position into task and opt, set torch's RNG (this rank's); return
    the loop's state and this rank's carried recurrent states (one per micro-step)."""
    saved_world, _, ranks = _saved_world(ck)
    try:
        task.model.load_state_dict(ck.model)
        _optimizer_from_files(opt, ck.optimizer, ck.state["optimizer"])
        task.batches.load_state_dict(ck.state["data"])
        state = LoopState.from_dict(ck.state["loop"], ck.state.get("metrics", {}), ck.state.get("best_metrics", {}))
        carry = unflatten_state(ck.carry, ck.state["carry"], device)
        # the saved state is the global batch's, its parts joined along the batch dimension: take ours
        parts = _split(carry, world.size * accumulate)
        carries = parts[world.rank * accumulate: (world.rank + 1) * accumulate]
        if saved_world == world.size and ranks:
            set_rng_state(ranks[world.rank]["rng"])
        elif world.rank == 0:
            set_rng_state(ck.state["rng"])
        else:  # another world size: rank r > 0 draws its own dropout masks from here on
            torch.manual_seed(_rank_seed(task, world.rank, state.step))
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{ck.path}: does not match this model or data ({first})") from None
    return state, carries


def _rank_seed(task: Task, rank: int, step: int = 0) -> int:
    """A seed of rank `rank`'s own (dropout masks, augmentation drawn from torch), from the run's seed."""
    config = task.config_dict()
    seed = config.get("train", {}).get("seed", 0) if isinstance(config, dict) else 0
    return (int(seed) * 1_000_003 + rank * 7919 + step) % (2 ** 63)


# ----- a carried state's parts: joined along the batch dimension (dim 1 of torch's (L*D, B, H) states) -------
def _join(parts: list) -> Any:
    if all(p is None for p in parts):
        return None
    if any(p is None for p in parts):
        raise RuntimeError("internal error: some micro-steps carry a state and others none")
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], Tensor):
        return torch.cat(parts, dim=1)
    return tuple(torch.cat(list(ts), dim=1) for ts in zip(*parts))


def _split(carry: Any, n: int) -> list:
    if carry is None or n == 1:
        return [carry] * n if carry is None else [carry]
    if isinstance(carry, Tensor):
        if carry.dim() < 2 or carry.shape[1] % n:
            raise ValueError(f"the carried state's batch dimension ({tuple(carry.shape)}) does not split into {n}")
        return list(carry.chunk(n, dim=1))
    pieces = [_split(t, n) for t in carry]
    return [tuple(p[i] for p in pieces) for i in range(n)]


def _save(run: Path | None, name: str, task: Task, opt: torch.optim.Optimizer, carries: list, loop: LoopState,
          world: World) -> None:
    """Write run/name/: everything the next step depends on, so a resume continues exactly here. Under several
    processes every rank takes part (its data position, RNG state and carried state are gathered) and rank 0
    writes."""
    if run is None:
        return
    carry = _join(carries)
    mine = {"rng": rng_state(), "data": task.batches.state_dict()}
    ranks = [mine]
    if world.size > 1:
        with collective(f"saving {name}/ at step {loop.step}", world):
            ranks = distributed.gather_json(mine)
            if carry is not None:
                flat, kind = flatten_state(carry)
                gathered = {k: distributed.all_gather_tensors(t) for k, t in flat.items()}
                carry = unflatten_state({k: torch.cat(ts, dim=1) for k, ts in gathered.items()}, kind, flat["0"].device)
    if not world.main:
        return
    opt_tensors, opt_meta = _optimizer_to_files(opt)
    carry_tensors, carry_kind = flatten_state(carry)
    parts = world.size * len(carries)
    extra = {"distributed": {"world": world.size, "accumulate": len(carries), "ranks": ranks}} if parts > 1 else {}
    save_checkpoint(
        run / name, model=task.model.state_dict(), optimizer=opt_tensors, carry=carry_tensors,
        config=task.config_dict(),
        state={"task": task.name, "step": loop.step, "loop": loop.to_dict(), "optimizer": opt_meta,
               "data": mine["data"], "carry": carry_kind, "rng": mine["rng"],
               "metrics": loop.last_metrics, "best_metrics": loop.best_metrics, **extra, **task.extra_state()},
    )


def _evaluate(task: Task, cfg: TrainConfig, loop: LoopState, lr: float, world: World = World()) -> bool:
    """Validate and fold the result into loop (metric rows, best score, patience); True when it improved.
    Under several processes rank 0 validates and every rank takes its result (the weights are the same)."""
    val: dict[str, float] = {}
    if world.main:
        task.model.eval()
        with torch.no_grad():
            val = task.evaluate()
        task.model.train()
    if world.size > 1:
        with collective(f"waiting for rank 0's evaluation at step {loop.step}", world):
            val = distributed.broadcast_json(val)
    train = task.describe(loop.sum_loss / loop.n_loss) if loop.n_loss else {}
    row = {"step": loop.step, "elapsed_s": round(loop.elapsed, 2), "lr": lr,
           f"{task.unit}s_per_s": round(loop.units / max(loop.train_time, 1e-9), 1),
           **{f"train_{k}": v for k, v in train.items()}, **{f"val_{k}": v for k, v in val.items()}}
    loop.last_metrics = row
    loop.sum_loss, loop.n_loss, loop.last_eval_step = 0.0, 0, loop.step
    score = row[task.monitor] if task.monitor_mode != "max" else -row[task.monitor]  # loop.best: lower wins
    improved = score < loop.best - cfg.min_delta
    if improved:
        loop.best, loop.bad_evals, loop.best_metrics = score, 0, row
    else:
        loop.bad_evals += 1
    return improved


def _budget_spent(cfg: TrainConfig, loop: LoopState) -> str:
    """"max_steps" or "max_time" once that budget is used up, else ""."""
    if cfg.max_steps is not None and loop.step >= cfg.max_steps:
        return "max_steps"
    if cfg.max_time is not None and loop.elapsed >= cfg.max_time:
        return "max_time"
    return ""


# ----- the loop --------------------------------------------------------------------------------------------
def fit(
    task: Task,
    cfg: TrainConfig,
    run: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_step: Callable[[int, float], None] | None = None,
    accumulate: int | None = None,
) -> FitResult:
    """Train `task.model` on `task.batches` with cfg; write checkpoints and metrics to the run folder.

    run        folder for config.json, metrics.csv, loss.png, last/ and best/ (None: keep nothing on disk); under
               torchrun give every rank the same one: rank 0 alone writes it
    resume     a checkpoint (or run folder: its last/) to continue from, exactly where it stopped
    on_step    called after every step with (step, loss): for tests and custom monitoring (every rank; the loss
               is the global batch's)
    accumulate micro-batches per optimizer step (default 1; resuming: the checkpoint's global batch kept)

    Launched by torchrun (WORLD_SIZE > 1), fit joins the process group, trains under DistributedDataParallel
    and leaves the group at the end (module docstring); a dead or silent peer is a DistributedError (one line).
    """
    cfg.check()
    if accumulate is not None and (isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1):
        raise ValueError(f"fit: accumulate must be an integer >= 1, got {accumulate!r}")
    run = Path(run) if run is not None else None
    world, created = distributed.init(next(task.model.parameters()).device)
    try:
        # One training at a time writes a run folder (a second one is refused, naming the holder's pid); under
        # several processes rank 0 holds the lock for all of them.
        with RunLock(run, log) if run is not None and world.main else contextlib.nullcontext():
            return _fit(task, cfg, run, resume, progress if world.main else False,
                        log if world.main else (lambda line: None), on_step, world, accumulate)
    finally:
        distributed.teardown(created)


@contextlib.contextmanager
def _wrapped(task: Task, ddp: nn.Module | None, sync: bool) -> Iterator[None]:
    """The task's forward runs through the DDP wrapper (whose backward averages the gradients across ranks,
    or, with sync False, only accumulates them: no_sync); evaluation and saving see the plain model."""
    if ddp is None:
        yield
        return
    model = task.model
    task.model = ddp
    try:
        with ddp.no_sync() if not sync else contextlib.nullcontext():
            yield
    finally:
        task.model = model


def _fit(task: Task, cfg: TrainConfig, run: Path | None, resume: str | Path | None, progress: bool,
         log: Callable[[str], None], on_step: Callable[[int, float], None] | None, world: World = World(),
         accumulate: int | None = None) -> FitResult:
    model = task.model
    device = next(model.parameters()).device
    opt = make_optimizer(model, cfg)

    # The global batch: every rank's part of it, accumulate micro-batches each (the task's batches cut it).
    ck = load_checkpoint(resume, prefer=("last", "best")) if resume is not None else None
    K = _plan(ck, world, accumulate)
    if world.size * K > 1:
        if not hasattr(task.batches, "distribute"):
            raise ValueError(f"{task.name}: its training batches cannot be cut into parts (no distribute method); "
                             f"train it on one process without --accumulate")
        task.batches.distribute(world.rank, world.size, K)

    # Start fresh, or continue exactly where a checkpoint stopped (weights, moments, data, state, RNG, counters).
    loop, carries = LoopState(), [None] * K
    if ck is not None:
        loop, carries = _resume(ck, task, opt, device, world, K)
    elif world.rank > 0:
        torch.manual_seed(_rank_seed(task, world.rank))  # dropout masks of its own (the weights come from rank 0)

    # DDP: the same weights everywhere (rank 0's are broadcast now), the gradients averaged in every backward.
    ddp = None
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        with collective("wrapping the model in DistributedDataParallel", world):
            ddp = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        log(f"{world.size} processes ({world.backend}): each trains on its part of every global batch, gradients "
            f"averaged by DistributedDataParallel; rank 0 writes the run folder and evaluates (the others wait for "
            f"its result); the learning rate is not rescaled")

    # The run folder holds the resolved config from the start, and one CSV row per evaluation.
    if run is not None and world.main:
        run.mkdir(parents=True, exist_ok=True)
        _write_config(run, task.config_dict())
    columns = ["step", "elapsed_s", "lr", f"{task.unit}s_per_s"]
    columns += [f"train_{m}" for m in task.metrics] + [f"val_{m}" for m in task.metrics]
    metrics_log = MetricsLog(run, columns, task.plot, loop.step if resume else None, log) \
        if run and world.main else None

    # Log lines go through the progress bar when there is one, so they do not tear it.
    bar = _progress_bar(cfg, loop, task) if progress else None
    say = bar.write if bar is not None else log
    losses: list[float] = []
    stopped, message = "", ""
    lr = learning_rate(cfg, loop.step, loop.elapsed)
    model.train()
    tick = time.perf_counter()
    with _Interrupt(world.size > 1).active() as interrupt:
        while True:
            # The clock counts training and evaluation; stop between steps when a budget is spent or on Ctrl-C
            # (under several processes: when any rank's clock or signal says so, so that all stop together).
            now = time.perf_counter()
            loop.elapsed += now - tick
            tick = now
            budget, signalled = _budget_spent(cfg, loop), interrupt.requested
            if world.size > 1 and budget != "max_steps":  # a step count is the same everywhere; clocks are not
                with collective(f"agreeing on step {loop.step + 1}", world):  # and on the clock: the schedule reads it
                    spent, signalled, loop.elapsed = distributed.all_reduce(
                        [float(budget == "max_time"), float(signalled), loop.elapsed], "max")
                budget = "max_time" if spent else ""
                if signalled and not interrupt.signal:
                    interrupt.signal = "SIGTERM"  # another rank's signal (torchrun's agent sends SIGTERM)
            stopped = budget or ("interrupted" if signalled else "")
            if stopped:
                break

            # Learning rate of this step: warm-up, then decay over the budget.
            lr = learning_rate(cfg, loop.step, loop.elapsed)
            for group in opt.param_groups:
                group["lr"] = lr

            # K micro-steps: forward on this rank's next part of the global batch, from the state carried over
            # from the same part of the previous one; each part's mean loss weighed by its share of the global
            # batch, so the gradient (averaged over ranks by DDP) is the global batch's mean loss's.
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            local_loss, units, finite = 0.0, 0, True
            for m in range(K):
                batch = next(task.batches)
                if getattr(batch, "reset_state", False):
                    carries[m] = None  # the text the state summarised does not continue into this batch
                weight = world.size * task.batches.share if world.size * K > 1 else 1.0
                # (under DDP the forward broadcasts rank 0's buffers, BatchNorm's running statistics, and the
                # backward all-reduces the gradients: a dead peer fails either, in one line)
                peers = contextlib.nullcontext() if ddp is None else collective(f"training step {loop.step + 1}", world)
                with _wrapped(task, ddp, sync=m == K - 1), peers:
                    out = task.step_loss(batch, carries[m])
                    # Truncated BPTT: the state's values flow into the next chunk, its graph does not; backward
                    # stops at the chunk boundary (and memory stays bounded).
                    carries[m] = _detach(out.state)
                    loss_value = out.loss.item()
                    finite = finite and math.isfinite(loss_value)
                    # A NaN/inf loss would poison the weights: stop before the optimizer step, keeping the last
                    # checkpoint as it is (every rank still runs its backward, or the others would wait for it).
                    if not finite and world.size == 1:
                        break
                    (out.loss if weight == 1.0 else out.loss * weight).backward()
                local_loss += weight * loss_value
                units += out.units
            step_loss = local_loss if finite else loss_value
            if world.size > 1:  # the global batch's loss: the mean of the ranks' weighed sums
                with collective(f"reducing the loss of step {loop.step + 1}", world):
                    total, units = distributed.all_reduce([local_loss, float(units)])
                step_loss, units = total / world.size, int(units)
            if not math.isfinite(step_loss):
                stopped, message = "nan", _nan_message(loop.step + 1, step_loss, run, "loss")
                break
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            if not torch.isfinite(grad_norm):
                stopped, message = "nan", _nan_message(loop.step + 1, float(grad_norm), run, "gradient norm")
                break
            opt.step()
            loss_value = step_loss

            # Count the step (throughput counts training time only) and show it.
            loop.train_time += time.perf_counter() - t0
            loop.step += 1
            loop.units += units
            loop.sum_loss += loss_value
            loop.n_loss += 1
            losses.append(loss_value)
            if on_step is not None:
                on_step(loop.step, loss_value)
            if bar is not None:
                _advance(bar, cfg, loop, task, loss_value)

            # Every eval_every steps: validate, log a line and a CSV row, save `last` (and `best` if it
            # improved); stop early after `patience` evaluations without improvement.
            if loop.step % cfg.eval_every == 0:
                loop.elapsed += time.perf_counter() - tick
                tick = time.perf_counter()
                counting = _counting(cfg, loop.last_metrics)  # did patience count at the last evaluation?
                improved = _evaluate(task, cfg, loop, lr, world)
                if not counting and may_stop_early(cfg, loop.step, lr):
                    loop.bad_evals = 0 if improved else 1  # wsd's decay has begun: patience counts from here
                _report(say, metrics_log, task, loop, improved)
                loop.elapsed += time.perf_counter() - tick  # the evaluation, in the clock the checkpoint saves
                tick = time.perf_counter()
                # A non-finite validation result or weight means the model diverged: keep last/ as it was.
                diverged = _diverged(task, loop)
                if diverged:
                    stopped, message = "nan", _nan_message(loop.step, diverged, run)
                    break
                _save(run, "last", task, opt, carries, loop, world)
                if improved:
                    _save(run, "best", task, opt, carries, loop, world)
                if (cfg.patience is not None and loop.bad_evals >= cfg.patience
                        and may_stop_early(cfg, loop.step, lr)):  # the same on every rank: no collective needed
                    stopped = "early_stop"
                    break

        # The end of the budget is always measured and saved. A Ctrl-C between evaluations saves `last`, so a
        # resume continues from exactly this step. After a NaN the state in memory may already be poisoned:
        # the last good checkpoint stays.
        if stopped in ("max_steps", "max_time") and loop.last_eval_step != loop.step and loop.step > 0:
            improved = _evaluate(task, cfg, loop, lr, world)
            _report(say, metrics_log, task, loop, improved)
            diverged = _diverged(task, loop)
            if diverged:
                stopped, message = "nan", _nan_message(loop.step, diverged, run)
            else:
                _save(run, "last", task, opt, carries, loop, world)
                if improved:
                    _save(run, "best", task, opt, carries, loop, world)
        elif stopped != "nan" and loop.last_eval_step != loop.step:
            diverged = _diverged(task, None)
            if diverged:
                stopped, message = "nan", _nan_message(loop.step, diverged, run)
            else:
                _save(run, "last", task, opt, carries, loop, world)

    # Tidy up the terminal and the run folder, and say why training stopped.
    if bar is not None:
        bar.close()
    if metrics_log is not None:
        metrics_log.plot()
        metrics_log.close()
    if not message:
        message = _stop_message(stopped, loop, task, run, interrupt.signal)
    return FitResult(
        step=loop.step, stopped=stopped, message=message, losses=losses, best=loop.best_metrics, last=loop.last_metrics,
        elapsed=loop.elapsed, units_per_s=loop.units / max(loop.train_time, 1e-9), signal=interrupt.signal,
    )


# ----- words and progress ----------------------------------------------------------------------------------
def _write_config(run: Path, config: dict) -> None:
    tmp = run / "config.json.tmp"
    tmp.write_text(json.dumps({**config, "versions": versions()}, indent=1, ensure_ascii=True), encoding="utf-8")
    os.replace(tmp, run / "config.json")


def _fmt_units(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def _report(say: Callable[[str], None], metrics_log: MetricsLog | None, task: Task, loop: LoopState,
            improved: bool) -> None:
    """One log line and one CSV row (and a fresh plot) for the evaluation just done."""
    say(_eval_line(loop.last_metrics, task, improved))
    if metrics_log is not None:
        metrics_log.append(loop.last_metrics)
        metrics_log.plot()


def _eval_line(row: dict, task: Task, improved: bool) -> str:
    val = "  ".join(f"val {m} {row['val_' + m]:.3f}" for m in task.metrics)
    train = "  ".join(f"train {m} {row['train_' + m]:.3f}" for m in task.metrics if "train_" + m in row)
    rate = _fmt_units(row[f"{task.unit}s_per_s"])
    return (f"step {row['step']:6d}  {row['elapsed_s']:6.0f}s  {train}  {val}  lr {row['lr']:.2e}  "
            f"{rate} {task.unit}s/s{'  *best' if improved else ''}")


def _diverged(task: Task, loop: LoopState | None) -> str:
    """What went non-finite ("the validation loss became nan", "the weight 'x' became NaN or inf"), or ""."""
    if loop is not None:
        for key, value in loop.last_metrics.items():
            if key.startswith("val_") and isinstance(value, (int, float)) and not math.isfinite(value):
                return f"the validation {key.removeprefix('val_')} became {value}"
    bad = first_non_finite(dict(task.model.state_dict()))
    return f"the weight {bad!r} became NaN or inf" if bad is not None else ""


def _good_checkpoint(run: Path | None) -> tuple[Path, int] | None:
    """The run's checkpoint a --resume would continue from (last/, else best/), with its step, when it loads
    and its weights are finite; None when there is none."""
    if run is None:
        return None
    for name in ("last", "best"):
        try:
            ck = load_checkpoint(run / name, prefer=(name,))
        except CheckpointError:
            continue
        return ck.path, int(ck.state.get("step", 0))
    return None


def _nan_message(step: int, what: str | float, run: Path | None, kind: str = "") -> str:
    """The one line that ends a diverged run: what broke, which checkpoint is good, what to do."""
    if kind:  # a non-finite loss or gradient norm (value, kind) before the optimizer step
        what = f"the {kind} became {what}"
    good = _good_checkpoint(run)
    if good is None:
        return (f"stopped: {what} at step {step}; nothing was saved (no good checkpoint yet); "
                f"start again with a lower --lr (or --clip)")
    path, at = good
    resume = run if path.name == "last" else path
    return (f"stopped: {what} at step {step}; not saved; the last good checkpoint is {path} (step {at}); "
            f"continue from it with --resume {resume} and a lower --lr (or --clip), or start again")


def _stop_message(stopped: str, loop: LoopState, task: Task, run: Path | None, signal_name: str = "") -> str:
    why = {"max_steps": "reached --max-steps", "max_time": "reached --max-time", "early_stop":
           "validation stopped improving (early stopping)",
           "interrupted": "interrupted (SIGTERM)" if signal_name == "SIGTERM" else "interrupted (Ctrl-C)"}[stopped]
    where = f"; checkpoints in {run}" if run is not None else ""
    shown = -loop.best if task.monitor_mode == "max" else loop.best
    best = f"; best {task.monitor} {shown:.3f}" if math.isfinite(loop.best) else ""
    return f"{why} after {loop.step} steps, {loop.elapsed:.0f} s{best}{where}"


def _progress_bar(cfg: TrainConfig, loop: LoopState, task: Task):
    from tqdm.auto import tqdm

    # the bar counts steps when the budget is in steps, else seconds; tqdm's "remaining" is the time left
    if cfg.max_steps is not None:
        bar = tqdm(total=cfg.max_steps, initial=loop.step, unit="step", dynamic_ncols=True, leave=False,
                   bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
    else:
        bar = tqdm(total=round(cfg.max_time), initial=round(loop.elapsed), unit="s", dynamic_ncols=True,
                   leave=False, bar_format="{l_bar}{bar}| [{elapsed}<{remaining}{postfix}]")
    bar.set_description(task.name)
    return bar


def _advance(bar, cfg: TrainConfig, loop: LoopState, task: Task, loss: float) -> None:
    if cfg.max_steps is not None:
        bar.update(1)
    else:
        bar.update(min(round(loop.elapsed), bar.total) - bar.n)
    if loop.step % 10 == 0:
        shown = task.describe(loss)
        rate = _fmt_units(loop.units / max(loop.train_time, 1e-9))
        bar.set_postfix_str(", ".join(f"{k} {v:.3f}" for k, v in shown.items()) + f", {rate} {task.unit}s/s",
                            refresh=False)
