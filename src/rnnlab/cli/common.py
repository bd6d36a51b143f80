"""What every command shares: a parser whose errors are one line, user errors, output helpers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from ..data import read_corpus

__all__ = ["Parser", "UserError", "read_input", "run_parser", "stream"]


class UserError(Exception):
    """A mistake the user can fix; main() prints its message as one line and exits with code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and where to look, exit code 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def run_parser(commands, name: str, **kwargs) -> argparse.ArgumentParser:
    """The sub-parser of a verb that reads a trained run: RUN_OR_CHECKPOINT first, and --device."""
    p = commands.add_parser(name, **kwargs)
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT",
                   help="a run folder (its best/ checkpoint, else last/) or a checkpoint folder")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default cpu)")
    return p


def stream(chars: Iterable[str], out=None) -> None:
    """Print characters as they are generated."""
    out = out or sys.stdout
    for ch in chars:
        out.write(ch)
        out.flush()


def read_input(args: argparse.Namespace) -> str:
    """The text to run the model over: --prime (with \\n and \\t escapes) or --text, cut to --max-chars."""
    if args.max_chars < 2:
        raise UserError(f"--max-chars must be >= 2, got {args.max_chars}")
    if args.prime is not None:
        text = args.prime.replace("\\n", "\n").replace("\\t", "\t")
    else:
        text = read_corpus(args.text, args.encoding)
    return text[: args.max_chars]
