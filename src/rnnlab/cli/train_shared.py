"""What `rnnlab train recognize` and `rnnlab train caption` share: the training and run options, resolving
the run config (fresh or --resume, which must not change the model or data), and running `fit`."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from ..train import fit, load_checkpoint
from ..train.checkpoint import find_checkpoint
from .common import UserError
from .runopts import TRAIN_OPTS, add_run_options, given  # one definition for every train command

__all__ = ["TRAIN_OPTS", "add_run_options", "add_train_options", "given", "resolve", "run_fit"]


def add_train_options(p, D) -> None:
    """The training group; D is the task's default run config (its defaults are shown in --help)."""
    g = p.add_argument_group("training")
    g.add_argument("--lr", type=float, help=f"AdamW peak learning rate (default {D.train.lr})")
    g.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {D.train.weight_decay})")
    g.add_argument("--clip", type=float, help=f"gradient-norm clipping (default {D.train.clip})")
    g.add_argument("--warmup-steps", type=int, help=f"learning-rate warm-up (default {D.train.warmup_steps})")
    t = D.train
    g.add_argument("--max-time", type=float, metavar="SECONDS", help="time budget (default " + (
        f"{t.max_time:.0f}, or none when --max-steps is given)" if t.max_time else "none)"))
    g.add_argument("--max-steps", type=int, help="step budget; the schedule then follows steps (default " + (
        f"{t.max_steps}, or none when --max-time is given)" if t.max_steps else "none)"))
    g.add_argument("--eval-every", type=int, metavar="STEPS", help=f"steps between evaluations (default {D.train.eval_every})")
    g.add_argument("--patience", type=int, help=f"evaluations without improvement before stopping (default {D.train.patience})")
    g.add_argument("--seed", type=int, help=f"random seed (default {D.train.seed})")
    g.add_argument("--device", help=f"cpu, cuda, cuda:N, mps or auto (default {D.train.device})")


def resolve(args: argparse.Namespace, config_cls, task: str, model_opts: list[str], data_opts: list[str],
            check_model) -> tuple[object, Path, str | None]:
    """(run config, run folder, checkpoint to resume from or None), from the options (and the saved run)."""
    budget = given(args, ["max_steps", "max_time"])
    if budget:  # a budget on the command line replaces the whole default or saved budget
        budget = {"max_steps": budget.get("max_steps"), "max_time": budget.get("max_time")}
    if args.resume:
        ck_dir = find_checkpoint(args.resume, prefer=("last", "best"))
        saved = load_checkpoint(ck_dir)
        if saved.config.get("task") != task:
            raise UserError(f"--resume: {ck_dir} is a {saved.config.get('task')!r} run, not {task!r}")
        cfg = config_cls.from_dict(saved.config)
        for section, names in (("model", model_opts), ("data", data_opts)):
            for name, value in given(args, names).items():
                if getattr(getattr(cfg, section), name) != value:
                    flag = "--" + name.replace("_", "-")
                    raise UserError(f"--resume: the run was trained with {flag} {getattr(getattr(cfg, section), name)}, "
                                    f"not {value}; drop {flag} to continue it, or start a new run")
        cfg.train = dataclasses.replace(cfg.train, **{**given(args, TRAIN_OPTS), **budget})
        loop = saved.state.get("loop", {})
        t = cfg.train
        if (t.max_steps is not None and loop.get("step", 0) >= t.max_steps) or \
                (t.max_time is not None and loop.get("elapsed", 0.0) >= t.max_time):
            raise UserError(f"--resume: {ck_dir} already used its budget ({loop.get('step')} steps, "
                            f"{loop.get('elapsed', 0):.0f} s); give a larger --max-time or --max-steps to train longer")
        return cfg, Path(args.out) if args.out else ck_dir.parent, str(ck_dir)
    cfg = config_cls()
    cfg.data = dataclasses.replace(cfg.data, **given(args, data_opts))
    cfg.model = dataclasses.replace(cfg.model, **given(args, model_opts))
    cfg.train = dataclasses.replace(cfg.train, **{**given(args, TRAIN_OPTS), **budget})
    check_model(cfg.model)  # fail before reading the data
    cfg.train.check()
    run_dir = Path(args.out) if args.out else Path("runs") / time.strftime(f"{task}-%Y%m%d-%H%M%S")
    if (run_dir / "last").exists() or (run_dir / "best").exists():
        raise UserError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, or choose another --out")
    return cfg, run_dir, None


def set_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)


def run_fit(task, cfg, run_dir: Path, resume: str | None, args: argparse.Namespace, command: str):
    """Train; returns (exit code or None to go on, FitResult)."""
    result = fit(task, cfg.train, run_dir, resume=resume, progress=not args.quiet and sys.stderr.isatty(),
                 log=lambda s: print(s, flush=True))
    if result.stopped == "nan":
        print(f"rnnlab train: {result.message}", file=sys.stderr, flush=True)
        return 1, result
    print(result.message, flush=True)
    if result.stopped == "interrupted":
        print(f"continue with: rnnlab train {command} --resume {run_dir}", flush=True)
        return 130, result
    return None, result
