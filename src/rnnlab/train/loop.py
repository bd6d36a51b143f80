"""fit: the one training loop, for every task (see task.py for what a task provides).

    per step: learning rate (warm-up, then cosine decay over the budget) -> next batch -> forward with the
    carried state -> stop on a NaN/inf loss -> backward -> clip the gradient norm -> AdamW step
    every eval_every steps: validate, log one line and a CSV row, save `last` (and `best` if improved),
    stop early after `patience` evaluations without improvement
    Ctrl-C: finish the current step, save `last`, return; a second Ctrl-C aborts at once

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
    CheckpointError, flatten_state, load_checkpoint, rng_state, save_checkpoint, set_rng_state, unflatten_state,
)
from .config import TrainConfig, versions
from .runlog import MetricsLog
from .task import Task

__all__ = ["FitResult", "fit", "learning_rate", "make_optimizer"]


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


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (decaying biases, gains and peepholes only hurts)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def learning_rate(cfg: TrainConfig, step: int, elapsed: float) -> float:
    """Linear warm-up over warmup_steps, then cosine decay to min_lr_ratio * lr at the end of the budget
    (max_steps if given, else max_time)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.decay == "none":
        return cfg.lr
    if cfg.max_steps is not None:
        progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    else:
        progress = elapsed / cfg.max_time
    progress = min(max(progress, 0.0), 1.0)
    low = cfg.lr * cfg.min_lr_ratio
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * progress))


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


# ----- Ctrl-C ----------------------------------------------------------------------------------------------
class _Interrupt:
    """While active, the first SIGINT sets a flag the loop checks between steps; the second raises."""

    def __init__(self) -> None:
        self.requested = False

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def active(self) -> Iterator[_Interrupt]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach only the main thread; elsewhere Ctrl-C is the caller's business
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


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
) -> FitResult:
    """Train `task.model` on `task.batches` with cfg; write checkpoints and metrics to the run folder.

    run     folder for config.json, metrics.csv, loss.png, last/ and best/ (None: keep nothing on disk)
    resume  a checkpoint (or run folder: its last/) to continue from, exactly where it stopped
    on_step called after every step with (step, loss): for tests and custom monitoring
    """
    cfg.check()
    model = task.model
    device = next(model.parameters()).device
    opt = make_optimizer(model, cfg)
    run = Path(run) if run is not None else None

    # the loop's counters: all of them go into state.json
    c = {"step": 0, "elapsed": 0.0, "train_time": 0.0, "units": 0, "sum_loss": 0.0, "n_loss": 0,
         "best": math.inf, "bad_evals": 0, "last_eval_step": -1}
    best_metrics: dict[str, float] = {}
    last_metrics: dict[str, float] = {}
    carry: Any = None
    if resume is not None:
        ck = load_checkpoint(resume, prefer=("last", "best"))
        try:
            model.load_state_dict(ck.model)
            _optimizer_from_files(opt, ck.optimizer, ck.state["optimizer"])
            task.batches.load_state_dict(ck.state["data"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{ck.path}: does not match this model or data ({str(e).splitlines()[0]})") from None
        c.update(ck.state["loop"])
        best_metrics, last_metrics = ck.state.get("best_metrics", {}), ck.state.get("metrics", {})
        carry = unflatten_state(ck.carry, ck.state["carry"], device)
        set_rng_state(ck.state["rng"])
    if run is not None:
        run.mkdir(parents=True, exist_ok=True)
        _write_config(run, task.config_dict())
    columns = ["step", "elapsed_s", "lr", f"{task.unit}s_per_s"]
    columns += [f"train_{m}" for m in task.metrics] + [f"val_{m}" for m in task.metrics]
    metrics_log = MetricsLog(run, columns, task.plot, c["step"] if resume else None, log) if run else None

    def save(name: str) -> None:
        if run is None:
            return
        opt_tensors, opt_meta = _optimizer_to_files(opt)
        carry_tensors, carry_kind = flatten_state(carry)
        save_checkpoint(
            run / name, model=model.state_dict(), optimizer=opt_tensors, carry=carry_tensors,
            config=task.config_dict(),
            state={"task": task.name, "step": c["step"], "loop": dict(c), "optimizer": opt_meta,
                   "data": task.batches.state_dict(), "carry": carry_kind, "rng": rng_state(),
                   "metrics": last_metrics, "best_metrics": best_metrics, **task.extra_state()},
        )

    def evaluate() -> bool:
        """Validate, log, checkpoint; True when early stopping says stop."""
        nonlocal best_metrics, last_metrics
        model.eval()
        with torch.no_grad():
            val = task.evaluate()
        model.train()
        train = task.describe(c["sum_loss"] / c["n_loss"]) if c["n_loss"] else {}
        row = {"step": c["step"], "elapsed_s": round(c["elapsed"], 2), "lr": lr,
               f"{task.unit}s_per_s": round(c["units"] / max(c["train_time"], 1e-9), 1),
               **{f"train_{k}": v for k, v in train.items()}, **{f"val_{k}": v for k, v in val.items()}}
        last_metrics = row
        c["sum_loss"], c["n_loss"], c["last_eval_step"] = 0.0, 0, c["step"]
        score = row[task.monitor] if task.monitor_mode != "max" else -row[task.monitor]  # c["best"]: lower wins
        improved = score < c["best"] - cfg.min_delta
        if improved:
            c["best"], c["bad_evals"], best_metrics = score, 0, row
        else:
            c["bad_evals"] += 1
        say(_eval_line(row, task, improved))
        if metrics_log is not None:
            metrics_log.append(row)
            metrics_log.plot()
        save("last")
        if improved:
            save("best")
        return cfg.patience is not None and c["bad_evals"] >= cfg.patience

    bar = _progress_bar(cfg, c, task) if progress else None
    say = bar.write if bar is not None else log
    losses: list[float] = []
    stopped, message = "", ""
    lr = learning_rate(cfg, c["step"], c["elapsed"])
    model.train()
    tick = time.perf_counter()
    with _Interrupt().active() as interrupt:
        while True:
            now = time.perf_counter()
            c["elapsed"] += now - tick
            tick = now
            if cfg.max_steps is not None and c["step"] >= cfg.max_steps:
                stopped = "max_steps"
                break
            if cfg.max_time is not None and c["elapsed"] >= cfg.max_time:
                stopped = "max_time"
                break
            if interrupt.requested:
                stopped = "interrupted"
                break

            lr = learning_rate(cfg, c["step"], c["elapsed"])
            for group in opt.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            batch = next(task.batches)
            if getattr(batch, "reset_state", False):
                carry = None  # the text the state summarised does not continue into this batch
            out = task.step_loss(batch, carry)
            # Truncated BPTT: the state's values flow into the next chunk, its graph does not; backward
            # stops at the chunk boundary (and memory stays bounded).
            carry = _detach(out.state)
            loss_value = out.loss.item()
            if not math.isfinite(loss_value):
                stopped, message = "nan", _nan_message(c["step"] + 1, loss_value, "loss", run)
                break
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            if not torch.isfinite(grad_norm):
                stopped, message = "nan", _nan_message(c["step"] + 1, float(grad_norm), "gradient norm", run)
                break
            opt.step()
            c["train_time"] += time.perf_counter() - t0
            c["step"] += 1
            c["units"] += out.units
            c["sum_loss"] += loss_value
            c["n_loss"] += 1
            losses.append(loss_value)
            if on_step is not None:
                on_step(c["step"], loss_value)
            if bar is not None:
                _advance(bar, cfg, c, task, loss_value)
            if c["step"] % cfg.eval_every == 0:
                c["elapsed"] += time.perf_counter() - tick
                tick = time.perf_counter()
                if evaluate():
                    stopped = "early_stop"
                    break

        if stopped == "nan":
            pass  # keep the last good checkpoint: the state in memory may already be poisoned
        elif stopped in ("max_steps", "max_time") and c["last_eval_step"] != c["step"] and c["step"] > 0:
            evaluate()  # the end of the budget is always measured and saved
        elif c["last_eval_step"] != c["step"]:
            save("last")  # Ctrl-C between evaluations: resume from exactly this step
    if bar is not None:
        bar.close()
    if metrics_log is not None:
        metrics_log.plot()
        metrics_log.close()
    if not message:
        message = _stop_message(stopped, c, task, run)
    return FitResult(
        step=c["step"], stopped=stopped, message=message, losses=losses, best=best_metrics, last=last_metrics,
        elapsed=c["elapsed"], units_per_s=c["units"] / max(c["train_time"], 1e-9),
    )


# ----- words and progress ----------------------------------------------------------------------------------
def _write_config(run: Path, config: dict) -> None:
    tmp = run / "config.json.tmp"
    tmp.write_text(json.dumps({**config, "versions": versions()}, indent=1, ensure_ascii=True), encoding="utf-8")
    os.replace(tmp, run / "config.json")


def _fmt_units(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def _eval_line(row: dict, task: Task, improved: bool) -> str:
    val = "  ".join(f"val {m} {row['val_' + m]:.3f}" for m in task.metrics)
    train = "  ".join(f"train {m} {row['train_' + m]:.3f}" for m in task.metrics if "train_" + m in row)
    rate = _fmt_units(row[f"{task.unit}s_per_s"])
    return (f"step {row['step']:6d}  {row['elapsed_s']:6.0f}s  {train}  {val}  lr {row['lr']:.2e}  "
            f"{rate} {task.unit}s/s{'  *best' if improved else ''}")


def _nan_message(step: int, value: float, what: str, run: Path | None) -> str:
    kept = f"the last good checkpoint is {run / 'last'}" if run is not None and (run / "last").exists() else \
        "no checkpoint had been saved yet"
    return (f"stopped: the {what} became {value} at step {step}; {kept}; "
            f"lower --lr (or --clip), then --resume or start again")


def _stop_message(stopped: str, c: dict, task: Task, run: Path | None) -> str:
    why = {"max_steps": "reached --max-steps", "max_time": "reached --max-time", "early_stop":
           "validation stopped improving (early stopping)", "interrupted": "interrupted (Ctrl-C)"}[stopped]
    where = f"; checkpoints in {run}" if run is not None else ""
    shown = -c["best"] if task.monitor_mode == "max" else c["best"]
    best = f"; best {task.monitor} {shown:.3f}" if math.isfinite(c["best"]) else ""
    return f"{why} after {c['step']} steps, {c['elapsed']:.0f} s{best}{where}"


def _progress_bar(cfg: TrainConfig, c: dict, task: Task):
    from tqdm.auto import tqdm

    # the bar counts steps when the budget is in steps, else seconds; tqdm's "remaining" is the time left
    if cfg.max_steps is not None:
        bar = tqdm(total=cfg.max_steps, initial=c["step"], unit="step", dynamic_ncols=True, leave=False,
                   bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
    else:
        bar = tqdm(total=round(cfg.max_time), initial=round(c["elapsed"]), unit="s", dynamic_ncols=True,
                   leave=False, bar_format="{l_bar}{bar}| [{elapsed}<{remaining}{postfix}]")
    bar.set_description(task.name)
    return bar


def _advance(bar, cfg: TrainConfig, c: dict, task: Task, loss: float) -> None:
    if cfg.max_steps is not None:
        bar.update(1)
    else:
        bar.update(min(round(c["elapsed"]), bar.total) - bar.n)
    if c["step"] % 10 == 0:
        shown = task.describe(loss)
        rate = _fmt_units(c["units"] / max(c["train_time"], 1e-9))
        bar.set_postfix_str(", ".join(f"{k} {v:.3f}" for k, v in shown.items()) + f", {rate} {task.unit}s/s",
                            refresh=False)
