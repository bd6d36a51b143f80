"""`rnnlab train charlm`: train a character-level language model, then print a sample."""

from __future__ import annotations

from ..train import CharLMRunConfig, sample_text
from .common import stream

__all__ = ["EXAMPLES", "TASK", "add_options", "report"]

TASK = "charlm"
D = CharLMRunConfig()  # the defaults, shown in the examples
EXAMPLES = f"""
examples:
  rnnlab train charlm                                   # {D.train.max_time:.0f} s on builtin:pystdlib, then a sample
  rnnlab train charlm --data shakespeare.txt --max-time 600 --out runs/shakespeare
  rnnlab train charlm --data builtin:pydoc --cell gru --hidden 256 --layers 2 --dropout 0.1
  rnnlab train charlm --cell lstm --peephole --layer-norm --max-steps 2000 --seed 1
  rnnlab train charlm --resume runs/shakespeare --max-time 1200     # continue where it stopped

A run folder (--out, default runs/charlm-DATE-TIME) holds config.json, metrics.csv, loss.png and the
checkpoints last/ and best/. Ctrl-C saves last/ and exits; --resume continues exactly from it.
"""


def add_options(p) -> None:
    p.add_argument("--sample-length", type=int, default=500, help="characters sampled at the end (0: none; default 500)")


def report(task, cfg, run_dir, result, args) -> int:
    if args.sample_length > 0:
        prime = "\n" if "\n" in task.vocab else task.vocab.chars[0]
        print(f"--- sample of {args.sample_length} characters (temperature 0.8); more with: "
              f"rnnlab sample {run_dir} ---", flush=True)
        stream(sample_text(task.model, task.vocab, prime, args.sample_length, temperature=0.8, seed=cfg.train.seed))
        print()
    return 0
