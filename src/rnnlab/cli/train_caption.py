"""`rnnlab train caption`: train an image captioner (CNN encoder -> rnnlab LSTM decoder), then show captions
of held-out images."""

from __future__ import annotations

import argparse
import dataclasses

from ..data.tokens import TokenVocab
from ..kernels import backend_names
from ..train import load_checkpoint
from ..train.caption import BUILTIN_CAPTIONS, CaptionRunConfig, CaptionTask, caption_images
from .train_shared import add_run_options, add_train_options, resolve, run_fit, set_threads

__all__ = ["EXAMPLES", "add_task_parser"]

D = CaptionRunConfig()

EXAMPLES = f"""
examples:
  rnnlab train caption                                  # {D.train.max_time:.0f} s on builtin:emoji
  rnnlab train caption --data photos/captions.tsv --max-time 1800 --out runs/photos
  rnnlab train caption --level char --hidden 384        # character-level captions
  rnnlab train caption --resume runs/photos --max-time 3600
  rnnlab caption runs/photos cat.jpg --method beam --beam 5

Data: builtin:emoji (the Noto Color Emoji glyphs captioned with their Unicode names; 10 % of the emoji are held
out for testing, 5 % for validation), or a TSV/CSV of `filename<TAB>caption` (several rows per image for
several captions; image paths relative to the labels file), or the folder holding it.
"""

MODEL_OPTS = ["cell", "hidden", "layers", "embed", "channels", "features", "dropout", "backend", "image_size"]
DATA_OPTS = ["data", "level", "batch", "val_fraction", "max_len", "limit", "shift"]


def add_task_parser(tasks) -> None:
    p = tasks.add_parser(
        "caption", help="image captioning (CNN encoder + recurrent decoder)", epilog=EXAMPLES,
        description="Train an image captioner: a small CNN trained from scratch encodes the image, its feature "
                    "vector starts a recurrent decoder that writes the caption (teacher forcing). Validation: "
                    "loss, BLEU and word error rate on held-out images.",
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="PATH", help=f"{BUILTIN_CAPTIONS}, or a TSV/CSV of `filename, caption` or its "
                   f"folder (default {D.data.data})")
    g.add_argument("--level", choices=["word", "char"], help=f"caption tokens (default {D.data.level})")
    g.add_argument("--batch", type=int, metavar="B", help=f"image-caption pairs per batch (default {D.data.batch})")
    g.add_argument("--val-fraction", type=float, help=f"your data: share of images held out (default {D.data.val_fraction})")
    g.add_argument("--max-len", type=int, help=f"longest generated caption, in tokens (default {D.data.max_len})")
    g.add_argument("--shift", type=int, help=f"augmentation: shift training images by up to this many pixels "
                   f"(default {D.data.shift}; 0: none)")
    g.add_argument("--limit", type=int, help="builtin:emoji: only the first N emoji (a quick look)")
    g = p.add_argument_group("model")
    g.add_argument("--image-size", type=int, help=f"images are scaled to S x S (default {D.model.image_size})")
    g.add_argument("--channels", type=int, help=f"first conv block's channels (default {D.model.channels})")
    g.add_argument("--features", type=int, help=f"image feature size (default {D.model.features})")
    g.add_argument("--cell", choices=["lstm", "gru"], help=f"decoder cell (default {D.model.cell})")
    g.add_argument("--hidden", type=int, metavar="H", help=f"decoder units (default {D.model.hidden})")
    g.add_argument("--layers", type=int, metavar="L", help=f"decoder layers (default {D.model.layers})")
    g.add_argument("--embed", type=int, help=f"token embedding width (default {D.model.embed})")
    g.add_argument("--dropout", type=float, help=f"dropout (default {D.model.dropout})")
    g.add_argument("--backend", choices=list(backend_names()), help=f"recurrent backend (default {D.model.backend})")
    add_train_options(p, D)
    add_run_options(p, "caption")
    p.set_defaults(run=run)


def _check_model(model) -> None:
    dataclasses.replace(model, vocab_size=5).check()


def run(args: argparse.Namespace) -> int:
    cfg, run_dir, resume = resolve(args, CaptionRunConfig, "caption", MODEL_OPTS, DATA_OPTS, _check_model)
    set_threads(args)
    print(f"reading {cfg.data.data} ...", flush=True)
    vocab = TokenVocab.from_json(load_checkpoint(resume).state["vocab"]) if resume else None
    task = CaptionTask(cfg, vocab=vocab)
    m = cfg.model
    params = sum(p.numel() for p in task.model.parameters())
    print(f"{len(task.train)} training images ({task.pairs} captions), {len(task.val)} validation images; "
          f"{len(task.vocab)} {cfg.data.level} tokens; model: CNN -> {m.features} features -> {m.layers} x "
          f"{m.cell.upper()} {m.hidden}, {params / 1e6:.2f} M parameters, device {task.device}; run folder {run_dir}"
          + (f"; resuming from {resume}" if resume else ""), flush=True)
    code, result = run_fit(task, cfg, run_dir, resume, args, "caption")
    if code is not None:
        return code
    shown = task.val[:5]
    caps = caption_images(task.model, task.vocab, [it.image for it in shown], max_len=cfg.data.max_len,
                          device=task.device)
    print("--- held-out images (greedy); all of them, with a contact sheet: rnnlab eval " f"{run_dir} ---")
    for it, cap in zip(shown, caps):
        print(f"{it.name}: {cap!r} (true {it.captions[0]!r})")
    return 0
