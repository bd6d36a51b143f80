"""`rnnlab caption RUN IMAGE...`: print a caption for each image."""

from __future__ import annotations

import argparse

import numpy as np

from ..data.images import read_image_rgb
from ..train import caption_images, load_captioner
from ..train.device import resolve_device
from .common import UserError, run_parser

__all__ = ["add_parser"]

EXAMPLES = """
examples:
  rnnlab caption runs/caption-20250101-120000 apple.png
  rnnlab caption runs/photos/last cat.jpg dog.jpg --method beam --beam 5
  rnnlab caption runs/photos cat.jpg --method sample --temperature 0.7 --seed 3
"""


def add_parser(commands) -> None:
    p = run_parser(
        commands, "caption", help="caption images with a trained captioner", epilog=EXAMPLES,
        description="Print `IMAGE<TAB>caption` for each image, from a run of `rnnlab train caption`.",
    )
    p.add_argument("images", metavar="IMAGE", nargs="+", help="images (any format Pillow reads)")
    p.add_argument("--method", choices=["greedy", "beam", "sample"], default="greedy", help="decoding (default greedy)")
    p.add_argument("--beam", type=int, default=5, help="beam width for --method beam (default 5)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="--method sample: below 1 safer, above 1 wilder, 0 greedy (default 1)")
    p.add_argument("--seed", type=int, help="fix the random seed of --method sample")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.beam < 1:
        raise UserError(f"--beam must be >= 1, got {args.beam}")
    if args.temperature < 0:
        raise UserError(f"--temperature must be >= 0 (0 picks the most likely word), got {args.temperature}")
    loaded = load_captioner(args.checkpoint, args.device)
    images = np.stack([read_image_rgb(path, loaded.config.model.image_size) for path in args.images])
    caps = caption_images(loaded.model, loaded.vocab, images, method=args.method, temperature=args.temperature,
                          beam=args.beam, max_len=loaded.config.data.max_len, device=resolve_device(args.device),
                          seed=args.seed)
    for path, cap in zip(args.images, caps):
        print(f"{path}\t{cap}", flush=True)
    return 0
