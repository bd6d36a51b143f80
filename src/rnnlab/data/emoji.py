"""builtin:emoji: every single-code-point emoji of the Noto Color Emoji font, rendered, captioned with its
Unicode name ("GRINNING FACE WITH SMILING EYES").

Source: the Debian package fonts-noto-color-emoji (/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf, a
bitmap font that Pillow renders at its native size 109 with `embedded_color=True`). The code points come
from the font's character map (fontTools `getBestCmap()`); kept are those above U+007F that have a Unicode
name, are not combining marks, format characters (joiners, tags, variation selectors) or spaces, and render
to a non-empty glyph. Each glyph is drawn on white and scaled to fit size x size (default 64).

Held-out emoji: a seeded permutation of the code points gives 10 % test and 5 % validation; those emoji never
appear in training. Their captions often contain words seen in training ("FACE", "WITH", "ARROW"), but
never the whole caption: a caption of an unseen emoji can only be composed from parts.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np

from .errors import DataError
from .images import fit_square

__all__ = ["EMOJI_FONT", "emoji_code_points", "emoji_split", "render_emoji"]

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
_SKIP_CATEGORIES = {"Mn", "Me", "Cf", "Cc", "Zs", "Zl", "Zp"}
_FRACTIONS = {"test": 0.10, "val": 0.05}


def _font_path() -> Path:
    if not EMOJI_FONT.exists():
        raise DataError(f"builtin:emoji needs the Noto Color Emoji font ({EMOJI_FONT}); install the Debian/Ubuntu "
                        f"package fonts-noto-color-emoji, or give your own images with --data")
    return EMOJI_FONT


def emoji_code_points() -> list[int]:
    """The font's single-code-point emoji with a Unicode name (sorted), before the render check."""
    try:
        from fontTools.ttLib import TTFont
    except ImportError:
        raise DataError("builtin:emoji needs the fonttools package (pip install fonttools, or rnnlab[datasets])") from None
    cmap = TTFont(str(_font_path()), lazy=True).getBestCmap()
    out = []
    for cp in sorted(cmap):
        ch = chr(cp)
        if cp > 0x7F and unicodedata.name(ch, None) and unicodedata.category(ch) not in _SKIP_CATEGORIES:
            out.append(cp)
    return out


def render_emoji(code_points: list[int], size: int = 64) -> tuple[list[int], np.ndarray]:
    """(the code points that render to a visible glyph, images (N, 3, size, size) float32 in [0, 1])."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise DataError("builtin:emoji needs the Pillow package (pip install Pillow, or rnnlab[datasets])") from None
    font = ImageFont.truetype(str(_font_path()), 109)
    kept, images = [], []
    for cp in code_points:
        canvas = Image.new("RGBA", (136, 128), (255, 255, 255, 0))
        ImageDraw.Draw(canvas).text((0, 0), chr(cp), font=font, embedded_color=True)
        box = canvas.getchannel("A").getbbox()
        if box is None:
            continue  # the font maps the code point but draws nothing
        glyph = canvas.crop(box)
        white = Image.new("RGBA", glyph.size, (255, 255, 255, 255))
        images.append(fit_square(Image.alpha_composite(white, glyph).convert("RGB"), size))
        kept.append(cp)
    return kept, np.stack(images) if images else np.zeros((0, 3, size, size), np.float32)


def emoji_split(code_points: list[int], seed: int = 0) -> dict[str, list[int]]:
    """Disjoint {"train", "val", "test"} code points; the held-out ones depend only on the seed and the list."""
    order = np.random.default_rng([seed, 4242]).permutation(len(code_points))
    n_test = round(len(code_points) * _FRACTIONS["test"])
    n_val = round(len(code_points) * _FRACTIONS["val"])
    pick = lambda idx: sorted(code_points[i] for i in idx)  # noqa: E731
    return {"test": pick(order[:n_test]), "val": pick(order[n_test: n_test + n_val]),
            "train": pick(order[n_test + n_val:])}


def caption_of(cp: int) -> str:
    return unicodedata.name(chr(cp))
