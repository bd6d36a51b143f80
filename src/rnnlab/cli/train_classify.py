"""`rnnlab train classify`: train a sequence classifier, then score it on the held-out test split."""

from __future__ import annotations

import argparse
import dataclasses

from ..models import POOLING
from ..train.classify import ClassifyRunConfig, ClassifyTask, Encoder, classify_config, load_classifier, prepare_split
from .eval_classify import print_report, score_split
from .runopts import (
    MODEL_OPTS, add_model_options, add_run_options, add_train_options, given, resolve_run, run_fit, set_threads,
)

__all__ = ["EXAMPLES", "add_task_parser"]

D = ClassifyRunConfig()

EXAMPLES = """
examples:
  rnnlab train classify --data builtin:sentiment          # tweets: negative / neutral / positive, ~3 min
  rnnlab train classify --data builtin:vowels             # speaker of 9 from variable-length LPC frames
  rnnlab train classify --data builtin:mnist-rows --cell gru --pooling mean
  rnnlab train classify --data reviews.csv --text-column review --label-column stars --tokens char
  rnnlab train classify --data sensors.jsonl --sequence-column readings --bidirectional
  rnnlab train classify --resume runs/classify-20250101-120000 --max-time 600

Built-in data sets take tuned defaults (the preset in rnnlab.train.classify.CLASSIFY_PRESETS); every option
given here overrides them. The split (train / validation / test, stratified by label) follows --seed.
A run folder holds config.json, metrics.csv, loss.png, confusion.png and the checkpoints last/ and best/.
"""

DATA_OPTS = ["tokens", "min_count", "max_len", "text_column", "label_column", "sequence_column", "id_column",
             "step_column", "encoding", "val_fraction", "test_fraction", "batch"]


def add_task_parser(tasks) -> None:
    p = tasks.add_parser(
        "classify", help="sequence classification (many-to-one)", epilog=EXAMPLES,
        description="Train a sequence classifier (embedding or feature projection -> recurrent layer -> pooling "
                    "-> linear) on labelled text or numeric sequences, then score it on the test split.",
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="PATH", help="builtin:sentiment | builtin:sentiment-movies | builtin:vowels | "
                   f"builtin:mnist-rows, or a CSV / JSONL file (default {D.data.data})")
    g.add_argument("--tokens", choices=["char", "word"], help=f"text: characters or words (default {D.data.tokens})")
    g.add_argument("--min-count", type=int, help=f"text: rarer tokens become <unk> (default {D.data.min_count})")
    g.add_argument("--max-len", type=int, help="keep each sequence's first N steps (default: all)")
    g.add_argument("--text-column", help=f"user files: the text column (default {D.data.text_column})")
    g.add_argument("--label-column", help=f"user files: the label column (default {D.data.label_column})")
    g.add_argument("--sequence-column", help="user files: a column holding a JSON list of vectors per row "
                   f"(default {D.data.sequence_column})")
    g.add_argument("--id-column", help=f"long-format CSV: the sequence id column (default {D.data.id_column})")
    g.add_argument("--step-column", help=f"long-format CSV: the step column (default {D.data.step_column})")
    g.add_argument("--encoding", help=f"user files: text encoding (default {D.data.encoding})")
    g.add_argument("--val-fraction", type=float, help=f"validation share (default {D.data.val_fraction})")
    g.add_argument("--test-fraction", type=float, help=f"test share (default {D.data.test_fraction}; vowels keeps "
                   "its own test split)")
    g.add_argument("--batch", type=int, metavar="B", help=f"sequences per batch (default {D.data.batch})")
    add_model_options(p, D.model)
    g = p.add_argument_group("classifier")
    g.add_argument("--bidirectional", action="store_true", default=None, help="read each sequence both ways")
    g.add_argument("--unidirectional", dest="bidirectional", action="store_false",
                   help="one direction only (where a preset is bidirectional)")
    g.add_argument("--pooling", choices=list(POOLING), help=f"summary over time (default {D.model.pooling})")
    g.add_argument("--monitor", choices=["acc", "f1", "loss"],
                   help="validation metric for the best checkpoint and early stopping (default acc)")
    add_train_options(p, D.train)
    add_run_options(p, "classify")
    p.set_defaults(run=run)


def _fresh(args: argparse.Namespace, train_opts: dict) -> ClassifyRunConfig:
    data = args.data or D.data.data
    cfg = classify_config(data, data_opts=given(args, DATA_OPTS),
                          model_opts=given(args, [*MODEL_OPTS, "bidirectional", "pooling"]),
                          train_opts=train_opts, monitor=args.monitor)
    # fail on model options before reading the data (its sizes are filled in from the data)
    dataclasses.replace(cfg.model, num_classes=2, vocab_size=1, n_features=0).check()
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg, run_dir, resume = resolve_run(args, "classify", ClassifyRunConfig.from_dict,
                                       lambda t: _fresh(args, t), [*DATA_OPTS, "data"])
    set_threads(args)
    print(f"reading {cfg.data.data} ...", flush=True)
    split = prepare_split(cfg)
    encoder = None
    if resume:
        from ..train import load_checkpoint

        encoder = Encoder.from_json(load_checkpoint(resume).state["encoder"])
    task = ClassifyTask(cfg, split=split, encoder=encoder)
    d, m = split.data, cfg.model
    counts = {n: int((d.targets == i).sum()) for i, n in enumerate(d.label_names)}
    what = (f"{len(task.encoder.vocab):,} {cfg.data.tokens} tokens (min count {cfg.data.min_count})"
            if d.kind == "text" else f"{d.n_features} features per step")
    params = sum(p.numel() for p in task.model.parameters())
    print(f"{len(d.items):,} sequences, {len(d.label_names)} classes "
          f"({', '.join(f'{k} {v:,}' for k, v in counts.items())}); {what}; split train {len(split.train):,} / "
          f"val {len(split.val):,} / test {len(split.test):,}", flush=True)
    print(f"model: {m.layers} x {'bi' if m.bidirectional else ''}{m.cell.upper()} {m.hidden}, {m.pooling} pooling, "
          f"{params / 1e6:.2f} M parameters, backend {task.model.rnn.backend_for().name}; run folder {run_dir}"
          + (f"; resuming from {resume}" if resume else ""), flush=True)
    code, result = run_fit(task, cfg, run_dir, resume, args, "classify")
    if code is not None:
        return code
    if len(split.test):
        loaded = load_classifier(run_dir)
        report = score_split(loaded, split, split.test)
        print(f"--- test split ({len(split.test):,} sequences never trained on), checkpoint {loaded.checkpoint.path} ---")
        print_report(report, d.label_names, run_dir / "confusion.png")
        print(f"compare with the baseline: rnnlab eval {run_dir} --baselines")
    return 0

