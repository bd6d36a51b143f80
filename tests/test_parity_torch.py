"""Rung 4: every configuration torch.nn supports matches torch.nn on copied weights — outputs, final
states and every gradient (parameters, input, initial state) — with the reference backend and with auto."""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence
from helpers import RNNLAB_LAYER, TOL, TORCH_LAYER, assert_close_dict, flat_state, grads, loss_of, output_tensor

I, H, P, T, B = 3, 5, 2, 6, 4

CONFIGS = [
    ("lstm", {}), ("lstm", {"proj_size": P}), ("gru", {}), ("rnn", {"nonlinearity": "tanh"}),
    ("rnn", {"nonlinearity": "relu"}),
]


def make_pair(family, kw, layers, bidir, batch_first, bias, dtype, backend):
    torch.manual_seed(0)
    ours = RNNLAB_LAYER[family](I, H, layers, bias=bias, batch_first=batch_first, bidirectional=bidir,
                                dtype=dtype, backend=backend, **kw)
    ref = TORCH_LAYER[family](I, H, layers, bias=bias, batch_first=batch_first, bidirectional=bidir,
                              dtype=dtype, **kw)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def make_inputs(family, kw, layers, bidir, batch_first, packed, dtype):
    g = torch.Generator().manual_seed(1)
    D = 2 if bidir else 1
    R = kw.get("proj_size", 0) or H
    x = torch.randn(B, T, I, generator=g, dtype=dtype) if batch_first else torch.randn(T, B, I, generator=g, dtype=dtype)
    h0 = [torch.randn(layers * D, B, R, generator=g, dtype=dtype)]
    if family == "lstm":
        h0.append(torch.randn(layers * D, B, H, generator=g, dtype=dtype))
    leaves = [x.requires_grad_()] + [h.requires_grad_() for h in h0]
    hx = tuple(h0) if family == "lstm" else h0[0]
    inp = x
    if packed:
        lengths = torch.tensor([4, 6, 1, 3])  # unsorted on purpose: exercises the permutations
        inp = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    return inp, hx, leaves


@pytest.mark.parametrize("backend", ["reference", "auto"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("layers,bidir,batch_first,bias", [
    c for c in itertools.product([1, 2, 3], [False, True], [False, True], [True, False])
    if c[3] or c[0] == 2  # bias=False on the two-layer configurations
], ids=lambda v: str(v))
@pytest.mark.parametrize("family,kw", CONFIGS, ids=["lstm", "lstm-proj", "gru", "rnn-tanh", "rnn-relu"])
def test_layer_matches_torch(family, kw, layers, bidir, batch_first, bias, packed, dtype, backend):
    ours, ref = make_pair(family, kw, layers, bidir, batch_first, bias, dtype, backend)
    inp, hx, leaves = make_inputs(family, kw, layers, bidir, batch_first, packed, dtype)

    out_a, st_a = ours(inp, hx)
    out_b, st_b = ref(inp, hx)
    tol = TOL[dtype]
    if packed:
        torch.testing.assert_close(out_a.batch_sizes, out_b.batch_sizes)
        torch.testing.assert_close(out_a.unsorted_indices, out_b.unsorted_indices)
    torch.testing.assert_close(output_tensor(out_a), output_tensor(out_b), **tol)
    for a, b in zip(flat_state(st_a), flat_state(st_b)):
        torch.testing.assert_close(a, b, **tol)
    assert_close_dict(grads(ours, leaves, loss_of(out_a, st_a)), grads(ref, leaves, loss_of(out_b, st_b)), **tol)


@pytest.mark.parametrize("family,kw", CONFIGS, ids=["lstm", "lstm-proj", "gru", "rnn-tanh", "rnn-relu"])
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_unbatched_matches_torch(family, kw, backend):
    ours, ref = make_pair(family, kw, 2, True, True, True, torch.float64, backend)
    x = torch.randn(T, I, dtype=torch.float64, requires_grad=True)
    R = kw.get("proj_size", 0) or H
    h0 = torch.randn(4, R, dtype=torch.float64, requires_grad=True)
    hx = (h0, torch.randn(4, H, dtype=torch.float64, requires_grad=True)) if family == "lstm" else h0
    leaves = [x, *flat_state(hx)]
    out_a, st_a = ours(x, hx)
    out_b, st_b = ref(x, hx)
    assert out_a.shape == out_b.shape == (T, 2 * R)
    assert_close_dict(grads(ours, leaves, loss_of(out_a, st_a)), grads(ref, leaves, loss_of(out_b, st_b)), **TOL[torch.float64])
    for a, b in zip([out_a, *flat_state(st_a)], [out_b, *flat_state(st_b)]):
        torch.testing.assert_close(a, b, **TOL[torch.float64])


@pytest.mark.parametrize("family,kw", CONFIGS, ids=["lstm", "lstm-proj", "gru", "rnn-tanh", "rnn-relu"])
def test_state_dict_loads_both_ways(family, kw):
    ours, ref = make_pair(family, kw, 2, True, False, True, torch.float32, "auto")
    assert list(ours.state_dict()) == list(ref.state_dict())  # same names, same order
    for (na, a), (nb, b) in zip(ours.state_dict().items(), ref.state_dict().items()):
        assert a.shape == b.shape, na
    fresh = TORCH_LAYER[family](I, H, 2, bidirectional=True, **kw)
    ours.load_state_dict(fresh.state_dict())
    x = torch.randn(T, B, I)
    torch.testing.assert_close(ours(x)[0], fresh(x)[0], **TOL[torch.float32])


@pytest.mark.parametrize("family,kw", CONFIGS, ids=["lstm", "lstm-proj", "gru", "rnn-tanh", "rnn-relu"])
def test_dropout_between_layers_matches_torch_with_same_seed(family, kw):
    """torch.nn draws one dropout mask per layer output; so does rnnlab, in the same order."""
    ours, ref = make_pair(family, kw, 3, True, False, True, torch.float64, "auto")
    ours.dropout = ref.dropout = 0.4
    x = torch.randn(T, B, I, dtype=torch.float64)
    torch.manual_seed(5)
    a = ours(x)[0]
    torch.manual_seed(5)
    b = ref(x)[0]
    torch.testing.assert_close(a, b, **TOL[torch.float64])
    ours.eval()
    ref.eval()
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL[torch.float64])


@pytest.mark.parametrize("family,kw", [("lstm", {}), ("gru", {}), ("rnn", {})], ids=["lstm", "gru", "rnn"])
def test_cells_match_torch(family, kw):
    ours_cls = {"lstm": __import__("rnnlab").LSTMCell, "gru": __import__("rnnlab").GRUCell,
                "rnn": __import__("rnnlab").RNNCell}[family]
    ref_cls = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn": torch.nn.RNNCell}[family]
    for bias, dtype in itertools.product([True, False], [torch.float32, torch.float64]):
        ours = ours_cls(I, H, bias, dtype=dtype)
        ref = ref_cls(I, H, bias, dtype=dtype)
        ref.load_state_dict(ours.state_dict())
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(B, I, dtype=dtype, requires_grad=True)
        hx = tuple(torch.randn(B, H, dtype=dtype, requires_grad=True) for _ in range(2 if family == "lstm" else 1))
        hx = hx if family == "lstm" else hx[0]
        leaves = [x, *flat_state(hx)]
        a, b = ours(x, hx), ref(x, hx)
        for u, v in zip(flat_state(a), flat_state(b)):
            torch.testing.assert_close(u, v, **TOL[dtype])
        ga = grads(ours, leaves, sum((t * t).sum() for t in flat_state(a)))
        gb = grads(ref, leaves, sum((t * t).sum() for t in flat_state(b)))
        assert_close_dict(ga, gb, **TOL[dtype])
        # unbatched, no hx
        for u, v in zip(flat_state(ours(x[0])), flat_state(ref(x[0]))):
            torch.testing.assert_close(u, v, **TOL[dtype])
