"""Does recurrent regularization help? Test bits/char of a character LM that overfits, per setting, three seeds.

    python -m benchmarks.regularize                      # the full study (about 30-40 min on 2 idle cores)
    python -m benchmarks.regularize --quick              # a smoke run (seconds)
    python -m benchmarks.regularize --report             # the table from the results already written
    python -m benchmarks.regularize --task vowels        # the many-to-one study (about 15 min)
Corpus: builtin:pydoc (Python's help topics, ~465 k characters of English prose; ships with Python). It is
cut into train (90 %), validation (the next 5 %) and test (the last 5 %) by position; the vocabulary is built
from all of it. A 1 x 256 LSTM (embedding 64, about 0.33 M parameters) trained for --steps steps of 32 x 100
characters sees the training text about 14 times: enough to overfit without regularization.

Protocol (every setting the same steps, schedule and seeds; the loop's own AdamW, warm-up and cosine decay):
1. Selection on validation only: for each regularizer, each candidate value is trained with seed 0 and the
   one with the lowest best-validation bits/char is kept.
2. The kept value of each setting (and the unregularized baseline) is trained with seeds 0, 1, 2.
3. Each run's best-validation checkpoint (evaluated every --eval-every steps) is scored once on the test text.
Reported: mean and spread of test bits/char over the seeds, and the difference to the unregularized mean.

Many-to-one (--task vowels): builtin:vowels (Japanese vowels, 9 speakers, 12 LPC coefficients per frame, 7-29
frames; its own 370-utterance test split, the validation split 15 % of the 270 training utterances, seeded),
with the data set's tuned preset (1 x bidirectional GRU 128, dropout 0.5 on input and output, 1,500 steps of
16, model selection on validation loss) as "none", and the same protocol; reported: test accuracy and test
negative log-likelihood (more sensitive than accuracy on 370 utterances: one error is 0.27 points).

Every run's result is a JSON file in --out (default benchmarks/results/regularize/); a run whose file exists
is not run again, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rnnlab.data.corpora import BUILTINS
from rnnlab.data.vocab import CharVocab
from rnnlab.models import CharLMConfig, RecurrentConfig
from rnnlab.train import CharLMRunConfig, CharLMTask, TextDataConfig, TrainConfig, fit, load_charlm
from rnnlab.train.charlm import evaluate_ids

# setting -> candidate values (each a dict of RecurrentConfig fields); "none" has one
SETTINGS: dict[str, list[dict]] = {
    "none": [{}],
    "input+recurrent dropout": [dict(input_dropout=0.1, recurrent_dropout=0.1),
                                dict(input_dropout=0.25, recurrent_dropout=0.25)],
    "zoneout": [dict(zoneout=(0.5, 0.05)), dict(zoneout=(0.2, 0.05))],  # Krueger et al.'s char-level (c, h)
    "weight drop": [dict(weight_drop=0.2), dict(weight_drop=0.5)],
    "awd-style": [dict(weight_drop=0.5, input_dropout=0.1, dropout=0.1)],  # rnnlab train charlm --recipe awd
}
SEEDS = (0, 1, 2)
VOWEL_SETTINGS: dict[str, list[dict]] = {
    "none": [{}],
    "input+recurrent dropout": [dict(input_dropout=0.1, recurrent_dropout=0.1),
                                dict(input_dropout=0.25, recurrent_dropout=0.25)],
    "zoneout": [dict(zoneout=0.05), dict(zoneout=0.15)],
    "weight drop": [dict(weight_drop=0.2), dict(weight_drop=0.5)],
}
def split_text(text: str) -> tuple[str, str]:
    """(train + validation, test): the last 5 % is the test text."""
    cut = int(len(text) * 0.95)
    return text[:cut], text[cut:]


def run_config(values: dict, seed: int, args) -> CharLMRunConfig:
    rnn_fields = {f.name for f in dataclasses.fields(RecurrentConfig)}
    rnn = RecurrentConfig(hidden_size=args.hidden, num_layers=1, init="orthogonal",
                          **{k: v for k, v in values.items() if k in rnn_fields})
    return CharLMRunConfig(
        data=TextDataConfig(data="builtin:pydoc", seq_len=100, batch=32, val_fraction=5 / 95,
                            eval_chars=10**9),
        model=CharLMConfig(embed=64, rnn=rnn),
        train=TrainConfig(max_steps=args.steps, max_time=None, eval_every=args.eval_every, patience=None,
                          warmup_steps=min(100, args.steps // 10), seed=seed),
    )


def one_run(name: str, k: int, values: dict, seed: int, text: str, test: str, vocab: CharVocab, args) -> dict:
    path = Path(args.out) / f"{name.replace(' ', '_').replace('+', '_')}-{k}-seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    cfg = run_config(values, seed, args)
    run_dir = Path(args.out) / "runs" / path.stem
    t0 = time.perf_counter()
    task = CharLMTask(cfg, text=text, vocab=vocab)
    result = fit(task, cfg.train, run_dir, progress=False, log=lambda s: None)
    loaded = load_charlm(run_dir)  # its best/ checkpoint: the lowest validation bits/char
    test_bpc = evaluate_ids(loaded.model, vocab.encode(test, what="test text"))["bpc"]
    with open(run_dir / "metrics.csv") as f:  # the validation curve, one value per evaluation
        val = [float(r["val_bpc"]) for r in csv.DictReader(f) if r.get("val_bpc")]
    row = {"setting": name, "candidate": k, "values": {key: list(v) if isinstance(v, tuple) else v
                                                       for key, v in values.items()},
           "seed": seed, "steps": result.step, "best_val_bpc": result.best.get("val_bpc") if result.best else None,
           "last_val_bpc": result.last.get("val_bpc") if result.last else None, "test_bpc": test_bpc,
           "seconds": time.perf_counter() - t0, "val_curve": val}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=1))
    print(f"{name:26s} {k} seed {seed}: best val {row['best_val_bpc']:.4f}  test {test_bpc:.4f}  "
          f"({row['seconds']:.0f} s)", flush=True)
    return row


def vowels_run(name: str, k: int, values: dict, seed: int, args) -> dict:
    from rnnlab.train import load_classifier
    from rnnlab.train.classify import ClassifyTask, classify_config, prepare_split

    path = Path(args.out) / f"{name.replace(' ', '_').replace('+', '_')}-{k}-seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    cfg = classify_config("builtin:vowels", {"train": {"seed": seed, **({"max_steps": 10} if args.quick else {})},
                                             "model": {"rnn": values}})
    run_dir = Path(args.out) / "runs" / path.stem
    t0 = time.perf_counter()
    result = fit(ClassifyTask(cfg), cfg.train, run_dir, progress=False, log=lambda s: None)
    loaded = load_classifier(run_dir)
    split = prepare_split(cfg)
    items, targets = [split.data.items[i] for i in split.test], split.data.targets[split.test]
    proba = loaded.predict_proba(items)
    row = {"setting": name, "candidate": k, "values": values, "seed": seed, "steps": result.step,
           "best_val_loss": result.best.get("val_loss"), "best_val_bpc": result.best.get("val_loss"),
           "test_accuracy": float((proba.argmax(1) == targets).mean()),
           "test_nll": float(-np.log(np.clip(proba[np.arange(len(targets)), targets], 1e-12, None)).mean()),
           "test_bpc": float(-np.log(np.clip(proba[np.arange(len(targets)), targets], 1e-12, None)).mean()),
           "seconds": time.perf_counter() - t0}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=1))
    print(f"{name:26s} {k} seed {seed}: best val loss {row['best_val_loss']:.4f}  test acc {row['test_accuracy']:.4f} "
          f"nll {row['test_nll']:.4f} ({row['seconds']:.0f} s)", flush=True)
    return row


def vowels_study(args) -> list[dict]:
    rows = []
    for name, candidates in _chosen(VOWEL_SETTINGS, args).items():
        scored = [vowels_run(name, k, v, SEEDS[0], args) for k, v in enumerate(candidates)]
        best = min(range(len(candidates)), key=lambda k: scored[k]["best_val_loss"])  # validation only
        rows += scored
        for seed in SEEDS[1:]:
            rows.append(vowels_run(name, best, candidates[best], seed, args))
    return rows


def vowels_report(rows: list[dict]) -> str:
    lines = ["| setting (on the vowels preset) | chosen on validation | test accuracy, mean ± sd | test NLL, mean ± sd |",
             "|---|---|---|---|"]
    for name in VOWEL_SETTINGS:
        cands = {}
        for r in rows:
            if r["setting"] == name:
                cands.setdefault(r["candidate"], []).append(r)
        if not cands:
            continue
        chosen = max(cands, key=lambda k: len(cands[k]))
        acc = [r["test_accuracy"] for r in cands[chosen]]
        nll = [r["test_nll"] for r in cands[chosen]]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        lines.append(f"| {name} | {_fmt(cands[chosen][0]['values'])} | {statistics.fmean(acc):.4f} ± {sd(acc):.4f} "
                     f"(n={len(acc)}) | {statistics.fmean(nll):.4f} ± {sd(nll):.4f} |")
    return "\n".join(lines)


def study(args) -> list[dict]:
    full = BUILTINS["pydoc"]()
    if args.quick:
        full = full[:40_000]
    text, test = split_text(full)
    vocab = CharVocab.from_text(full)
    rows = []
    for name, candidates in _chosen(SETTINGS, args).items():
        scored = [one_run(name, k, v, SEEDS[0], text, test, vocab, args) for k, v in enumerate(candidates)]
        best = min(range(len(candidates)), key=lambda k: scored[k]["best_val_bpc"])  # validation only
        rows += scored
        for seed in SEEDS[1:]:
            rows.append(one_run(name, best, candidates[best], seed, text, test, vocab, args))
    return rows


def report(rows: list[dict]) -> str:
    by = {}
    for r in rows:
        by.setdefault(r["setting"], {}).setdefault(r["candidate"], []).append(r)
    lines = ["| setting | chosen on validation | best val bpc (seed 0, each candidate) | test bpc, mean ± sd (3 seeds) "
             "| vs none |", "|---|---|---|---|---|"]
    base = None
    out = []
    for name in SETTINGS:
        if name not in by:
            continue
        cands = by[name]
        seed0 = {k: next(r for r in rs if r["seed"] == 0) for k, rs in cands.items()}
        chosen = max(cands, key=lambda k: len(cands[k]))  # the candidate run with every seed
        tests = [r["test_bpc"] for r in cands[chosen]]
        mean = statistics.fmean(tests)
        sd = statistics.stdev(tests) if len(tests) > 1 else 0.0
        if name == "none":
            base = mean
        vals = "; ".join(f"{_fmt(seed0[k]['values'])}: {seed0[k]['best_val_bpc']:.4f}" for k in sorted(seed0))
        delta = "" if base is None or name == "none" else f"{mean - base:+.4f}"
        out.append(f"| {name} | {_fmt(cands[chosen][0]['values'])} | {vals} | {mean:.4f} ± {sd:.4f} "
                   f"(n={len(tests)}) | {delta} |")
    return "\n".join(lines + out)


def _chosen(settings: dict, args) -> dict:
    return {k: v for k, v in settings.items() if args.settings is None or k in args.settings.split(",")}


def _fmt(values: dict) -> str:
    return ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v}" for k, v in values.items()) or "-"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/regularize")
    p.add_argument("--quick", action="store_true", help="tiny corpus and steps: checks the script runs")
    p.add_argument("--report", action="store_true", help="only print the table of the results in --out")
    p.add_argument("--task", choices=("charlm", "vowels"), default="charlm")
    p.add_argument("--settings", default=None, help="comma-separated setting names (default: all)")
    args = p.parse_args(argv)
    if args.task == "vowels" and args.out == p.get_default("out"):
        args.out = "benchmarks/results/regularize-vowels"
    if args.quick:
        args.steps, args.eval_every, args.hidden = 12, 6, 16
        args.out = args.out + "-quick"
    torch.set_num_threads(args.threads)
    if args.report:
        rows = [json.loads(f.read_text()) for f in sorted(Path(args.out).glob("*.json"))]
    else:
        print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s), "
              f"{args.steps} steps", file=sys.stderr)
        rows = vowels_study(args) if args.task == "vowels" else study(args)
    print(vowels_report(rows) if args.task == "vowels" else report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
