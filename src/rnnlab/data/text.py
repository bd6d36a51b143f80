"""Reading a corpus: a text file, a folder of text files, or a built-in corpus (`builtin:NAME`).

Text is decoded as UTF-8 unless an encoding is given, in pieces (read_corpus_ids turns a corpus into compact
ids without holding its text). Every failure is a DataError that names the file and says what to do:
missing, not a regular file (a FIFO, /dev/zero), empty, binary (a NUL byte), or not decodable.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor

from .corpora import BUILTIN_PREFIX, load_builtin
from .errors import DataError, check_regular
from .vocab import CharVocab

__all__ = ["read_corpus", "read_corpus_ids", "read_text_file"]

_SNIFF = 8192  # bytes looked at for a NUL byte, the mark of a binary file
CHUNK = 1 << 22  # bytes read, and characters encoded, at a time


def read_text_file(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The text of one file; raises DataError for a missing, non-regular, binary or undecodable file."""
    return "".join(_file_pieces(Path(path), encoding))


def _file_pieces(path: Path, encoding: str) -> Iterator[str]:
    """The text of one file in pieces of up to CHUNK bytes' worth, decoded incrementally (a file is never held
    whole as bytes); the checks and messages of read_text_file."""
    path = check_regular(path)
    try:
        f = open(path, "rb")
    except PermissionError:
        raise DataError(f"{path}: permission denied; make the file readable") from None
    decoder = codecs.getincrementaldecoder(encoding)()
    done = 0  # bytes handed to the decoder so far
    with f:
        while True:
            block = f.read(CHUNK)
            if done == 0 and b"\0" in block[:_SNIFF] and \
                    not encoding.lower().replace("-", "").startswith(("utf16", "utf32")):
                raise DataError(f"{path}: looks like a binary file (it contains NUL bytes); give a text file")
            pending = decoder.getstate()[0] if hasattr(decoder, "getstate") else b""
            pending = pending if isinstance(pending, bytes) else b""
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                data = pending + block
                hint = "--encoding latin-1" if encoding.lower().replace("-", "") == "utf8" else "the right --encoding"
                raise DataError(
                    f"{path}: not valid {encoding} text (byte {done - len(pending) + e.start}: "
                    f"{data[e.start:e.start + 1]!r}); if it is text in another encoding, pass {hint}"
                ) from None
            done += len(block)
            if text:
                yield text
            if not block:
                return


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1") from None


def _pieces(source: str, encoding: str) -> Callable[[], Iterator[str]]:
    """A function giving the corpus's text in pieces, each call reading it anew (what the files hold is
    checked on the way: missing, non-regular, binary, undecodable)."""
    _check_encoding(encoding)
    if source.startswith(BUILTIN_PREFIX):
        text = load_builtin(source[len(BUILTIN_PREFIX):])
        return lambda: iter((text,))
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"{source}: no such file or folder; give a text file, a folder of text files, "
            f"or builtin:pystdlib"
        )
    if not path.is_dir():
        check_regular(path)
        return lambda: _file_pieces(path, encoding)
    files = sorted(
        p for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise DataError(f"{source}: the folder holds no files; give a folder of text files")
    return lambda: (piece for f in files for piece in _file_pieces(f, encoding))


def read_corpus(source: str, encoding: str = "utf-8") -> str:
    """The whole corpus as one string.

    source: a file; a folder (its files, recursively, sorted by path, hidden files and folders skipped);
            or "builtin:NAME" (see rnnlab.data.corpora.BUILTINS).
    """
    text = "".join(_pieces(source, encoding)())
    if not text:
        raise DataError(f"{source}: is empty; give a text with at least a few thousand characters")
    return text


def read_corpus_ids(source: str, encoding: str = "utf-8", vocab: CharVocab | None = None) -> tuple[Tensor, CharVocab]:
    """(ids, vocabulary) of a corpus (as read_corpus reads it) without ever holding its text: one pass collects
    the characters (unless `vocab` is given), a second encodes piece by piece into one compact tensor
    (CharVocab.id_dtype: 2 bytes per character for up to 32,767 distinct ones). Memory is about twice the file,
    not ~26 bytes per character as text -> int64 ids took."""
    pieces = _pieces(source, encoding)
    chars: set[str] = set()
    n = 0
    for piece in pieces():
        if vocab is None:
            chars.update(piece)
        n += len(piece)
    if n == 0:
        raise DataError(f"{source}: is empty; give a text with at least a few thousand characters")
    vocab = vocab if vocab is not None else CharVocab(sorted(chars))
    ids = torch.empty(n, dtype=vocab.id_dtype)
    at = 0
    for piece in pieces():
        for start in range(0, len(piece), CHUNK):
            part = piece[start: start + CHUNK]
            if at + len(part) > n:
                raise DataError(f"{source}: changed while it was read; read it again once it is complete")
            ids[at: at + len(part)] = vocab.encode(part, what=source)
            at += len(part)
    if at != n:
        raise DataError(f"{source}: changed while it was read; read it again once it is complete")
    return ids, vocab
