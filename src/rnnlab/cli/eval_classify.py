"""`rnnlab eval` of a classify run: accuracy, macro-F1, per-class precision/recall and the confusion matrix
(printed and as PNG), on the run's own test split or on labelled --data; --baselines adds the scikit-learn
baseline trained on the run's own training split."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..baselines import classify_baseline
from ..data import DataError
from ..data.sequences import LabelledSequences, load_labelled
from ..train import load_classifier
from ..train.classify import prepare_split
from ..train.metrics import classification_report
from .reports import print_report

__all__ = ["EXAMPLES", "add_options", "run"]

EXAMPLES = """
  rnnlab eval runs/classify-20250101-120000                # on the run's test split
  rnnlab eval runs/classify-20250101-120000 --baselines    # and TF-IDF / logistic regression on the same split
  rnnlab eval runs/tweets --data more_tweets.csv
  rnnlab eval runs/forecast-20250101-120000 --baselines    # held-out tail: seasonal naive, Holt-Winters beside it
"""


def add_options(p) -> None:
    p.add_argument("--baselines", action="store_true", help="also train and score the scikit-learn baseline "
                   "(classify) or seasonal naive and Holt-Winters (forecast) on the same split")
    p.add_argument("--plot", metavar="PNG", help="where to write the picture (default: in the run folder)")


def _targets_in(data: LabelledSequences, labels: list[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(labels)}
    unknown = sorted(set(data.labels) - index.keys())
    if unknown:
        raise DataError(f"{data.source}: label(s) {unknown[:5]} were not among the run's classes "
                        f"({', '.join(labels)}); evaluate on data with the same classes")
    return np.array([index[y] for y in data.labels], dtype=np.int64)


def run(args: argparse.Namespace) -> int:
    loaded = load_classifier(args.checkpoint, args.device)
    cfg = loaded.config
    run_dir = loaded.checkpoint.path.parent
    split = prepare_split(cfg) if args.data is None or args.baselines else None
    if args.data is None:
        items = [split.data.items[i] for i in split.test]
        targets = split.data.targets[split.test]
        where = f"the test split of {cfg.data.data} ({len(items):,} sequences never trained on)"
        if not len(items):
            raise DataError(f"{cfg.data.data}: the run kept no test split (--test-fraction 0); give --data")
    else:
        data = load_labelled(args.data, cfg.data.columns(), encoding=cfg.data.encoding)
        items, targets = data.items, _targets_in(data, loaded.labels)
        where = f"{args.data} ({len(items):,} sequences)"
    print(f"scoring {where} with {loaded.checkpoint.path} (step {loaded.checkpoint.state.get('step')}) ...", flush=True)
    pred = loaded.predict_proba(items).argmax(1)
    report = classification_report(targets, pred, len(loaded.labels))
    png = Path(args.plot) if args.plot else run_dir / ("confusion.png" if args.data is None else "confusion-eval.png")
    print_report(report, loaded.labels, png)
    if args.baselines:
        base, what = classify_baseline(split.data, split.train, split.val, items)
        b = classification_report(targets, base, len(loaded.labels))
        tokens = f", {cfg.data.tokens} tokens" if split.data.kind == "text" else ""
        name = f"rnnlab {cfg.model.rnn.describe()}{tokens}, {cfg.model.pooling} pooling (this run)"
        width = max(48, len(name), len(what)) + 1
        print(f"\n{'model':<{width}} accuracy  macro-F1")
        print(f"{name:<{width}} {report['accuracy']:8.4f}  {report['macro_f1']:8.4f}")
        print(f"{what:<{width}} {b['accuracy']:8.4f}  {b['macro_f1']:8.4f}")
        # the difference in items, so that a lead of one sentence in 400 reads as what it is
        diff = int(round((report["accuracy"] - b["accuracy"]) * len(items)))
        verdict = ("ahead of" if diff > 0 else "behind") if diff else "level with"
        print(f"rnnlab is {verdict} the baseline" + (f" by {abs(diff):,} of {len(items):,} sequences" if diff else "")
              + f" (both on the same {len(items):,} sequences; the baseline trained on the run's training split, "
              f"C chosen on its validation split)")
    return 0
