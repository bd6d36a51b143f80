"""rnnlab.models.CharLM: shapes, loss, carried state, variants, and reproducible generation."""

import math

import pytest
import torch

from rnnlab.models import CharLM, CharLMConfig, RecurrentConfig


def model(**kw) -> CharLM:
    """A tiny CharLM; kw are the recurrent stack's options (RecurrentConfig)."""
    torch.manual_seed(0)
    return CharLM(CharLMConfig(vocab_size=11, embed=8, rnn=RecurrentConfig(hidden_size=16, init="orthogonal", **kw)))


def test_forward_shapes_loss_and_state():
    m = model()
    x = torch.randint(0, 11, (3, 7))
    logits, loss = m(x)
    assert logits.shape == (3, 7, 11) and loss is None
    logits, loss, (h, c) = m(x, x, return_state=True)
    assert h.shape == (1, 3, 16) and c.shape == (1, 3, 16)
    assert math.isclose(loss.item(), torch.nn.functional.cross_entropy(logits.reshape(-1, 11), x.reshape(-1)).item(),
                        rel_tol=1e-6)
    assert abs(loss.item() - math.log(11)) < 0.5  # an untrained model is near uniform


def test_state_carries_across_chunks():
    m = model().eval()
    x = torch.randint(0, 11, (2, 10))
    whole = m(x)[0]
    _, _, state = m(x[:, :6], return_state=True)
    rest = m(x[:, 6:], state=state)[0]
    torch.testing.assert_close(rest, whole[:, 6:], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [
    dict(cell="gru"), dict(cell="rnn"), dict(cell="lstm", peephole=True, coupled=True, layer_norm=True, proj_size=8),
    dict(cell="gru", layer_norm=True, num_layers=2, dropout=0.1),
])
def test_cells_and_variants(kw):
    m = model(**kw)
    logits, loss = m(torch.randint(0, 11, (2, 5)), torch.randint(0, 11, (2, 5)))
    loss.backward()
    assert logits.shape == (2, 5, 11)
    assert all(p.grad is not None for p in m.parameters())


def test_recurrent_weights_are_orthogonal():
    w = model().rnn.weight_hh_l0  # (4H, H): each H-row block orthogonal
    for block in w.split(16):
        torch.testing.assert_close(block @ block.T, torch.eye(16), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kw,match", [
    (dict(cell="lstmm"), "unknown cell 'lstmm'"),
    (dict(cell="gru", peephole=True), "peephole is only defined for the LSTM"),
    (dict(bidirectional=True), "a language model reads left to right"),
    (dict(backend="warp"), "unknown backend 'warp'"),
    (dict(proj_size=16), "proj_size must be smaller than hidden_size=16"),
])
def test_bad_config_says_what_is_allowed(kw, match):
    with pytest.raises(ValueError, match=match):
        model(**kw)


def test_generation_is_reproducible_with_a_seed():
    m = model()
    prime = torch.tensor([1, 2, 3])
    a = list(m.generate(prime, 40, temperature=1.0, generator=torch.Generator().manual_seed(5)))
    b = list(m.generate(prime, 40, temperature=1.0, generator=torch.Generator().manual_seed(5)))
    c = list(m.generate(prime, 40, temperature=1.0, generator=torch.Generator().manual_seed(6)))
    assert a == b and a != c and len(a) == 40 and all(0 <= i < 11 for i in a)


def test_top_k_one_is_greedy():
    m = model()
    prime = torch.tensor([4])
    greedy = list(m.generate(prime, 20, temperature=0))
    top1 = list(m.generate(prime, 20, temperature=1.5, top_k=1, generator=torch.Generator().manual_seed(0)))
    assert greedy == top1


def test_orthogonal_init_with_the_char_lm_forget_bias():
    from rnnlab.models import CharLM, CharLMConfig, RecurrentConfig

    H = 16
    model = CharLM(CharLMConfig(vocab_size=7, embed=8, rnn=RecurrentConfig(hidden_size=H, num_layers=2, init="orthogonal")))
    for layer in range(2):
        b = getattr(model.rnn, f"bias_ih_l{layer}")
        assert torch.all(b[H : 2 * H] == 0.0)
        W = getattr(model.rnn, f"weight_hh_l{layer}")[:H]
        torch.testing.assert_close(W @ W.T, torch.eye(H), atol=1e-5, rtol=0)
    model = CharLM(CharLMConfig(vocab_size=7, embed=8, forget_bias=1.0, rnn=RecurrentConfig(hidden_size=H, init="orthogonal")))
    assert torch.all(model.rnn.bias_ih_l0[H : 2 * H] == 1.0)
