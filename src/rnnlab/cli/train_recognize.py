"""`rnnlab train recognize`: train a CTC handwriting recognizer, then report its held-out character error rate."""

from __future__ import annotations

import argparse
import dataclasses

from ..data import CharVocab
from ..kernels import backend_names
from ..train import load_checkpoint
from ..train.recognize import BUILTIN_LINES, RecognizeRunConfig, RecognizeTask
from .common import UserError
from .train_shared import add_run_options, add_train_options, resolve, run_fit, set_threads

__all__ = ["EXAMPLES", "add_task_parser"]

D = RecognizeRunConfig()

EXAMPLES = f"""
examples:
  rnnlab train recognize                                # {D.train.max_steps} steps on builtin:mnist-strings
  rnnlab train recognize --data lines/labels.tsv --max-time 900 --out runs/my-lines
  rnnlab train recognize --data lines/ --alphabet "0123456789-." --hidden 192 --layers 2
  rnnlab train recognize --resume runs/my-lines --max-time 1800          # continue where it stopped
  rnnlab recognize runs/my-lines scan1.png scan2.png --beam 10

Data: builtin:mnist-strings (digit strings composed from real MNIST digits; test digits never appear in
training), or a TSV/CSV of `filename<TAB>transcription` (a .csv uses commas; a header row is optional; image
paths are relative to the labels file), or the folder holding it. Images are read as grey levels, scaled to
height {D.model.height}; dark ink on light paper is inverted automatically.
"""

MODEL_OPTS = ["cell", "hidden", "layers", "channels", "embed", "dropout", "backend"]
DATA_OPTS = ["data", "alphabet", "batch", "val_fraction", "val_size", "test_size", "min_len", "max_len"]


def add_task_parser(tasks) -> None:
    p = tasks.add_parser(
        "recognize", help="handwriting recognition (CNN + bidirectional RNN + CTC)", epilog=EXAMPLES,
        description="Train a handwriting recognizer: a small CNN reads the image's columns, a bidirectional "
                    "recurrent layer reads them in both directions, CTC aligns the output with the "
                    "transcription. Validation: character error rate (greedy decoding).",
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="PATH", help=f"{BUILTIN_LINES}, or a TSV/CSV of `filename, transcription` "
                   f"or its folder (default {D.data.data})")
    g.add_argument("--alphabet", help="the characters the model may output (default: those of the training "
                   "transcriptions; others are then an error naming them)")
    g.add_argument("--batch", type=int, metavar="B", help=f"images per batch (default {D.data.batch})")
    g.add_argument("--val-fraction", type=float, help=f"your data: share held out (default {D.data.val_fraction})")
    g.add_argument("--val-size", type=int, help=f"mnist-strings: validation strings (default {D.data.val_size})")
    g.add_argument("--test-size", type=int, help=f"mnist-strings: test strings scored at the end (default {D.data.test_size})")
    g.add_argument("--min-len", type=int, help=f"mnist-strings: shortest string (default {D.data.min_len})")
    g.add_argument("--max-len", type=int, help=f"mnist-strings: longest string (default {D.data.max_len})")
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=["lstm", "gru"], help=f"recurrent cell (default {D.model.cell})")
    g.add_argument("--hidden", type=int, metavar="H", help=f"units per direction (default {D.model.hidden})")
    g.add_argument("--layers", type=int, metavar="L", help=f"stacked bidirectional layers (default {D.model.layers})")
    g.add_argument("--channels", type=int, help=f"first conv block's channels (default {D.model.channels})")
    g.add_argument("--embed", type=int, help=f"per-column feature size (default {D.model.embed})")
    g.add_argument("--dropout", type=float, help=f"dropout (default {D.model.dropout})")
    g.add_argument("--backend", choices=list(backend_names()), help=f"recurrent backend (default {D.model.backend})")
    add_train_options(p, D)
    add_run_options(p, "recognize")
    p.set_defaults(run=run)


def _check_model(model) -> None:
    dataclasses.replace(model, num_classes=1).check()


def run(args: argparse.Namespace) -> int:
    cfg, run_dir, resume = resolve(args, RecognizeRunConfig, "recognize", MODEL_OPTS, DATA_OPTS, _check_model)
    set_threads(args)
    if cfg.data.alphabet is not None and len(set(cfg.data.alphabet)) != len(cfg.data.alphabet):
        raise UserError(f"--alphabet repeats characters: {cfg.data.alphabet!r}; list each character once")
    print(f"reading {cfg.data.data} ...", flush=True)
    vocab = CharVocab.from_json(load_checkpoint(resume).state["alphabet"]) if resume else None
    task = RecognizeTask(cfg, vocab=vocab)
    m = cfg.model
    params = sum(p.numel() for p in task.model.parameters())
    data = "fresh strings every batch from the training digit pool" if task.train_size is None else \
        f"{task.train_size} training images"
    print(f"{data}, {len(task.val)} validation images; alphabet {''.join(task.vocab.chars)!r}; model: CNN + "
          f"{m.layers} x bidirectional {m.cell.upper()} {m.hidden}, {params / 1e6:.2f} M parameters, device "
          f"{task.device}; run folder {run_dir}" + (f"; resuming from {resume}" if resume else ""), flush=True)
    code, result = run_fit(task, cfg, run_dir, resume, args, "recognize")
    if code is not None:
        return code
    best = result.best
    if best:
        print(f"best validation: CER {100 * best['val_cer']:.2f} %, sequence accuracy {100 * best['val_seq_acc']:.1f} % "
              f"(step {best['step']}); test it with: rnnlab eval {run_dir}", flush=True)
    return 0
