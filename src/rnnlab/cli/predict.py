"""`rnnlab predict RUN --text "..."` / `--input FILE`: the label and class probabilities a classify run gives."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..data import DataError
from ..data.sequences import load_labelled
from ..train import load_classifier
from .common import UserError, run_parser

__all__ = ["add_parser"]

EXAMPLES = """
examples:
  rnnlab predict runs/tweets --text "I love this car" --text "worst ride ever"
  rnnlab predict runs/tweets --input tweets.txt            # one text per line
  rnnlab predict runs/vowels --input utterances.jsonl      # rows with a "sequence" column (JSON list of vectors)
  rnnlab predict runs/tweets --input new.csv --json        # one JSON object per item
"""


def add_parser(commands) -> None:
    p = run_parser(
        commands, "predict", help="label sequences with a trained classifier", epilog=EXAMPLES,
                            description="Print the predicted label and the class probabilities of each item.")
    p.add_argument("--text", action="append", help="a text to classify (repeatable)")
    p.add_argument("--input", metavar="FILE", help="a .txt file (one text per line), or a CSV / JSONL file with "
                   "the run's text or sequence column (labels, if present, are ignored)")
    p.add_argument("--top", type=int, default=3, help="probabilities shown per item (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    p.set_defaults(run=run)


def _items(args: argparse.Namespace, loaded) -> list:
    if bool(args.text) == bool(args.input):
        raise UserError("give either --text (repeatable) or --input FILE")
    if args.text:
        if any(not t.strip() for t in args.text):
            raise DataError("--text is empty; give the text to classify")
        return list(args.text)
    path = Path(args.input)
    if path.suffix.lower() == ".txt":
        if not path.exists():
            raise DataError(f"{path}: no such file")
        lines = [line for line in path.read_text(encoding=loaded.config.data.encoding).splitlines() if line.strip()]
        if not lines:
            raise DataError(f"{path}: no non-empty lines; give one text per line")
        return lines
    return load_labelled(str(path), loaded.config.data.columns(), encoding=loaded.config.data.encoding,
                         need_labels=False).items


def run(args: argparse.Namespace) -> int:
    loaded = load_classifier(args.checkpoint, args.device)
    items = _items(args, loaded)
    probs = loaded.predict_proba(items)
    top = max(1, min(args.top, len(loaded.labels)))
    for item, p in zip(items, probs):
        order = np.argsort(-p)
        if args.json:
            print(json.dumps({"label": loaded.labels[order[0]],
                              "probabilities": {loaded.labels[i]: round(float(p[i]), 4) for i in order}}))
            continue
        shown = item if isinstance(item, str) else f"<sequence of {len(item)} steps>"
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        probs_text = "  ".join(f"{loaded.labels[i]} {p[i]:.3f}" for i in order[:top])
        print(f"{loaded.labels[order[0]]:<12} {probs_text}    {shown}")
    return 0
