"""`rnnlab eval RUN`: evaluate a trained model; what is measured depends on the task the run was trained for.

Each task registers (add_options, run) in EVALUATORS; `--data` and `--device` are shared by all. The task is
read from the run's config.json, so one command serves every kind of run.
"""

from __future__ import annotations

import argparse

from ..train import checkpoint_task
from . import eval_caption, eval_charlm, eval_classify, eval_forecast, eval_recognize
from .common import UserError, run_parser

__all__ = ["EVALUATORS", "add_parser"]

# task name -> (add_options(parser) for the options only it uses, run(args) -> exit code)
EVALUATORS = {
    "charlm": (eval_charlm.add_options, eval_charlm.run),
    "classify": (eval_classify.add_options, eval_classify.run),
    "forecast": (eval_forecast.add_options, eval_forecast.run),
    "recognize": (eval_recognize.add_options, eval_recognize.run),  # also adds --beam/--show, used by caption
    "caption": (eval_caption.add_options, eval_caption.run),
}

EXAMPLES = eval_charlm.EXAMPLES + eval_classify.EXAMPLES + eval_recognize.EXAMPLES + eval_caption.EXAMPLES


def add_parser(commands) -> None:
    p = run_parser(
        commands, "eval", help="evaluate a trained model on data", epilog=EXAMPLES,
        description="Evaluate a trained run on --data, or by default on the held-out part of its own data. "
                    "charlm runs: bits per character.",
    )
    p.add_argument("--data", metavar="PATH", help="the data to evaluate on (default: the run's held-out split)")
    for task, (add_options, _) in EVALUATORS.items():
        add_options(p.add_argument_group(f"{task} runs"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    task = checkpoint_task(args.checkpoint)
    if task not in EVALUATORS:
        raise UserError(f"{args.checkpoint}: a {task!r} run; `rnnlab eval` knows {', '.join(EVALUATORS)} runs")
    return EVALUATORS[task][1](args)
