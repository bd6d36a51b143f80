"""`rnnlab train TASK`: one sub-command per task, each in its own module (cli/train_<task>.py).

A task module provides `add_task_parser(tasks)`, which adds its sub-parser and sets `run`; list it in TASKS.
"""

from __future__ import annotations

from . import train_caption, train_charlm, train_classify, train_forecast, train_recognize
from .common import Parser

__all__ = ["TASKS", "add_parser"]

TASKS = [train_charlm, train_classify, train_forecast, train_recognize, train_caption]  # each: add_task_parser(tasks); order of `rnnlab train --help`


def add_parser(commands) -> None:
    train = commands.add_parser("train", help="train a model", description="Train a model for a task.",
                                epilog=train_charlm.EXAMPLES)
    tasks = train.add_subparsers(dest="task", metavar="TASK", required=True, parser_class=Parser)
    for module in TASKS:
        module.add_task_parser(tasks)
