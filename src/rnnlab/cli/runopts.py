"""What every `rnnlab train <task>` shares: the run options, resolving the run (a fresh one, or --resume)
once for every task, and running `fit` with the command line's words around it."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from .._fields import flag_of
from ..train import fit, load_checkpoint, override
from ..train.checkpoint import find_checkpoint
from ..train.config import leaves, preset_config
from ..train.distributed import DistributedError, World
from ..train.registry import checked_config
from ..train.runlock import check_unlocked
from ..train.task import TaskKind
from ..train.threads import ThreadChoice, ThreadWatch, choose_threads, step_work
from .common import UserError
from .options import config_fields, flag_namer, given_overrides

__all__ = ["add_run_options", "resolve_run", "run_fit", "set_threads"]


def add_run_options(p, task: str, recipes=None) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--out", metavar="DIR", help=f"run folder (default runs/{task}-DATE-TIME)")
    if recipes:
        g.add_argument("--recipe", choices=list(recipes), help="a named set of options, applied over the data "
                       "set's preset and under the options given: " + "; ".join(f"{name}: {r.help}"
                                                                               for name, r in recipes.items()))
    g.add_argument("--resume", metavar="RUN_OR_CHECKPOINT", help="continue a run from its last/ checkpoint")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--threads", type=int, help="CPU threads for torch (default: chosen from the usable cores, "
                   "their load and the work per step; `rnnlab env` shows the choice)")
    g.add_argument("--accumulate", type=int, metavar="K", help="gradient accumulation: K micro-batches of --batch "
                   "per optimizer step, so the global batch is --batch x processes x K (default 1; on --resume the "
                   "one that keeps the run's global batch). The learning rate is not rescaled: set --lr yourself")
    g.add_argument("--nproc", type=int, metavar="N", help="train on N processes of this machine, started by torch's "
                   "launcher (torch.distributed.run; the same as `torchrun --standalone --nproc-per-node N -m rnnlab "
                   "train ...`); --batch is per process, the learning rate is not rescaled")


def set_threads(args: argparse.Namespace, cfg=None) -> ThreadChoice:
    """Set torch's thread count: --threads, else the choice for this machine and run (train/threads.py)."""
    world = World.from_env()
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be >= 1, got {args.threads}")
        choice = ThreadChoice(args.threads, "--threads")
    elif world.local_size > 1:  # several training processes on this machine share its cores
        from ..train.threads import usable_cores

        cores = usable_cores()
        choice = ThreadChoice(max(1, cores // world.local_size),
                              f"{world.local_size} processes share {cores} usable core{'s' * (cores > 1)}")
    else:
        work = step_work(cfg.data.batch, cfg.model.rnn) if cfg is not None and hasattr(cfg.data, "batch") else None
        choice = choose_threads(work)
    torch.set_num_threads(choice.threads)
    return choice


def resolve_run(args: argparse.Namespace, kind: TaskKind):
    """(run config, run folder, checkpoint folder to resume from or None) from the command line.

    Fresh: the task's defaults, the data set's preset, the --recipe, then the options given; the model's options are checked
    (each error names its flag) before any data is read. --resume: the saved config; its data and model
    options cannot change (one given that differs is an error), its training options can."""
    world = World.from_env()
    if world.size > 1 and not args.out and not args.resume:
        raise UserError(f"under torchrun ({world.size} processes) every rank and every restart must name the same "
                        f"run folder: give --out DIR")
    if getattr(args, "accumulate", None) is not None and args.accumulate < 1:
        raise UserError(f"--accumulate must be >= 1, got {args.accumulate}")
    # torchrun --max-restarts: a restarted worker continues its run from the last checkpoint it wrote (the first
    # attempt refused a folder that already held a run, so a checkpoint there is this run's)
    if os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") not in ("", "0") and args.out and \
            ((Path(args.out) / "last").exists() or (Path(args.out) / ".last.old").exists()):
        if world.main:
            print(f"restart {os.environ['TORCHELASTIC_RESTART_COUNT']} by torchrun: resuming from {args.out}",
                  flush=True)
        args.resume, args.recipe = args.out, None
    default = kind.config()
    given = given_overrides(args, default)
    train = given.pop("train", {})
    if "max_steps" in train or "max_time" in train:  # a budget given replaces the whole default or saved budget
        train = {**train, "max_steps": train.get("max_steps"), "max_time": train.get("max_time")}
    if args.resume:
        ck_dir = find_checkpoint(args.resume, prefer=("last", "best"))
        saved = load_checkpoint(ck_dir)
        if saved.config.get("task") != kind.name:
            raise UserError(f"--resume: {ck_dir} is a {saved.config.get('task')!r} run, not {kind.name!r}")
        cfg = checked_config(kind, saved)  # sizes capped, types checked, weights' shapes matched: before any model
        _same_as_saved(cfg, given, default)
        cfg = override(cfg, {"train": train})
        cfg.check_ranges()  # the training options given now, NaN included
        loop, t = saved.state.get("loop", {}), cfg.train
        if (t.max_steps is not None and loop.get("step", 0) >= t.max_steps) or \
                (t.max_time is not None and loop.get("elapsed", 0.0) >= t.max_time):
            raise UserError(f"--resume: {ck_dir} already used its budget ({loop.get('step')} steps, "
                            f"{loop.get('elapsed', 0):.0f} s); give a larger --max-time or --max-steps to train longer")
        if getattr(args, "recipe", None):
            raise UserError(f"--resume: a resumed run keeps the options it was trained with; drop --recipe {args.recipe}")
        run_dir = Path(args.out) if args.out else ck_dir.parent
        if world.main:  # rank 0 takes the lock for every rank
            check_unlocked(run_dir)  # before reading any data: a live training there refuses this one
        return cfg, run_dir, str(ck_dir)
    recipe = kind.recipes[args.recipe].overrides if getattr(args, "recipe", None) else {}
    cfg = preset_config(kind.config, kind.presets, given.get("data", {}).get("data"), {**given, "train": train},
                        recipe)
    cfg.check_ranges()  # every numeric option, once: in range and finite (NaN passes a `<= 0` test)
    cfg.model.check(name=flag_namer(default), sizes=False)  # before reading the data, which sets the sizes
    cfg.train.check()
    run_dir = Path(args.out) if args.out else Path("runs") / time.strftime(f"{kind.name}-%Y%m%d-%H%M%S")
    if world.main:
        check_unlocked(run_dir)
    if (run_dir / "last").exists() or (run_dir / "best").exists():
        raise UserError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, or choose another --out")
    return cfg, run_dir, None


def _same_as_saved(cfg, given: dict, default) -> None:
    """A resumed run keeps its data and model: an option given with another value than the saved one is an
    error naming the flag."""
    flags = {path: flag_of(f) for path, f, *_ in config_fields(default)}
    for path, value in leaves(given):
        saved = cfg
        for part in path.split("."):
            saved = getattr(saved, part)
        if saved != value:
            flag = flags[path]
            raise UserError(f"--resume: the run was trained with {flag} {saved}, not {value}; drop {flag} to "
                            f"continue it, or start a new run")


def run_fit(task, cfg, run_dir: Path, resume: str | None, args: argparse.Namespace, command: str,
            threads: ThreadChoice | None = None):
    """Train; returns (exit code or None to go on, FitResult). threads: the count set_threads chose; unless
    --threads gave it, the run drops to 1 thread if other processes come to hold the cores (ThreadWatch)."""
    world = World.from_env()
    log = lambda s: print(s, flush=True)  # noqa: E731
    watch = ThreadWatch(threads.threads, log) if threads is not None and args.threads is None else None
    try:
        result = fit(task, cfg.train, run_dir, resume=resume, progress=not args.quiet and sys.stderr.isatty(),
                     log=log, on_step=watch, accumulate=getattr(args, "accumulate", None))
    except DistributedError as e:
        raise UserError(str(e)) from None
    if not world.main:  # rank 0 says how it ended
        codes = {"nan": 1, "interrupted": 143 if result.signal == "SIGTERM" else 130}
        return codes.get(result.stopped), result
    if result.stopped == "nan":
        print(f"rnnlab train: {result.message}", file=sys.stderr, flush=True)
        return 1, result
    print(result.message, flush=True)
    if result.stopped == "interrupted":
        on = f" on {world.size} processes (torchrun, or --nproc {world.size} on one machine)" if world.size > 1 else ""
        print(f"continue with: rnnlab train {command} --resume {run_dir}{on}", flush=True)
        return (143 if result.signal == "SIGTERM" else 130), result
    return None, result
