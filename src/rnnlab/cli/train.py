"""`rnnlab train TASK`: one sub-command per registered task, all run by the same few lines.

A task's options come from its run config's fields (cli/options.py): data, model, the recurrent layers
(RecurrentConfig, the same for every task) and training; --out/--resume/--quiet/--threads from runopts.py.
What differs per task is in cli/train_<task>.py: its examples, any option that is not a config field, and
what it reports after training (a sample, a test-split score). List such a module in TASKS.
"""

from __future__ import annotations

import argparse
import functools

from ..train import load_checkpoint
from ..train.registry import TASKS as KINDS
from ..train.task import TaskKind
from . import train_caption, train_charlm, train_classify, train_forecast, train_recognize
from .common import Parser
from .options import add_config_options
from .runopts import add_run_options, resolve_run, run_fit, set_threads

__all__ = ["TASKS", "add_parser"]

TASKS = [train_charlm, train_classify, train_forecast, train_recognize, train_caption]  # order of `rnnlab train --help`


def add_parser(commands) -> None:
    train = commands.add_parser("train", help="train a model", description="Train a model for a task.",
                                epilog=train_charlm.EXAMPLES)
    tasks = train.add_subparsers(dest="task", metavar="TASK", required=True, parser_class=Parser)
    for module in TASKS:
        kind = KINDS[module.TASK]
        p = tasks.add_parser(kind.name, help=kind.help, description=kind.description, epilog=module.EXAMPLES)
        add_config_options(p, kind.config(), kind.presets)
        add_run_options(p, kind.name, kind.recipes)
        if hasattr(module, "add_options"):
            module.add_options(p)
        p.set_defaults(run=functools.partial(run, kind=kind, report=module.report))


def run(args: argparse.Namespace, kind: TaskKind, report) -> int:
    cfg, run_dir, resume = resolve_run(args, kind)
    threads = set_threads(args, cfg)
    print(f"reading {cfg.data.data} ...; {threads.line()}", flush=True)
    restored = {}
    if resume:  # what the run built from its data at the start (a vocabulary) comes back, not rebuilt
        extras = kind.read_state(load_checkpoint(resume).state, cfg)
        restored = {name: extras[name] for name in kind.restore}
    task = kind.task(cfg, **restored)
    print(f"{task.summary()}; run folder {run_dir}" + (f"; resuming from {resume}" if resume else ""), flush=True)
    code, result = run_fit(task, cfg, run_dir, resume, args, kind.name, threads)
    if code is not None:
        return code
    return report(task, cfg, run_dir, result, args)
