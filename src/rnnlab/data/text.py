"""Reading a corpus: a text file, a folder of text files, or a built-in corpus (`builtin:NAME`).

Text is decoded as UTF-8 unless an encoding is given. Every failure is a DataError that names the file
and says what to do: missing, empty, binary (a NUL byte), or not decodable with the encoding.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from .corpora import BUILTIN_PREFIX, load_builtin
from .errors import DataError

__all__ = ["read_corpus", "read_text_file"]

_SNIFF = 8192  # bytes looked at for a NUL byte, the mark of a binary file


def read_text_file(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The text of one file; raises DataError for a missing, binary or undecodable file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; check the path given to --data") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied; make the file readable") from None
    if b"\0" in raw[:_SNIFF] and not encoding.lower().replace("-", "").startswith(("utf16", "utf32")):
        raise DataError(f"{path}: looks like a binary file (it contains NUL bytes); give a text file")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        hint = "--encoding latin-1" if encoding.lower().replace("-", "") == "utf8" else "the right --encoding"
        raise DataError(
            f"{path}: not valid {encoding} text (byte {e.start}: {raw[e.start:e.start + 1]!r}); "
            f"if it is text in another encoding, pass {hint}"
        ) from None


def read_corpus(source: str, encoding: str = "utf-8") -> str:
    """The whole corpus as one string.

    source: a file; a folder (its files, recursively, sorted by path, hidden files and folders skipped);
            or "builtin:NAME" (see rnnlab.data.corpora.BUILTINS).
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1") from None
    if source.startswith(BUILTIN_PREFIX):
        text = load_builtin(source[len(BUILTIN_PREFIX):])
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(
                f"{source}: no such file or folder; give a text file, a folder of text files, "
                f"or builtin:pystdlib"
            )
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise DataError(f"{source}: the folder holds no files; give a folder of text files")
            text = "".join(read_text_file(p, encoding) for p in files)
        else:
            text = read_text_file(path, encoding)
    if not text:
        raise DataError(f"{source}: is empty; give a text with at least a few thousand characters")
    return text
