"""`rnnlab train charlm`: train a character-level language model, then print a sample."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from ..data import CharVocab, read_corpus
from ..kernels import backend_names
from ..models import CELLS
from ..train import CharLMRunConfig, CharLMTask, load_checkpoint, sample_text
from ..train.checkpoint import find_checkpoint
from .common import UserError, stream
from .runopts import run_fit

__all__ = ["EXAMPLES", "add_task_parser"]

D = CharLMRunConfig()  # the defaults, shown in --help

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

# option -> (config section, field); what --resume compares and what a fresh run sets
MODEL_OPTS = ["cell", "hidden", "layers", "embed", "dropout", "peephole", "coupled", "layer_norm", "proj_size",
              "backend", "init"]
DATA_OPTS = ["data", "encoding", "val_fraction", "seq_len", "batch", "eval_chars"]
TRAIN_OPTS = ["lr", "weight_decay", "clip", "warmup_steps", "max_steps", "max_time", "eval_every", "patience",
              "seed", "device"]


def add_task_parser(tasks) -> None:
    p = tasks.add_parser(
        "charlm", help="character-level language model",
        description="Train a character-level language model (embedding -> recurrent layer -> linear) on a "
                    "text, with truncated BPTT, then print a sample.",
        epilog=EXAMPLES,
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="PATH", help=f"a text file, a folder of text files, or builtin:pystdlib | "
                   f"builtin:pydoc | builtin:kjv (default {D.data.data})")
    g.add_argument("--encoding", help=f"text encoding of the files (default {D.data.encoding})")
    g.add_argument("--val-fraction", type=float, help=f"share of the text held out (default {D.data.val_fraction})")
    g.add_argument("--seq-len", type=int, metavar="T", help=f"truncated BPTT length (default {D.data.seq_len})")
    g.add_argument("--batch", type=int, metavar="B", help=f"parallel streams per batch (default {D.data.batch})")
    g.add_argument("--eval-chars", type=int, help=f"validation characters per evaluation (default {D.data.eval_chars})")
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=list(CELLS), help=f"recurrent cell (default {D.model.cell})")
    g.add_argument("--hidden", type=int, metavar="H", help=f"units per layer (default {D.model.hidden})")
    g.add_argument("--layers", type=int, metavar="L", help=f"stacked layers (default {D.model.layers})")
    g.add_argument("--embed", type=int, help=f"embedding width (default {D.model.embed})")
    g.add_argument("--dropout", type=float, help=f"dropout probability (default {D.model.dropout})")
    g.add_argument("--peephole", action="store_true", default=None, help="LSTM peephole connections")
    g.add_argument("--coupled", action="store_true", default=None, help="LSTM coupled input-forget gate")
    g.add_argument("--layer-norm", action="store_true", default=None, help="layer-normalised cell")
    g.add_argument("--proj-size", type=int, metavar="P", help="LSTM projection size (default 0: none)")
    g.add_argument("--init", choices=["orthogonal", "torch"],
                   help=f"recurrent weight initialisation (default {D.model.init})")
    g.add_argument("--backend", choices=list(backend_names()), help=f"recurrent backend (default {D.model.backend})")
    g = p.add_argument_group("training")
    g.add_argument("--lr", type=float, help=f"AdamW peak learning rate (default {D.train.lr})")
    g.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {D.train.weight_decay})")
    g.add_argument("--clip", type=float, help=f"gradient-norm clipping (default {D.train.clip})")
    g.add_argument("--warmup-steps", type=int, help=f"learning-rate warm-up (default {D.train.warmup_steps})")
    g.add_argument("--max-time", type=float, metavar="SECONDS",
                   help=f"time budget (default {D.train.max_time:.0f}, or none when --max-steps is given)")
    g.add_argument("--max-steps", type=int, help="step budget (default: none; the schedule then follows steps)")
    g.add_argument("--eval-every", type=int, metavar="STEPS",
                   help=f"steps between evaluations (default {D.train.eval_every})")
    g.add_argument("--patience", type=int,
                   help=f"evaluations without improvement before stopping (default {D.train.patience})")
    g.add_argument("--seed", type=int, help=f"random seed (default {D.train.seed})")
    g.add_argument("--device", help=f"cpu, cuda, cuda:N, mps or auto (default {D.train.device})")
    g = p.add_argument_group("run")
    g.add_argument("--out", metavar="DIR", help="run folder (default runs/charlm-DATE-TIME)")
    g.add_argument("--resume", metavar="RUN_OR_CHECKPOINT", help="continue a run from its last/ checkpoint")
    g.add_argument("--sample-length", type=int, default=500,
                   help="characters sampled at the end (0: none; default 500)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice; 1 is steadier "
                   "on a machine busy with other jobs)")
    p.set_defaults(run=run)


def _given(args: argparse.Namespace, names: list[str]) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def _resolve(args: argparse.Namespace) -> tuple[CharLMRunConfig, Path, str | None]:
    """The run config, run folder and checkpoint to resume from (or None)."""
    budget = _given(args, ["max_steps", "max_time"])
    if budget:  # a budget on the command line replaces the whole default or saved budget
        budget = {"max_steps": budget.get("max_steps"), "max_time": budget.get("max_time")}
    if args.resume:
        ck_dir = find_checkpoint(args.resume, prefer=("last", "best"))
        saved = load_checkpoint(ck_dir)
        cfg = CharLMRunConfig.from_dict(saved.config)
        for section, names in (("model", MODEL_OPTS), ("data", DATA_OPTS)):
            for name, value in _given(args, names).items():
                if getattr(getattr(cfg, section), name) != value:
                    flag = "--" + name.replace("_", "-")
                    raise UserError(
                        f"--resume: the run was trained with {flag} {getattr(getattr(cfg, section), name)}, "
                        f"not {value}; drop {flag} to continue it, or start a new run"
                    )
        cfg.train = dataclasses.replace(cfg.train, **{**_given(args, TRAIN_OPTS), **budget})
        run_dir = Path(args.out) if args.out else ck_dir.parent  # last/, best/ or .last.old/ sit in the run folder
        loop = saved.state.get("loop", {})
        t = cfg.train
        if (t.max_steps is not None and loop.get("step", 0) >= t.max_steps) or \
                (t.max_time is not None and loop.get("elapsed", 0.0) >= t.max_time):
            raise UserError(
                f"--resume: {ck_dir} already used its budget ({loop.get('step')} steps, "
                f"{loop.get('elapsed', 0):.0f} s); give a larger --max-time or --max-steps to train longer"
            )
        return cfg, run_dir, str(ck_dir)
    cfg = CharLMRunConfig()
    cfg.data = dataclasses.replace(cfg.data, **_given(args, DATA_OPTS))
    cfg.model = dataclasses.replace(cfg.model, **_given(args, MODEL_OPTS))
    cfg.train = dataclasses.replace(cfg.train, **{**_given(args, TRAIN_OPTS), **budget})
    dataclasses.replace(cfg.model, vocab_size=1).check()  # fail before reading the corpus; C comes from it
    cfg.train.check()
    run_dir = Path(args.out) if args.out else Path("runs") / time.strftime("charlm-%Y%m%d-%H%M%S")
    if (run_dir / "last").exists() or (run_dir / "best").exists():
        raise UserError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, or choose another --out")
    return cfg, run_dir, None


def run(args: argparse.Namespace) -> int:
    cfg, run_dir, resume = _resolve(args)
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    print(f"reading {cfg.data.data} ...", flush=True)
    text = read_corpus(cfg.data.data, cfg.data.encoding)
    vocab = CharVocab.from_json(load_checkpoint(resume).state["vocab"]) if resume else None
    task = CharLMTask(cfg, text=text, vocab=vocab)
    m = cfg.model
    params = sum(p.numel() for p in task.model.parameters())
    variants = "".join(f" +{v}" for v in ("peephole", "coupled", "layer_norm") if getattr(m, v))
    print(
        f"{task.chars:,} characters, {len(task.vocab)} distinct; model: {m.layers} x {m.cell.upper()} "
        f"{m.hidden}{variants}{f' proj {m.proj_size}' if m.proj_size else ''}, {params / 1e6:.2f} M parameters, "
        f"backend {task.model.rnn.backend_for().name}, device {task.device}; run folder {run_dir}"
        + (f"; resuming from {resume}" if resume else ""),
        flush=True,
    )
    code, result = run_fit(task, cfg, run_dir, resume, args, "charlm")
    if code is not None:
        return code
    if args.sample_length > 0:
        prime = "\n" if "\n" in task.vocab else task.vocab.chars[0]
        print(f"--- sample of {args.sample_length} characters (temperature 0.8); more with: "
              f"rnnlab sample {run_dir} ---", flush=True)
        stream(sample_text(task.model, task.vocab, prime, args.sample_length, temperature=0.8, seed=cfg.train.seed))
        print()
    return 0
