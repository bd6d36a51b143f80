"""CharVocab: the characters a model knows, in a fixed order, saved as JSON next to the weights."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from .errors import DataError

__all__ = ["CharVocab"]

_FORMAT = "rnnlab-charvocab"


def _show(chars: Iterable[str], limit: int = 8) -> str:
    chars = list(chars)
    shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


class CharVocab:
    """A bijection between characters and ids 0..C-1, ordered by code point (so it never depends on
    the order the text was read in).

    >>> v = CharVocab.from_text("hello")
    >>> v.decode(v.encode("hole").tolist())
    'hole'
    """

    def __init__(self, chars: Iterable[str]) -> None:
        chars = list(chars)
        if not chars:
            raise DataError("CharVocab: no characters; build it from a non-empty text")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise DataError("CharVocab: every entry must be a single character")
        if len(set(chars)) != len(chars):
            raise DataError("CharVocab: characters repeat; every character must appear once")
        self.chars: list[str] = chars
        self.index: dict[str, int] = {c: i for i, c in enumerate(chars)}
        # Sorted code points -> id, so encode can look a whole text up with one searchsorted.
        codes = torch.tensor([ord(c) for c in chars], dtype=torch.int64)
        self._codes, order = codes.sort()
        self._ids = order

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def id_dtype(self) -> torch.dtype:
        """The smallest integer dtype that holds every id: how a long text's ids are stored (2 bytes a character
        rather than int64's 8); batches are widened to int64 as they are cut."""
        return torch.int16 if len(self) <= torch.iinfo(torch.int16).max else torch.int32

    def __contains__(self, char: str) -> bool:
        return char in self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and other.chars == self.chars

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"

    def unseen(self, text: str) -> list[str]:
        """Characters of `text` that are not in the vocabulary, sorted."""
        return sorted(set(text) - self.index.keys())

    def encode(self, text: str, *, what: str = "the text") -> Tensor:
        """(N,) int64 ids of the characters of `text`. Unknown characters raise a DataError naming them."""
        if not text:
            return torch.empty(0, dtype=torch.int64)
        codes = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32).to(torch.int64)
        pos = torch.searchsorted(self._codes, codes).clamp_(max=len(self) - 1)
        if not torch.equal(self._codes[pos], codes):
            missing = self.unseen(text)
            raise DataError(
                f"{what} has {len(missing)} character(s) the model never saw: {_show(missing)}; "
                f"use only characters of the training text"
            )
        return self._ids[pos]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    # ----- JSON ------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": _FORMAT, "version": 1, "chars": self.chars}

    @classmethod
    def from_json(cls, data: dict) -> CharVocab:
        if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("chars"), list):
            raise DataError(f"CharVocab: not an rnnlab character vocabulary (expected format {_FORMAT!r})")
        return cls(data["chars"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON, atomically (a temporary file renamed over the target)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), ensure_ascii=True), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharVocab:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"CharVocab: {path} does not exist; give the vocab.json saved with the model") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"CharVocab: {path} is not valid JSON ({e}); the file is corrupt") from None
        return cls.from_json(data)
