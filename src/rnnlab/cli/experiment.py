"""`rnnlab experiment memory`: why the LSTM remembers, measured (see rnnlab.train.memory)."""

from __future__ import annotations

import argparse
import time

import torch

from .common import Parser, UserError

__all__ = ["add_parser"]

EXAMPLES = """
examples:
  rnnlab experiment memory --out runs/memory            # the documented run: ~13 min on one CPU thread
  rnnlab experiment memory --tiny --out /tmp/memory      # seconds: a smoke test of the whole pipeline
  rnnlab experiment memory --delays 10 100 --steps 1000 --cells rnn lstm

Writes results.csv (the table), results.json (with the gradient norms) and memory.png (the plot).
"""


def add_parser(commands) -> None:
    from ..train.memory import MemoryConfig

    D = MemoryConfig()
    p = commands.add_parser("experiment", help="experiments that measure the tutorial's claims",
                            description="Experiments that measure the tutorial's claims.", epilog=EXAMPLES)
    exps = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True, parser_class=Parser)
    m = exps.add_parser(
        "memory", help="copy memory: tanh RNN vs GRU vs LSTM across delays", epilog=EXAMPLES,
        description="Train a tanh RNN, a GRU and an LSTM with the same parameter budget and the same number of "
                    "steps on the copy-memory problem at several delays T; plot accuracy against T and the "
                    "gradient norm ||dL/dh_t|| against t.",
    )
    m.add_argument("--out", default="runs/memory", help="folder for results.csv, results.json, memory.png")
    m.add_argument("--delays", type=int, nargs="+", help=f"delays T (default {' '.join(map(str, D.delays))})")
    m.add_argument("--cells", nargs="+", choices=["rnn", "gru", "lstm", "mingru", "minlstm"],
                   help="cells (default rnn gru lstm)")
    m.add_argument("--steps", type=int, help=f"training steps per model (default {D.steps})")
    m.add_argument("--symbols", type=int, help=f"symbols to remember, n (default {D.symbols})")
    m.add_argument("--alphabet", type=int, help=f"symbol alphabet, K; chance is 1/K (default {D.alphabet})")
    m.add_argument("--lstm-hidden", type=int, help=f"the LSTM's H, which sets the parameter budget (default "
                                                   f"{D.lstm_hidden})")
    m.add_argument("--grad-delay", type=int, help=f"delay at which gradient norms are measured (default "
                                                  f"{D.grad_delay})")
    m.add_argument("--no-chrono", action="store_true", help="gated cells keep the plain orthogonal init "
                                                            "(LSTM forget bias 1) instead of chrono init")
    m.add_argument("--seed", type=int, help="seed (default 0)")
    m.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    m.add_argument("--tiny", action="store_true", help="a few seconds: delays 5 10, 30 steps, H 8")
    m.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..train.memory import MemoryConfig, format_table, run_memory_experiment, save_memory_result

    cfg = MemoryConfig()
    if args.tiny:
        cfg = MemoryConfig(delays=[5, 10], steps=30, lstm_hidden=8, val_sequences=64, grad_delay=10, batch=8)
    for name in ("delays", "cells", "steps", "symbols", "alphabet", "lstm_hidden", "grad_delay", "seed"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    cfg.chrono = not args.no_chrono
    if args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    try:
        cfg.check()
    except ValueError as e:
        raise UserError(str(e)) from None
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    result = run_memory_experiment(cfg, log=lambda s: print(s, flush=True))
    paths = save_memory_result(result, args.out)
    print(format_table(result))
    print(f"wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - t0:.0f} s")
    if not any(p.suffix == ".png" for p in paths):
        print("(no memory.png: pip install matplotlib to plot)")
    return 0
