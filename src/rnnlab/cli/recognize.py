"""`rnnlab recognize RUN IMAGE...`: print the transcription of each line image."""

from __future__ import annotations

import argparse

from ..data.images import read_line_image
from ..train.device import resolve_device
from ..train import load_recognizer, transcribe
from .common import UserError, run_parser

__all__ = ["add_parser"]

EXAMPLES = """
examples:
  rnnlab recognize runs/recognize-20250101-120000 line1.png line2.png
  rnnlab recognize runs/my-lines/last scans/*.png --beam 10
"""


def add_parser(commands) -> None:
    p = run_parser(
        commands, "recognize", help="transcribe line images with a trained recognizer", epilog=EXAMPLES,
        description="Print `IMAGE<TAB>transcription` for each image, read by a run of `rnnlab train recognize`.",
    )
    p.add_argument("images", metavar="IMAGE", nargs="+", help="line images (any format Pillow reads)")
    p.add_argument("--beam", type=int, default=1, help="prefix beam search width (default 1: greedy decoding)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.beam < 1:
        raise UserError(f"--beam must be >= 1 (1 is greedy decoding), got {args.beam}")
    loaded = load_recognizer(args.checkpoint, args.device)
    images = [read_line_image(path, loaded.config.model.height) for path in args.images]  # all readable first
    texts = transcribe(loaded.model, loaded.vocab, images, beam=args.beam, device=resolve_device(args.device))
    for path, text in zip(args.images, texts):
        print(f"{path}\t{text}", flush=True)
    return 0
