"""Which default model learns fastest within the quick start's time budget? (not a test)

Trains a few candidate CharLM configurations on builtin:pystdlib for the same wall-clock budget each and
prints validation bits per character and training characters per second. The winner became the default
of `rnnlab train charlm` (rnnlab.models.CharLMConfig / rnnlab.train.config).

    PYTHONPATH=src python benchmarks/charlm_defaults.py --seconds 90
"""

from __future__ import annotations

import argparse
import json

import torch

from rnnlab.data import CharVocab, read_corpus
from rnnlab.models import CharLMConfig, RecurrentConfig
from rnnlab.train import CharLMRunConfig, CharLMTask, TextDataConfig, TrainConfig, fit

CANDIDATES = {
    "lstm256-b32-t100-lr3e-3": (dict(cell="lstm", hidden_size=256), dict(batch=32, seq_len=100), dict(lr=3e-3)),
    "lstm512-b32-t100-lr2e-3": (dict(cell="lstm", hidden_size=512), dict(batch=32, seq_len=100), dict(lr=2e-3)),
    "lstm384-b64-t64-lr3e-3": (dict(cell="lstm", hidden_size=384), dict(batch=64, seq_len=64), dict(lr=3e-3)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=90)
    ap.add_argument("--only", nargs="*", help="candidate names to run")
    args = ap.parse_args()
    torch.set_num_threads(2)
    text = read_corpus("builtin:pystdlib")
    vocab = CharVocab.from_text(text)
    results = {}
    for name, (model, data, train) in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        cfg = CharLMRunConfig(
            data=TextDataConfig(**data), model=CharLMConfig(rnn=RecurrentConfig(init="orthogonal", **model)),
            train=TrainConfig(max_time=args.seconds, eval_every=10**9, patience=None, **train),
        )
        r = fit(CharLMTask(cfg, text=text, vocab=vocab), cfg.train, None, progress=False, log=lambda s: None)
        results[name] = {"val_bpc": round(r.last["val_bpc"], 3), "chars_per_s": round(r.units_per_s),
                         "steps": r.step}
        print(f"{name:28s} val bpc {r.last['val_bpc']:.3f}  {r.units_per_s:8.0f} chars/s  {r.step} steps", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
