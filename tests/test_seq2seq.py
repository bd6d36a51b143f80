"""The shared Decoder and Seq2Seq: beam search against brute force, greedy = beam 1, a checkable task
(reversing digit strings) learnt to an asserted accuracy, and the token vocabulary."""

import itertools

import pytest
import torch

from rnnlab.data.tokens import BOS, EOS, PAD, TokenVocab
from rnnlab.models import Decoder, DecoderConfig, RecurrentConfig, Seq2Seq, Seq2SeqConfig


pytestmark = pytest.mark.usefixtures("one_thread")


def sequence_logp(dec, context, seq, max_len):
    """log P(seq [+ <eos> if shorter than max_len] | context), stepping the decoder by hand."""
    state = dec.initial_state(context)
    token, total = torch.tensor([BOS]), 0.0
    for t in list(seq) + ([EOS] if len(seq) < max_len else []):
        logp, state = dec.step(token, state)
        total += logp[0, t].item()
        token = torch.tensor([t])
    return total


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_beam_search_equals_brute_force(cell):
    torch.manual_seed(0)
    dec = Decoder(DecoderConfig(vocab_size=6, embed=4, rnn=RecurrentConfig(cell=cell, hidden_size=8)), context_size=3).eval()
    with torch.no_grad():
        dec.head.weight.mul_(4)  # peaked enough that greedy and the best sequence can differ
    words, max_len = [4, 5], 4  # the specials other than <eos> get negligible mass only by chance: exclude them
    with torch.no_grad():
        dec.head.bias[[PAD, BOS, 3]] = -50
    for seed in range(3):
        context = torch.randn(1, 3, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            candidates = [list(s) for n in range(max_len + 1) for s in itertools.product(words, repeat=n)]
            best = max(candidates, key=lambda s: sequence_logp(dec, context, s, max_len))
            found = dec.beam_search(context, max_len, beam=len(candidates), length_penalty=0.0)
        assert found[0][0] == best
        assert found[0][1] == pytest.approx(sequence_logp(dec, context, best, max_len), abs=1e-4)
        assert dec.generate(context, max_len, method="beam", beam=1, length_penalty=0.0)[0] == \
            dec.generate(context, max_len, method="greedy")[0]


def test_sampling_is_seeded_and_temperature_zero_is_greedy():
    torch.manual_seed(1)
    dec = Decoder(DecoderConfig(vocab_size=7, embed=4, rnn=RecurrentConfig(hidden_size=8)), context_size=2).eval()
    ctx = torch.randn(3, 2)
    draw = lambda s: dec.generate(ctx, 6, method="sample", generator=torch.Generator().manual_seed(s))  # noqa: E731
    assert draw(5) == draw(5)
    assert dec.generate(ctx, 6, method="sample", temperature=0) == dec.generate(ctx, 6, method="greedy")


OFFSET = 4  # digit d is token 4 + d


def reversal_batch(g, B, lo=2, hi=5):
    L = torch.randint(lo, hi + 1, (B,), generator=g)
    src, tgt = torch.zeros(B, hi, dtype=torch.long), torch.zeros(B, hi + 1, dtype=torch.long)
    for b in range(B):
        d = torch.randint(0, 10, (int(L[b]),), generator=g) + OFFSET
        src[b, : L[b]], tgt[b, : L[b]], tgt[b, L[b]] = d, d.flip(0), EOS
    return src, L, tgt, L + 1


def test_seq2seq_learns_to_reverse_digit_strings():
    """Teacher-forced training, then free-running decoding: most held-out strings come back reversed
    (chance is about 1 in 10^L)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab=14, tgt_vocab=14, embed=16, rnn=RecurrentConfig(hidden_size=48)))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(220):
        src, L, tgt, TL = reversal_batch(g, 64)
        _, loss = model(src, L, tgt, TL)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    src, L, tgt, _ = reversal_batch(torch.Generator().manual_seed(99), 150)
    truth = [tgt[b, : L[b]].tolist() for b in range(150)]
    greedy = model.generate(src, L, 8, method="greedy")
    beam = model.generate(src[:50], L[:50], 8, method="beam", beam=3)
    acc = sum(o == t for o, t in zip(greedy, truth)) / 150
    acc_beam = sum(o == t for o, t in zip(beam, truth)) / 50
    assert acc >= 0.6, acc
    assert acc_beam >= 0.6, acc_beam


def test_token_vocab_round_trip():
    v = TokenVocab.build(["RED APPLE", "GREEN APPLE", "RED HEART"], kind="decoder")
    assert v.tokens[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and len(v) == 4 + 4
    assert v.decode(v.encode("GREEN HEART")) == "GREEN HEART"
    assert v.encode("BLUE APPLE")[0] == 3 and v.decode([v.index["RED"], EOS, v.index["APPLE"]]) == "RED"
    assert TokenVocab.from_json(v.to_json(), kind="decoder") == v
    c = TokenVocab.build(["ab", "ba c"], level="char", kind="decoder")
    assert c.decode(c.encode("cab")) == "cab" and TokenVocab.from_json(c.to_json()) == c
