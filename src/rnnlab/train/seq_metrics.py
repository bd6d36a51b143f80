"""Sequence metrics: character and word error rate (edit distance, from rapidfuzz), sequence accuracy, and
corpus BLEU (sacrebleu). Rates are corpus-level: total edits over total reference length."""

from __future__ import annotations

from collections.abc import Sequence

from ..data import DataError

__all__ = ["bleu", "cer", "edit_distance", "sequence_accuracy", "wer"]


def _levenshtein():
    try:
        from rapidfuzz.distance import Levenshtein
    except ImportError:
        raise DataError("error rates need the rapidfuzz package (pip install rapidfuzz, or rnnlab[datasets])") from None
    return Levenshtein


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1) between two sequences."""
    return _levenshtein().distance(a, b)


def _check(hyps: Sequence, refs: Sequence) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"metrics: {len(hyps)} hypotheses but {len(refs)} references")


def cer(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Character error rate: sum of edit distances / sum of reference lengths."""
    _check(hyps, refs)
    lev = _levenshtein()
    edits = sum(lev.distance(h, r) for h, r in zip(hyps, refs))
    return edits / max(1, sum(len(r) for r in refs))


def wer(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Word error rate: edit distance over whitespace-separated words / number of reference words."""
    _check(hyps, refs)
    lev = _levenshtein()
    edits = sum(lev.distance(h.split(), r.split()) for h, r in zip(hyps, refs))
    return edits / max(1, sum(len(r.split()) for r in refs))


def sequence_accuracy(hyps: Sequence[str], refs: Sequence[str]) -> float:
    _check(hyps, refs)
    return sum(h == r for h, r in zip(hyps, refs)) / max(1, len(refs))


def bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (sacrebleu, 0-100, effective order) of hypotheses against one or more references each.
    refs[i] holds the references of hyps[i]; items with fewer references are padded by repeating their first."""
    _check(hyps, refs)
    try:
        import sacrebleu
    except ImportError:
        raise DataError("BLEU needs the sacrebleu package (pip install sacrebleu, or rnnlab[datasets])") from None
    n = max(len(r) for r in refs)
    streams = [[r[k] if k < len(r) else r[0] for r in refs] for k in range(n)]
    # sacrebleu's defaults (13a tokenisation, BLEU-4), but with effective order: captions are often shorter
    # than 4 words, and a corpus with no 3- or 4-grams would score 0 however right it is ("RED DISC" for
    # "RED DISC"); effective order leaves out the n-gram orders the hypotheses do not have
    from sacrebleu.metrics import BLEU

    return float(BLEU(effective_order=True).corpus_score(list(hyps), streams).score)
