"""`rnnlab sample`: generate text from a trained character-level language model, streaming it."""

from __future__ import annotations

import argparse

from ..train import load_charlm, sample_text
from .common import run_parser, stream

__all__ = ["add_parser"]

EXAMPLES = """
examples:
  rnnlab sample runs/charlm-20250101-120000                      # the run's best checkpoint
  rnnlab sample runs/shakespeare/last --prime "ROMEO:" --length 1000
  rnnlab sample runs/pystdlib --prime "def " --temperature 0.5 --top-k 10 --seed 7
"""


def add_parser(commands) -> None:
    p = run_parser(
        commands, "sample", help="generate text from a trained model", epilog=EXAMPLES,
        description="Generate text from a character-level language model, printing it as it comes.",
    )
    p.add_argument("--prime", default="\n", help="text to start from (default: a newline)")
    p.add_argument("--length", type=int, default=500, help="characters to generate (default 500)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="below 1 safer, above 1 wilder, 0 always the most likely (default 0.8)")
    p.add_argument("--top-k", type=int, help="sample only among the k most likely characters")
    p.add_argument("--seed", type=int, help="fix the random seed for a reproducible sample")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_charlm(args.checkpoint, args.device)
    chars = sample_text(loaded.model, loaded.vocab, args.prime, args.length, temperature=args.temperature,
                        top_k=args.top_k, seed=args.seed)
    print(args.prime, end="", flush=True)
    stream(chars)
    print()
    return 0
