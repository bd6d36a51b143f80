"""`rnnlab eval` of a caption run: BLEU and word error rate on held-out images, and a contact sheet of them."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..train import load_captioner
from ..train.caption import BUILTIN_CAPTIONS, evaluate_captions, load_caption_split, load_captioned_images
from ..train.device import resolve_device
from ..viz.contact_sheet import contact_sheet
from .common import UserError

__all__ = ["EXAMPLES", "add_options", "run"]

EXAMPLES = """
  rnnlab eval runs/caption-20250101-120000                # builtin:emoji: the held-out test emoji
  rnnlab eval runs/photos --data test/captions.tsv --method beam --beam 5 --sheet test_sheet.png
"""


def add_options(p) -> None:
    """Caption-only options (--beam and --show are shared with recognize runs)."""
    p.add_argument("--method", choices=["greedy", "beam", "sample"], default="greedy",
                   help="caption runs: decoding (default greedy)")
    p.add_argument("--temperature", type=float, default=1.0, help="caption runs: sampling temperature (default 1)")
    p.add_argument("--split", choices=["train", "val", "test"], help="caption runs without --data: which part of "
                   "the run's data (default test for builtin:emoji, val for your data; train shows what it memorised)")
    p.add_argument("--sheet", metavar="PNG", help="caption runs: where to write the contact sheet "
                   "(default RUN/contact_sheet_<split>.png)")


def run(args: argparse.Namespace) -> int:
    loaded = load_captioner(args.checkpoint, args.device)
    cfg = loaded.config
    if args.data is None:
        split = args.split or ("test" if cfg.data.data == BUILTIN_CAPTIONS else "val")
        splits = load_caption_split(cfg)
        if split not in splits:
            raise UserError(f"--split {split}: {cfg.data.data} has only {', '.join(splits)} (your data has no test "
                            f"split; evaluate on other images with --data)")
        items = splits[split]
        held = "training" if split == "train" else f"held-out {split}"
        where, tag = f"the {len(items)} {held} images of {cfg.data.data}", split
    elif args.data == BUILTIN_CAPTIONS:
        items = load_caption_split(cfg)["test"]
        where, tag = f"the {len(items)} held-out test emoji", "test"
    else:
        items = load_captioned_images(args.data, cfg.model.image_size)
        where, tag = f"{len(items)} images of {args.data}", Path(args.data).stem
    items = items[: args.limit] if args.limit is not None else items
    if args.beam is not None and args.beam < 1:
        raise UserError(f"--beam must be >= 1, got {args.beam}")
    beam = (args.beam or 5) if args.method == "beam" else 1
    decoding = {"greedy": "greedy", "beam": f"beam search, beam {beam}", "sample": f"sampling, temperature {args.temperature}"}[args.method]
    print(f"captioning {where} with {loaded.checkpoint.path} (step {loaded.checkpoint.state.get('step')}), "
          f"{decoding} ...", flush=True)
    metrics, hyps = evaluate_captions(loaded.model, loaded.vocab, items, method=args.method, beam=beam,
                                      max_len=cfg.data.max_len, device=resolve_device(args.device), return_texts=True)
    for it, h in list(zip(items, hyps))[: args.show]:
        print(f"{it.name}: {h!r} (true {it.captions[0]!r})")
    exact = sum(h in it.captions for h, it in zip(hyps, items))
    sheet = Path(args.sheet) if args.sheet else loaded.checkpoint.path.parent / f"contact_sheet_{tag}.png"
    contact_sheet(items, hyps, sheet, title=f"{where}: generated ({decoding}; green = exact) and true captions")
    print(f"BLEU {metrics['bleu']:.1f}  WER {100 * metrics['wer']:.1f} %  exact {exact}/{len(items)}  "
          f"loss {metrics['loss']:.3f}; contact sheet: {sheet}")
    return 0
