"""TokenVocab: words (or characters) to ids for generated sequences, with the special tokens a decoder needs.

    0 <pad>   padding, ignored by the loss
    1 <bos>   fed to the decoder at the first step
    2 <eos>   the decoder emits it to stop
    3 <unk>   a word that was not in the training captions
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .errors import DataError

__all__ = ["BOS", "EOS", "PAD", "SPECIALS", "TokenVocab", "UNK"]

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
_FORMAT = "rnnlab-tokenvocab"


class TokenVocab:
    """level "word": whitespace-separated words (joined back with spaces); "char": characters.

    >>> v = TokenVocab.build(["RED APPLE", "GREEN APPLE"])
    >>> v.decode(v.encode("GREEN APPLE"))
    'GREEN APPLE'
    """

    def __init__(self, tokens: Iterable[str], level: str = "word") -> None:
        if level not in ("word", "char"):
            raise DataError(f"TokenVocab: level must be 'word' or 'char', got {level!r}")
        self.level = level
        self.tokens = list(tokens)
        if self.tokens[: len(SPECIALS)] != SPECIALS:
            self.tokens = SPECIALS + [t for t in self.tokens if t not in SPECIALS]
        if len(set(self.tokens)) != len(self.tokens):
            raise DataError("TokenVocab: tokens repeat; every token must appear once")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], level: str = "word", min_count: int = 1) -> TokenVocab:
        counts = Counter(t for text in texts for t in cls.split(text, level))
        return cls(sorted(t for t, n in counts.items() if n >= min_count), level)

    @staticmethod
    def split(text: str, level: str) -> list[str]:
        return text.split() if level == "word" else list(text)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenVocab) and (other.tokens, other.level) == (self.tokens, self.level)

    def __repr__(self) -> str:
        return f"TokenVocab({len(self)} {self.level} tokens)"

    def encode(self, text: str) -> list[int]:
        """Ids of the tokens of `text` (unknown tokens -> <unk>), without <bos>/<eos>."""
        return [self.index.get(t, UNK) for t in self.split(text, self.level)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`, stopping at <eos> and skipping <pad>/<bos>."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(self.tokens[i])
        return (" " if self.level == "word" else "").join(out)

    def to_json(self) -> dict:
        return {"format": _FORMAT, "version": 1, "level": self.level, "tokens": self.tokens}

    @classmethod
    def from_json(cls, data: dict) -> TokenVocab:
        if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("tokens"), list):
            raise DataError(f"TokenVocab: not an rnnlab token vocabulary (expected format {_FORMAT!r})")
        return cls(data["tokens"], data.get("level", "word"))
