"""`rnnlab eval` of a charlm run: bits per character of a trained character-level language model on a text."""

from __future__ import annotations

import argparse

from ..data import read_corpus, split_ids
from ..train import evaluate_ids, load_charlm
from ..train.device import resolve_device

__all__ = ["EXAMPLES", "add_options", "run"]

EXAMPLES = """
examples:
  rnnlab eval runs/charlm-20250101-120000                 # on the run's own validation split
  rnnlab eval runs/shakespeare/best --data sonnets.txt
  rnnlab eval runs/pystdlib --data builtin:pydoc --max-chars 100000
"""


def add_options(p) -> None:
    """The options only a character language model's evaluation uses (--data and --device are shared)."""
    p.add_argument("--encoding", default="utf-8", help="text encoding (default utf-8)")
    p.add_argument("--max-chars", type=int, help="score only the first N characters")
    p.add_argument("--batch", type=int, default=32, help="parallel streams (default 32)")


def run(args: argparse.Namespace) -> int:
    loaded = load_charlm(args.checkpoint, args.device)
    cfg = loaded.config
    if args.data is None:
        text = read_corpus(cfg.data.data, cfg.data.encoding)
        ids = split_ids(loaded.vocab.encode(text, what=cfg.data.data), cfg.data.val_fraction)[1]
        where = f"the validation split of {cfg.data.data}"
    else:
        ids = loaded.vocab.encode(read_corpus(args.data, args.encoding), what=args.data)
        where = args.data
    if args.max_chars is not None:
        ids = ids[: args.max_chars + 1]
    print(f"scoring {len(ids) - 1:,} characters of {where} with {loaded.checkpoint.path} "
          f"(step {loaded.checkpoint.state.get('step')}) ...", flush=True)
    result = evaluate_ids(loaded.model, ids.to(resolve_device(args.device)), args.batch, cfg.data.seq_len)
    print(f"{result['bpc']:.4f} bits per character ({result['loss']:.4f} nats)")
    return 0
