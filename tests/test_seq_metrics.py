"""CER, WER, sequence accuracy and BLEU on cases worked by hand (rapidfuzz and sacrebleu do the counting)."""

import pytest

pytest.importorskip("rapidfuzz", reason="error rates need rapidfuzz (pip install rnnlab[datasets])")

from rnnlab.train.seq_metrics import bleu, cer, edit_distance, sequence_accuracy, wer  # noqa: E402


def test_error_rates_by_hand():
    assert edit_distance("kitten", "sitting") == 3
    assert cer(["123", "4567"], ["123", "4667"]) == pytest.approx(1 / 7)
    assert cer(["", "12"], ["1", "12"]) == pytest.approx(1 / 3)          # a deletion
    assert wer(["RED APPLE", "GREEN FACE"], ["RED APPLE", "SMILING FACE WITH"]) == pytest.approx(2 / 5)
    assert sequence_accuracy(["a", "b", "c"], ["a", "x", "c"]) == pytest.approx(2 / 3)


def test_bleu():
    pytest.importorskip("sacrebleu", reason="BLEU needs sacrebleu (pip install rnnlab[datasets])")
    same = ["GRINNING FACE WITH SMILING EYES", "RED APPLE IS ON THE TABLE"]
    assert bleu(same, [[s] for s in same]) == pytest.approx(100.0)
    assert bleu(["BLUE CAR"], [["RED APPLE"]]) == pytest.approx(0.0)
    partial = bleu(["GRINNING FACE WITH SMILING MOUTH"], [["GRINNING FACE WITH SMILING EYES"]])
    assert 0 < partial < 100
    # two-word captions have no 3- or 4-grams: effective order scores them on 1- and 2-grams instead of 0
    assert bleu(["RED DISC", "BLUE CROSS"], [["RED DISC"], ["BLUE SQUARE"]]) == pytest.approx(100 * (0.75 * 0.5) ** 0.5)
    # a second reference can only help
    assert bleu(["GRINNING FACE WITH SMILING MOUTH"], [["GRINNING FACE WITH SMILING EYES",
                                                        "GRINNING FACE WITH SMILING MOUTH"]]) == pytest.approx(100.0)
