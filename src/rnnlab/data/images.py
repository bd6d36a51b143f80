"""Images with text: a folder of images plus a TSV/CSV of `filename, text`, read with Pillow and pandas.

Used by handwriting recognition (one transcription per line image) and captioning (one or more captions per
image: the same filename on several rows). Every problem is a DataError naming the file and row: a labels
file that is missing or has fewer than two columns, a listed image that does not exist (all of them are
named, up to 5), an image Pillow cannot read, an empty text, a filename that leads out of the labels file's
folder (`..`, an absolute path), an image larger than the pixel limit (checked from its header, before it is
decoded: a small "decompression bomb" PNG can decode to gigabytes; `--max-image-pixels` or
RNNLAB_MAX_IMAGE_PIXELS raise it).

Line images are read as grey levels, scaled to a fixed height keeping their aspect ratio, and turned into
ink 1.0 on background 0.0: an image whose mean is above 0.5 is taken as dark ink on light paper and inverted.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import numpy as np

from .errors import DataError

__all__ = ["DEFAULT_MAX_PIXELS", "LABEL_SUFFIXES", "find_labels_file", "max_image_pixels", "read_image_rgb",
           "read_labels", "read_line_image"]

LABEL_SUFFIXES = (".tsv", ".csv", ".txt")
DEFAULT_MAX_PIXELS = 40_000_000  # a 6,000 x 6,000 photo passes; Pillow's own bomb check is at 89 M (warning)
ENV_MAX_PIXELS = "RNNLAB_MAX_IMAGE_PIXELS"


def max_image_pixels(given: int | None = None) -> int:
    """The pixel limit: `given`, else the environment's RNNLAB_MAX_IMAGE_PIXELS, else DEFAULT_MAX_PIXELS."""
    if given is not None:
        return given
    env = os.environ.get(ENV_MAX_PIXELS, "").strip()
    if not env:
        return DEFAULT_MAX_PIXELS
    if not env.isdigit() or int(env) < 1:
        raise DataError(f"{ENV_MAX_PIXELS}: expected a whole number of pixels >= 1, got {env!r}")
    return int(env)


def _pil():
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError("reading images needs the Pillow package (pip install Pillow, or rnnlab[datasets])") from None
    return Image, UnidentifiedImageError


def find_labels_file(path: str | Path) -> Path:
    """The TSV/CSV that `path` names: the file itself, or the one labels file inside a folder."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; give a TSV/CSV of `filename, text` or the folder holding it")
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"{path}: not a regular file or folder (a FIFO or a device?); give a TSV/CSV of "
                        f"`filename, text` or the folder holding it")
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in LABEL_SUFFIXES)
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise DataError(f"{path}: found {what} .tsv/.csv/.txt labels files in the folder, expected exactly one; "
                        f"give the labels file itself as --data")
    return found[0]


def read_labels(path: str | Path, what: str = "transcription") -> list[tuple[Path, str]]:
    """[(image path, text)] from a TSV/CSV of `filename, text` (header optional; a .csv is comma-separated,
    anything else tab-separated). Image paths are relative to the labels file's folder."""
    try:
        import pandas as pd
    except ImportError:
        raise DataError("reading a labels file needs the pandas package (pip install pandas, or rnnlab[datasets])") from None
    labels = find_labels_file(path)
    sep = "," if labels.suffix.lower() == ".csv" else "\t"
    try:
        # a CSV may quote fields that hold commas; in a TSV quotes are part of the text (QUOTE_NONE)
        df = pd.read_csv(labels, sep=sep, header=None, dtype=str, keep_default_na=False,
                         quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE, skip_blank_lines=True,
                         encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{labels}: not a readable {'CSV' if sep == ',' else 'TSV'} file "
                        f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if df.shape[1] < 2:
        raise DataError(f"{labels}: expected two columns `filename{sep!r}{what}`, found {df.shape[1]}; "
                        f"{'a .csv is comma-separated' if sep == ',' else 'use a tab between the columns (or a .csv)'}")
    first = 1 if df.iloc[0, 0].strip().lower() in ("filename", "file", "image", "path") else 0  # a header row
    rows = []
    missing = []
    for i in range(first, len(df)):
        name, text = df.iloc[i, 0].strip(), df.iloc[i, 1]
        line = i + 1
        if not name:
            raise DataError(f"{labels}, line {line}: empty filename")
        if not text.strip():
            raise DataError(f"{labels}, line {line}: empty {what} for {name}; every image needs a non-empty {what}")
        if os.path.isabs(name) or os.path.normpath(name).split(os.sep)[0] == "..":
            raise DataError(f"{labels}, line {line}: {name!r} is outside the labels file's folder; list images by "
                            f"their path inside {labels.parent}")
        image = labels.parent / name
        if not image.is_file():
            missing.append(name)
        rows.append((image, text.strip()))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataError(f"{labels}: {len(missing)} listed image(s) not found in {labels.parent}: {shown}")
    if not rows:
        raise DataError(f"{labels}: no rows; expected lines of `filename{sep!r}{what}`")
    return rows


def _open(path: Path, mode: str, max_pixels: int | None = None):
    Image, Unidentified = _pil()
    limit = max_image_pixels(max_pixels)
    try:
        # Pillow's own bomb check (a warning above MAX_IMAGE_PIXELS, an error above twice that) runs at our limit
        # for this call, its warning made an error: every oversized image gets the one-line message below
        previous = Image.MAX_IMAGE_PIXELS
        try:
            Image.MAX_IMAGE_PIXELS = limit
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im_ = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = previous
        with im_ as im:
            # the header gives the size: refuse a huge image before decoding it
            if im.width * im.height > limit:
                raise DataError(f"{path}: {im.width} x {im.height} = {im.width * im.height:,} pixels, more than the "
                                f"limit of {limit:,} (a guard against decompression bombs); raise it with "
                                f"--max-image-pixels or {ENV_MAX_PIXELS} if the image is genuine")
            im.load()
            if mode == "RGB" and im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            return im.convert(mode)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: more than the limit of {limit:,} pixels, a possible decompression bomb (Pillow: "
                        f"{str(e).split(',')[0]}); raise the limit with --max-image-pixels or {ENV_MAX_PIXELS} if "
                        f"the image is genuine") from None
    except DataError:
        raise
    except (Unidentified, OSError, ValueError, SyntaxError) as e:
        if isinstance(e, FileNotFoundError):
            raise DataError(f"{path}: no such image file") from None
        raise DataError(f"{path}: not a readable image ({type(e).__name__}); give a PNG, JPEG or other Pillow format") from None


def read_line_image(path: str | Path, height: int = 32, max_pixels: int | None = None) -> np.ndarray:
    """(height, W) float32, ink 1 on background 0, scaled to `height` keeping the aspect ratio. max_pixels: the
    largest image accepted (default max_image_pixels())."""
    Image, _ = _pil()
    im = _open(Path(path), "L", max_pixels)
    w = max(1, round(im.width * height / im.height))
    a = np.asarray(im.resize((w, height), Image.BILINEAR), dtype=np.float32) / 255.0
    return 1.0 - a if a.mean() > 0.5 else a


def read_image_rgb(path: str | Path, size: int = 64, max_pixels: int | None = None) -> np.ndarray:
    """(3, size, size) float32 in [0, 1], transparent areas on white, scaled (aspect kept, centred, padded white).
    max_pixels: the largest image accepted (default max_image_pixels())."""
    Image, _ = _pil()
    im = _open(Path(path), "RGB", max_pixels)
    return fit_square(im, size)


def fit_square(im, size: int) -> np.ndarray:
    """A Pillow RGB image scaled to fit size x size, centred on white: (3, size, size) float32 in [0, 1]."""
    Image, _ = _pil()
    scale = size / max(im.width, im.height)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
    return np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1) / 255.0
