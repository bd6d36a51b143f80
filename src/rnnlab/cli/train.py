"""`rnnlab train TASK`: one sub-command per registered task, all run by the same few lines.

A task's options come from its run config's fields (cli/options.py): data, model, the recurrent layers
(RecurrentConfig, the same for every task) and training; --out/--resume/--quiet/--threads from runopts.py.
What differs per task is in cli/train_<task>.py: its examples, any option that is not a config field, and
what it reports after training (a sample, a test-split score). List such a module in TASKS.

Several processes: under torchrun every rank runs this same command; rank 0 alone prints and writes the run
folder (rnnlab.train.loop). `--nproc N` starts N of them on this machine through torch's own launcher
(torch.distributed.run's API, as `torchrun --standalone --nproc-per-node N -m rnnlab train ...`).
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import time

from ..train import load_checkpoint
from ..train.registry import TASKS as KINDS
from ..train.task import TaskKind
from . import train_caption, train_charlm, train_classify, train_forecast, train_recognize
from ..train.distributed import World
from .common import Parser, UserError
from .options import add_config_options
from .runopts import add_run_options, resolve_run, run_fit, set_threads

__all__ = ["TASKS", "add_parser"]

TASKS = [train_charlm, train_classify, train_forecast, train_recognize, train_caption]  # order of `rnnlab train --help`


def add_parser(commands) -> None:
    train = commands.add_parser("train", help="train a model", description="Train a model for a task.",
                                epilog=train_charlm.EXAMPLES)
    tasks = train.add_subparsers(dest="task", metavar="TASK", required=True, parser_class=_TaskParser)
    for module in TASKS:
        kind = KINDS[module.TASK]
        p = tasks.add_parser(kind.name, help=kind.help, description=kind.description, epilog=module.EXAMPLES)
        add_config_options(p, kind.config(), kind.presets)
        add_run_options(p, kind.name, kind.recipes)
        if hasattr(module, "add_options"):
            module.add_options(p)
        p.set_defaults(run=functools.partial(run, kind=kind, report=module.report))


class _TaskParser(Parser):
    """A task's parser keeps the arguments it parsed (args.argv): --nproc hands them on to every process."""

    def parse_known_args(self, args=None, namespace=None):
        ns, extra = super().parse_known_args(args, namespace)
        ns.argv = list(args) if args is not None else sys.argv[3:]
        return ns, extra


def run(args: argparse.Namespace, kind: TaskKind, report) -> int:
    if args.nproc is not None:
        return launch(args, kind)
    world = World.from_env()
    say = (lambda line: print(line, flush=True)) if world.main else (lambda line: None)
    cfg, run_dir, resume = resolve_run(args, kind)
    if world.size > 1 and cfg.train.device in ("cuda", "auto"):
        import torch

        if torch.cuda.is_available():  # one device per process on each machine: "cuda" is then this rank's
            torch.cuda.set_device(world.local_rank % torch.cuda.device_count())
    threads = set_threads(args, cfg)
    say(f"reading {cfg.data.data} ...; {threads.line()}")
    restored = {}
    if resume:  # what the run built from its data at the start (a vocabulary) comes back, not rebuilt
        extras = kind.read_state(load_checkpoint(resume).state, cfg)
        restored = {name: extras[name] for name in kind.restore}
    task = kind.task(cfg, **restored)
    say(f"{task.summary()}; run folder {run_dir}" + (f"; resuming from {resume}" if resume else ""))
    if world.size > 1 or (args.accumulate or 1) > 1:
        k = args.accumulate or 1
        total = "" if resume and args.accumulate is None else f" = {cfg.data.batch * world.size * k}"
        say(f"global batch: --batch {cfg.data.batch} per process x {world.size} process(es) x --accumulate "
            f"{k if total else 'as the run had'}{total}")
    code, result = run_fit(task, cfg, run_dir, resume, args, kind.name, threads)
    if code is not None or not world.main:
        return code or 0
    return report(task, cfg, run_dir, result, args)


def launch(args: argparse.Namespace, kind: TaskKind) -> int:
    """`--nproc N`: this same command on N processes of this machine, started by torch.distributed.run (its API,
    in this process: a rank's failure is then one line here, after the ranks' own)."""
    if args.nproc < 1:
        raise UserError(f"--nproc must be >= 1, got {args.nproc}")
    if World.from_env().size > 1:
        raise UserError("--nproc inside torchrun: torchrun already started the processes; drop --nproc")
    argv, skip = [], False
    for a in args.argv:  # the command without --nproc (torchrun starts the copies)
        if skip or a == "--nproc" or a.startswith("--nproc="):
            skip = a == "--nproc"
            continue
        argv.append(a)
    if not args.out and not args.resume:  # every rank (and restart) must name one folder
        argv += ["--out", time.strftime(f"runs/{kind.name}-%Y%m%d-%H%M%S")]
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args
    from torch.distributed.run import run as torchrun

    launcher = parse_args(["--standalone", "--nproc-per-node", str(args.nproc), "--max-restarts", "0",
                           "-m", "rnnlab", "train", kind.name, *argv])
    try:
        torchrun(launcher)
    except SignalException as e:  # Ctrl-C (or SIGTERM) reached the launcher, and the workers: they saved last/
        return 143 if e.sigval == signal.SIGTERM else 130
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        if failure.exitcode in (130, 143):  # interrupted: the workers saved last/ and said how to continue
            return failure.exitcode
        why = f"signal {failure.signal_name()}" if failure.exitcode < 0 else f"exit code {failure.exitcode}"
        raise UserError(f"{args.nproc} processes: rank {rank} (pid {failure.pid}) ended with {why} and the others "
                        f"were stopped; its own message is above") from None
    return 0
