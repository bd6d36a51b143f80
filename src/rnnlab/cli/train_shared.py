"""What `rnnlab train recognize` and `rnnlab train caption` share: the training and run options, resolving
the run config (fresh or --resume, which must not change the model or data), and running `fit`."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .runopts import TRAIN_OPTS, add_run_options, given, resolve_run, run_fit, set_threads  # one definition for every train command

__all__ = ["TRAIN_OPTS", "add_run_options", "add_train_options", "given", "resolve", "run_fit", "set_threads"]


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

    def fresh(train_options: dict):
        cfg = config_cls()
        cfg.data = dataclasses.replace(cfg.data, **given(args, data_opts))
        cfg.model = dataclasses.replace(cfg.model, **given(args, model_opts))
        cfg.train = dataclasses.replace(cfg.train, **train_options)
        check_model(cfg.model)  # fail before reading the data
        return cfg

    return resolve_run(args, task, config_cls.from_dict, fresh, data_opts, model_opts)
