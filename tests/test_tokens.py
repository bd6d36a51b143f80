"""The one token vocabulary: both kinds round-trip through the version-2 file, the two version-1 schemas
(rnnlab 0.1.0's classifier and decoder files, as the fixture runs hold them) read back with the ids they
had, and a vocabulary of the wrong kind, or a file rnnlab did not write, is a DataError that says so."""

import json
from pathlib import Path

import pytest

from rnnlab.data import DataError
from rnnlab.data.tokens import BOS, EOS, PAD, UNK, TokenVocab
from rnnlab.train.classify import Encoder

OLD = Path(__file__).parent / "fixtures" / "runs-bfeb559"


def old_vocab(task: str) -> dict:
    state = json.loads((OLD / task / "best" / "state.json").read_text())
    return state["encoder"]["vocab"] if task == "classify" else state["vocab"]


def test_old_classifier_file_reads_with_the_same_ids():
    data = old_vocab("classify")
    assert data["version"] == 1 and data["mode"] == "word"
    v = TokenVocab.from_json(data, kind="classifier")
    # rnnlab 0.1.0 stored the tokens without <pad> <unk> and gave them ids 2, 3, ...
    assert v.tokens == ["<pad>", "<unk>", *data["tokens"]] and (v.kind, v.split, v.unk) == ("classifier", "word", 1)
    assert v.encode("Good, movie zzz") == [2 + data["tokens"].index("good"), 1, 2, 1]


def test_old_decoder_file_reads_with_the_same_ids():
    data = old_vocab("caption")
    assert data["version"] == 1 and data["level"] == "word"
    v = TokenVocab.from_json(data, kind="decoder")
    assert v.tokens == data["tokens"] and (v.kind, v.split) == ("decoder", "whitespace")
    assert (v.index["<pad>"], v.index["<bos>"], v.index["<eos>"], v.unk) == (PAD, BOS, EOS, UNK)
    assert v.encode("RED DISC green") == [data["tokens"].index("RED"), data["tokens"].index("DISC"), UNK]
    assert v.decode([BOS, v.index["RED"], UNK, EOS, v.index["DISC"]]) == "RED <unk>"


@pytest.mark.parametrize("kind,level,split", [("classifier", "word", "word"), ("classifier", "char", "char"),
                                              ("decoder", "word", "whitespace"), ("decoder", "char", "char")])
def test_new_file_round_trips_and_names_its_specials(kind, level, split):
    v = TokenVocab.build(["Red apple.", "green apple", "red heart"], level, kind=kind)
    data = json.loads(json.dumps(v.to_json()))
    assert (data["version"], data["split"]) == (2, split)
    assert data["specials"] == data["tokens"][: len(data["specials"])] == list(v.specials)
    back = TokenVocab.from_json(data, kind=kind)
    assert back == v and back.encode("green heart!") == v.encode("green heart!")


def test_the_two_kinds_order_and_split_as_before():
    texts = ["b a", "b c", "b a"]
    assert TokenVocab.build(texts, "word", kind="classifier").tokens[2:] == ["b", "a", "c"]  # most frequent first
    assert TokenVocab.build(texts, "word", kind="decoder").tokens[4:] == ["a", "b", "c"]     # alphabetical
    assert TokenVocab.build(["Don't go"], "word", kind="classifier").tokens[2:] == ["don't", "go"]
    assert TokenVocab.build(["Don't go"], "word", kind="decoder").tokens[4:] == ["Don't", "go"]


def test_a_vocabulary_of_the_wrong_kind_is_a_clear_error():
    with pytest.raises(DataError, match=r"classifier's, written by rnnlab 0\.1\.0 .*a decoder needs <pad> <bos>"):
        TokenVocab.from_json(old_vocab("classify"), kind="decoder")
    with pytest.raises(DataError, match=r"decoder's, written by rnnlab 0\.1\.0 .*a classifier needs <pad> <unk>"):
        Encoder.from_json({"kind": "text", "vocab": old_vocab("caption")})
    new = TokenVocab.build(["a b"], kind="decoder").to_json()
    with pytest.raises(DataError, match=r"a decoder's \(format version 2\).*a classifier needs"):
        TokenVocab.from_json(new, kind="classifier")


@pytest.mark.parametrize("data,match", [
    ({"format": "rnnlab-tokenvocab", "version": 1, "tokens": ["a"]}, r"without 'mode' or 'level'"),
    ({"format": "rnnlab-tokenvocab", "version": 3, "tokens": ["a"]}, r"newer rnnlab.*upgrade"),
    ({"format": "rnnlab-tokenvocab", "version": 2, "split": "word", "specials": ["<unk>"], "tokens": ["<unk>"]},
     r"special tokens \['<unk>'\]"),
    ({"format": "rnnlab-charvocab", "tokens": []}, r"not an rnnlab token vocabulary"),
])
def test_files_rnnlab_did_not_write_are_rejected(data, match):
    with pytest.raises(DataError, match=match):
        TokenVocab.from_json(data)


def test_classifier_encoder_gives_an_empty_text_one_unknown_step():
    enc = Encoder("text", TokenVocab.build(["a b"], "word", kind="classifier"), None, None)
    assert enc.encode(["   ", "a"]) == [[1], [2]]
