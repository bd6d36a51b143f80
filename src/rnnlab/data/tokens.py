"""TokenVocab: words or characters <-> ids, for a classifier's input or a decoder's output (captions, seq2seq).

One class of two kinds. The kind fixes the special tokens (ids 0, 1, ...), what a "word" is, and how the
other tokens are ordered:

    kind        specials                  "word" tokens                                 other tokens, by id
    classifier  0 <pad> 1 <unk>           lower-cased words and punctuation marks       most frequent first
                                          ("don't" stays one word): split "word"        (ties alphabetically)
    decoder     0 <pad> 1 <bos> 2 <eos>   whitespace-separated, case kept (generated    alphabetical
                3 <unk>                   text is joined back with spaces): "whitespace"

Characters (level "char") are split "char" in both. <pad> is ignored by the loss; a decoder is fed <bos> at
its first step and emits <eos> to stop; <unk> stands for a token the training texts did not have.

The file (`to_json`, format "rnnlab-tokenvocab" version 2) names its special tokens and its split:

    {"format": "rnnlab-tokenvocab", "version": 2, "split": "word", "specials": ["<pad>", "<unk>"],
     "tokens": ["<pad>", "<unk>", "the", ...]}          # tokens[i] is id i; the specials come first

Version 1 files (rnnlab 0.1.0 up to commit bfeb559) had two schemas under the same tag, told apart by their
keys: "mode" (the classifier's: tokens without the specials) and "level" (the decoder's: with them). Both
are read with the ids they had.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from .errors import DataError

__all__ = ["BOS", "EOS", "KINDS", "PAD", "SPLITS", "TokenVocab", "UNK", "tokenize"]

KINDS = {"classifier": ("<pad>", "<unk>"), "decoder": ("<pad>", "<bos>", "<eos>", "<unk>")}
PAD, BOS, EOS, UNK = 0, 1, 2, 3  # the decoder's ids (models/seq2seq.py); <pad> is 0 in both kinds
SPLITS = ("char", "word", "whitespace")
_FORMAT, _VERSION = "rnnlab-tokenvocab", 2
_WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def tokenize(text: str, split: str) -> list[str]:
    """The tokens of `text`: characters as they are ("char"), lower-cased words and punctuation marks
    ("word"), or the pieces between whitespace ("whitespace")."""
    if split == "char":
        return list(text)
    if split == "word":
        return _WORD.findall(text.lower())
    if split == "whitespace":
        return text.split()
    raise DataError(f"unknown token split {split!r}; expected one of {', '.join(SPLITS)}")


def _split_of(level: str, kind: str) -> str:
    """A level as the options name it ("char" | "word") -> the split the kind uses for it."""
    if level not in ("char", "word"):
        raise DataError(f"unknown token level {level!r}; expected char or word")
    return "char" if level == "char" else ("word" if kind == "classifier" else "whitespace")


class TokenVocab:
    """Tokens <-> ids. `tokens` are the non-special tokens in id order (specials given among them are
    dropped); the kind's specials come first.

    >>> v = TokenVocab.build(["RED APPLE", "GREEN APPLE"])                   # a decoder's, words
    >>> v.decode(v.encode("GREEN APPLE"))
    'GREEN APPLE'
    >>> TokenVocab.build(["a cat", "a dog"], "word", kind="classifier").tokens
    ['<pad>', '<unk>', 'a', 'cat', 'dog']
    """

    def __init__(self, tokens: Iterable[str], split: str = "whitespace", kind: str = "decoder") -> None:
        if kind not in KINDS:
            raise DataError(f"TokenVocab: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if split not in SPLITS:
            raise DataError(f"TokenVocab: split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.kind, self.split, self.specials = kind, split, KINDS[kind]
        self.tokens = [*self.specials, *(t for t in tokens if t not in self.specials)]
        if len(set(self.tokens)) != len(self.tokens):
            raise DataError("TokenVocab: tokens repeat; every token must appear once")
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.unk = self.index["<unk>"]
        self.eos = self.index.get("<eos>")

    @classmethod
    def build(cls, texts: Iterable[str], level: str = "word", min_count: int = 1, max_size: int | None = None,
              *, kind: str = "decoder") -> TokenVocab:
        """The tokens seen at least `min_count` times in the (training) texts, at most `max_size` of them
        (the most frequent), ordered as the kind orders them (module docstring)."""
        if min_count < 1:
            raise DataError(f"min count must be >= 1, got {min_count}")
        split = _split_of(level, kind)
        counts = Counter(t for text in texts for t in tokenize(text, split))
        kept = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
        if max_size:
            kept = kept[:max_size]
        return cls(kept if kind == "classifier" else sorted(kept), split, kind)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenVocab) and (other.tokens, other.split, other.kind) == (
            self.tokens, self.split, self.kind)

    def __repr__(self) -> str:
        return f"TokenVocab({len(self)} tokens, {self.kind}, split {self.split!r})"

    def encode(self, text: str) -> list[int]:
        """Ids of the tokens of `text` (unknown tokens -> <unk>), without <bos>/<eos>; [] for no tokens."""
        return [self.index.get(t, self.unk) for t in tokenize(text, self.split)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`, stopping at <eos> and skipping the other specials except <unk>."""
        out = []
        for i in ids:
            if i == self.eos:
                break
            if i < len(self.specials) and i != self.unk:
                continue
            out.append(self.tokens[i])
        return ("" if self.split == "char" else " ").join(out)

    def to_json(self) -> dict:
        return {"format": _FORMAT, "version": _VERSION, "split": self.split, "specials": list(self.specials),
                "tokens": self.tokens}

    @classmethod
    def from_json(cls, data: dict, kind: str | None = None) -> TokenVocab:
        """A vocabulary from its file (either version); with `kind`, a vocabulary of another kind is a
        DataError that says what the file is and who wrote it."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("tokens"), list):
            raise DataError(f"TokenVocab: not an rnnlab token vocabulary (expected format {_FORMAT!r})")
        version = data.get("version")
        if version == _VERSION:
            specials = data.get("specials")
            found = [k for k, s in KINDS.items() if list(s) == specials]
            if not found or data["tokens"][: len(specials)] != specials:
                raise DataError(f"TokenVocab: special tokens {specials!r} are not those of a classifier "
                                f"{list(KINDS['classifier'])} or a decoder {list(KINDS['decoder'])}, listed first "
                                f"in tokens; the file was not written by rnnlab")
            vocab = cls(data["tokens"], data.get("split"), found[0])
            origin = f"a {vocab.kind}'s (format version 2)"
        elif version == 1 and "mode" in data:
            vocab = cls(data["tokens"], _split_of(data["mode"], "classifier"), "classifier")
            origin = "a classifier's, written by rnnlab 0.1.0 (format version 1, key 'mode')"
        elif version == 1 and "level" in data:
            vocab = cls(data["tokens"], _split_of(data["level"], "decoder"), "decoder")
            origin = "a caption/seq2seq decoder's, written by rnnlab 0.1.0 (format version 1, key 'level')"
        elif isinstance(version, int) and version > _VERSION:
            raise DataError(f"TokenVocab: format version {version} was written by a newer rnnlab than this one "
                            f"(which reads versions 1 and 2); upgrade rnnlab")
        else:
            raise DataError(f"TokenVocab: format version {version!r} without 'mode' or 'level' was not written by "
                            f"rnnlab (version 1 files, rnnlab 0.1.0, have one of them; version 2 files name "
                            f"their specials)")
        if kind is not None and vocab.kind != kind:
            raise DataError(f"TokenVocab: this vocabulary is {origin}, with special tokens "
                            f"{' '.join(vocab.specials)}; a {kind} needs {' '.join(KINDS[kind])}: give the "
                            f"vocabulary of a {kind} run")
        return vocab
