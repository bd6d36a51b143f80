"""A contact sheet of captioned images: each held-out image beside its generated and its true caption (Pillow)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = ["contact_sheet"]


class Captioned(Protocol):
    image: np.ndarray       # (3, H, W) float in [0, 1]
    captions: list[str]     # the first is the one shown as the truth


def contact_sheet(items: Sequence[Captioned], generated: list[str], path: str | Path, columns: int = 4,
                  title: str = "") -> Path:
    """A PNG grid: each held-out image with its generated caption (top) and its true caption (below)."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    cell_w, cell_h, img = 330, 118, 96
    rows = (len(items) + columns - 1) // columns
    top = 30 if title else 0
    sheet = Image.new("RGB", (columns * cell_w, top + rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    try:
        font = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        font = ImageFont.load_default()
    if title:
        draw.text((8, 8), title, fill="black", font=font)
    for k, (item, gen) in enumerate(zip(items, generated)):
        x, y = (k % columns) * cell_w, top + (k // columns) * cell_h
        pic = Image.fromarray((item.image.transpose(1, 2, 0) * 255).astype(np.uint8)).resize((img, img))
        sheet.paste(pic, (x + 6, y + 10))
        good = gen == item.captions[0]
        lines = [(textwrap.wrap(gen or "(empty)", 30)[:3], (0, 110, 0) if good else (180, 0, 0)),
                 (textwrap.wrap("true: " + item.captions[0], 30)[:3], (60, 60, 60))]
        ty = y + 10
        for wrapped, colour in lines:
            for line in wrapped:
                draw.text((x + img + 14, ty), line, fill=colour, font=font)
                ty += 15
            ty += 5
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
