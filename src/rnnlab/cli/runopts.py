"""Options and run-folder handling shared by `rnnlab train classify` and `rnnlab train forecast` (the run
options, TRAIN_OPTS and `given` by recognize and caption too, through train_shared.py): the
recurrent model's options, the training budget, --out / --resume, and how a resumed run's options are checked."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..kernels import backend_names
from ..models import CELLS
from ..train import fit, load_checkpoint
from ..train.checkpoint import find_checkpoint
from .common import UserError

__all__ = ["MODEL_OPTS", "TRAIN_OPTS", "add_model_options", "add_run_options", "add_train_options", "given",
           "resolve_run", "run_fit", "set_threads"]

MODEL_OPTS = ["cell", "hidden", "layers", "embed", "dropout", "peephole", "coupled", "layer_norm", "proj_size",
              "backend", "init"]
TRAIN_OPTS = ["lr", "weight_decay", "clip", "warmup_steps", "max_steps", "max_time", "eval_every", "patience",
              "seed", "device"]


def add_model_options(p, defaults) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=list(CELLS), help=f"recurrent cell (default {defaults.cell})")
    g.add_argument("--hidden", type=int, metavar="H", help=f"units per layer (default {defaults.hidden})")
    g.add_argument("--layers", type=int, metavar="L", help=f"stacked layers (default {defaults.layers})")
    g.add_argument("--embed", type=int, help=f"embedding / input projection width (default {defaults.embed})")
    g.add_argument("--dropout", type=float, help=f"dropout probability (default {defaults.dropout})")
    g.add_argument("--peephole", action="store_true", default=None, help="LSTM peephole connections")
    g.add_argument("--coupled", action="store_true", default=None, help="LSTM coupled input-forget gate")
    g.add_argument("--layer-norm", action="store_true", default=None, help="layer-normalised cell")
    g.add_argument("--proj-size", type=int, metavar="P", help="LSTM projection size (default 0: none)")
    g.add_argument("--init", choices=["orthogonal", "torch"], help=f"weight initialisation (default {defaults.init})")
    g.add_argument("--backend", choices=list(backend_names()), help=f"recurrent backend (default {defaults.backend})")


def add_train_options(p, defaults) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--lr", type=float, help=f"AdamW peak learning rate (default {defaults.lr})")
    g.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {defaults.weight_decay})")
    g.add_argument("--clip", type=float, help=f"gradient-norm clipping (default {defaults.clip})")
    g.add_argument("--warmup-steps", type=int, help=f"learning-rate warm-up (default {defaults.warmup_steps})")
    g.add_argument("--max-time", type=float, metavar="SECONDS", help="time budget (default: the data set's preset, "
                   f"else {defaults.max_time:.0f}; none when only --max-steps is given)")
    g.add_argument("--max-steps", type=int, help="step budget (default: none; the schedule then follows steps)")
    g.add_argument("--eval-every", type=int, metavar="STEPS", help="steps between validations (default: preset)")
    g.add_argument("--patience", type=int, help="validations without improvement before stopping (default: preset)")
    g.add_argument("--seed", type=int, help=f"random seed: initial weights, split, batches (default {defaults.seed})")
    g.add_argument("--device", help=f"cpu, cuda, cuda:N, mps or auto (default {defaults.device})")


def add_run_options(p, task: str) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--out", metavar="DIR", help=f"run folder (default runs/{task}-DATE-TIME)")
    g.add_argument("--resume", metavar="RUN_OR_CHECKPOINT", help="continue a run from its last/ checkpoint")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice; 1 is steadier "
                   "on a machine busy with other jobs)")


def given(args: argparse.Namespace, names: list[str]) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def set_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)


def resolve_run(args: argparse.Namespace, task: str, from_dict: Callable[[dict], Any],
                fresh: Callable[[dict], Any], data_opts: list[str],
                model_opts: list[str] = MODEL_OPTS) -> tuple[Any, Path, str | None]:
    """(config, run folder, checkpoint to resume from or None). A resumed run keeps its data and model
    options (a different one given on the command line is an error); training options may change.
    fresh(train_options) builds a new run's config from the command line."""
    budget = given(args, ["max_steps", "max_time"])
    if budget:  # a budget on the command line replaces the whole default or saved budget
        budget = {"max_steps": budget.get("max_steps"), "max_time": budget.get("max_time")}
    if args.resume:
        ck_dir = find_checkpoint(args.resume, prefer=("last", "best"))
        saved = load_checkpoint(ck_dir)
        if saved.config.get("task") != task:
            raise UserError(f"--resume: {ck_dir} is a {saved.config.get('task')!r} run, not {task!r}")
        cfg = from_dict(saved.config)
        for section, names in (("model", model_opts), ("data", data_opts)):
            for name, value in given(args, names).items():
                if getattr(getattr(cfg, section), name) != value:
                    flag = "--" + name.replace("_", "-")
                    raise UserError(f"--resume: the run was trained with {flag} {getattr(getattr(cfg, section), name)}"
                                    f", not {value}; drop {flag} to continue it, or start a new run")
        cfg.train = dataclasses.replace(cfg.train, **{**given(args, TRAIN_OPTS), **budget})
        loop = saved.state.get("loop", {})
        t = cfg.train
        if (t.max_steps is not None and loop.get("step", 0) >= t.max_steps) or \
                (t.max_time is not None and loop.get("elapsed", 0.0) >= t.max_time):
            raise UserError(f"--resume: {ck_dir} already used its budget ({loop.get('step')} steps, "
                            f"{loop.get('elapsed', 0):.0f} s); give a larger --max-time or --max-steps to train longer")
        return cfg, Path(args.out) if args.out else ck_dir.parent, str(ck_dir)
    cfg = fresh({**given(args, TRAIN_OPTS), **budget})
    cfg.train.check()
    run_dir = Path(args.out) if args.out else Path("runs") / time.strftime(f"{task}-%Y%m%d-%H%M%S")
    if (run_dir / "last").exists() or (run_dir / "best").exists():
        raise UserError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, or choose another --out")
    return cfg, run_dir, None


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
