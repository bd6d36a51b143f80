"""The `rnnlab` command: `rnnlab <verb> [<task>] [options]`, one small file per verb over the library.

User errors (bad data, bad options, a checkpoint that does not fit) print one line on stderr and exit 2;
set RNNLAB_TRACEBACK=1 to see the traceback instead.
"""

from __future__ import annotations

import os
import sys

from .. import __version__
from ..data import DataError
from ..train import CheckpointError
from . import caption as caption_cmd
from . import env as env_cmd
from . import forecast as forecast_cmd
from . import predict as predict_cmd
from . import eval as eval_cmd
from . import recognize as recognize_cmd
from . import experiment as experiment_cmd
from . import export as export_cmd
from . import figures as figures_cmd
from . import inspect as inspect_cmd
from . import sample as sample_cmd
from . import train as train_cmd
from .common import Parser, UserError

__all__ = ["VERBS", "main"]

VERBS = [train_cmd, sample_cmd, eval_cmd, predict_cmd, forecast_cmd, recognize_cmd, caption_cmd, inspect_cmd,
         figures_cmd, experiment_cmd, export_cmd, env_cmd]  # each module: add_parser(commands); order of --help

EXAMPLES = """
examples:
  rnnlab train charlm                          # a few minutes on the CPU: an LSTM learns to write Python
  rnnlab sample runs/charlm-DATE-TIME --prime "def " --length 800
  rnnlab eval runs/charlm-DATE-TIME --data some_file.py
  rnnlab env                                   # versions, and which backend runs which layer here, and why

'rnnlab COMMAND --help' shows each command's options and examples.
"""


def build_parser() -> Parser:
    parser = Parser(prog="rnnlab", description="Recurrent neural networks from their equations.", epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for verb in VERBS:
        verb.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 training diverged, 2 user error, 130 Ctrl-C,
    143 SIGTERM)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed as one line
        return int(e.code or 0)
    try:
        return args.run(args)
    except (UserError, DataError, CheckpointError, ValueError, OSError) as e:
        if os.environ.get("RNNLAB_TRACEBACK"):
            raise
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, OSError) and not isinstance(e, (DataError, CheckpointError)) and e.filename:
            message = f"{e.filename}: {e.strerror}"
        print(f"rnnlab {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnnlab {args.command}: interrupted", file=sys.stderr)
        return 130
