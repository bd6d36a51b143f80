"""What user code does with torch.nn's recurrent modules keeps working with rnnlab's."""

import copy
import io
import pickle

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import rnnlab
from helpers import ALL_VARIANTS, RNNLAB_LAYER, flat_state, variant_id


@pytest.mark.parametrize("family,kw", ALL_VARIANTS, ids=[variant_id(f, kw) for f, kw in ALL_VARIANTS])
def test_meta_device_construction_then_materialise(family, kw):
    layer = RNNLAB_LAYER[family](3, 4, 2, bidirectional=True, device="meta", **kw)
    assert all(p.is_meta for p in layer.parameters())
    real = layer.to_empty(device="cpu")
    real.reset_parameters()
    out = real(torch.randn(5, 2, 3))[0]
    assert out.shape[:2] == (5, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize("family,kw", ALL_VARIANTS, ids=[variant_id(f, kw) for f, kw in ALL_VARIANTS])
def test_pickle_deepcopy_and_double(family, kw):
    layer = RNNLAB_LAYER[family](3, 4, 2, **kw)
    x = torch.randn(5, 2, 3)
    want = layer(x)[0]
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        torch.testing.assert_close(clone(x)[0], want, rtol=0, atol=0)
    buf = io.BytesIO()
    torch.save(layer.state_dict(), buf)
    buf.seek(0)
    other = RNNLAB_LAYER[family](3, 4, 2, **kw)
    other.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(other(x)[0], want, rtol=0, atol=0)
    double = layer.double()
    assert all(p.dtype == torch.float64 for p in double.parameters())
    torch.testing.assert_close(double(x.double())[0].float(), want, rtol=1e-4, atol=1e-5)  # f64 vs f32 rounding
    assert layer.to(torch.float32) is layer


def test_flatten_parameters_all_weights_and_repr():
    lstm = rnnlab.LSTM(3, 4, 2, bidirectional=True, proj_size=2, peephole=True, batch_first=True)
    lstm.flatten_parameters()  # harmless no-op
    ref = torch.nn.LSTM(3, 4, 2, bidirectional=True, proj_size=2, batch_first=True)
    assert [len(w) for w in lstm.all_weights] == [8, 8, 8, 8]  # 5 of torch's + 3 peepholes
    assert [w[:5] for w in lstm._all_weights] == ref._all_weights
    assert lstm._flat_weights[0] is lstm.weight_ih_l0
    assert repr(lstm) == "LSTM(3, 4, proj_size=2, num_layers=2, batch_first=True, bidirectional=True, peephole=True)"
    assert repr(rnnlab.RNN(3, 4, nonlinearity="relu", dropout=0.0)) == "RNN(3, 4, nonlinearity='relu')"
    assert repr(rnnlab.GRUCell(3, 4, layer_norm=True)) == "GRUCell(3, 4, layer_norm=True)"
    assert repr(torch.nn.LSTM(3, 4, 2, bidirectional=True, proj_size=2, batch_first=True)) == repr(lstm).replace(", peephole=True", "")


@pytest.mark.parametrize("backend", ["reference", "auto"])
@pytest.mark.parametrize("family", ["lstm", "gru", "rnn"])
def test_double_backward(family, backend):
    """Gradient penalties and Hessian-vector products: create_graph=True, checked with gradgradcheck."""
    torch.manual_seed(0)
    layer = RNNLAB_LAYER[family](2, 3, 2, bidirectional=True, dtype=torch.float64, backend=backend)
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    assert gradgradcheck(lambda x: layer(x)[0], (x,))
    out = layer(x)[0]
    (g,) = torch.autograd.grad(out.pow(2).sum(), x, create_graph=True)
    g.pow(2).sum().backward()
    assert layer.weight_hh_l0.grad is not None and layer.weight_hh_l0.grad.abs().sum() > 0


@pytest.mark.parametrize("family,kw", [("lstm", {"peephole": True, "layer_norm": True, "coupled": True}), ("gru", {"layer_norm": True})])
def test_double_backward_variants(family, kw):
    torch.manual_seed(0)
    layer = RNNLAB_LAYER[family](2, 3, dtype=torch.float64, **kw)
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    assert gradgradcheck(lambda x: layer(x, lengths=[3, 2])[0], (x,))


@pytest.mark.parametrize("backend", ["reference", "native"])
@pytest.mark.parametrize("family", ["lstm", "gru", "rnn"])
def test_backward_in_eval_mode(family, backend):
    layer = RNNLAB_LAYER[family](3, 4, 2, dropout=0.5, backend=backend).eval()
    x = torch.randn(5, 2, 3, requires_grad=True)
    a = layer(x)[0]
    b = layer(x)[0]
    assert torch.equal(a, b)  # no dropout in eval mode
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_functional_call_and_gradcheck_of_parameters():
    lstm = rnnlab.LSTM(2, 2, dtype=torch.float64, backend="native")
    names = [n for n, _ in lstm.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in lstm.parameters())
    x = torch.randn(3, 1, 2, dtype=torch.float64)
    assert gradcheck(lambda *ps: torch.func.functional_call(lstm, dict(zip(names, ps)), (x,))[0], params)


def test_orthogonal_init():
    lstm = rnnlab.LSTM(5, 6, 2, bidirectional=True, init="orthogonal", peephole=True)
    for d in ("", "_reverse"):
        W = getattr(lstm, f"weight_hh_l1{d}")
        for block in W.split(6):
            torch.testing.assert_close(block @ block.T, torch.eye(6), atol=1e-5, rtol=0)
        b = getattr(lstm, f"bias_ih_l0{d}")
        assert torch.equal(b[6:12], torch.ones(6)) and b[:6].abs().sum() == 0 and b[12:].abs().sum() == 0
        assert getattr(lstm, f"bias_hh_l0{d}").abs().sum() == 0
        assert getattr(lstm, f"weight_ci_l0{d}").abs().sum() == 0
        Wi = getattr(lstm, f"weight_ih_l0{d}")
        bound = (6 / (5 + 6)) ** 0.5  # Xavier-uniform per gate block (fan_in 5, fan_out 6)
        assert Wi.abs().max() <= bound and Wi.std() > bound / 4
    gru = rnnlab.GRU(3, 4, init="orthogonal", layer_norm=True)
    assert torch.equal(gru.ln_weight_ih_l0, torch.ones(12)) and gru.bias_ih_l0.abs().sum() == 0


def test_torch_init_scheme_matches_torch_ranges():
    lstm = rnnlab.LSTM(5, 16, peephole=True, layer_norm=True)
    bound = 1 / 16**0.5
    for name, p in lstm.named_parameters():
        if name.startswith("ln_weight"):
            assert torch.equal(p, torch.ones_like(p)), name
        elif name.startswith("ln_bias"):
            assert p.abs().sum() == 0, name
        else:
            assert p.abs().max() <= bound and p.abs().max() > bound / 2, name


def test_backend_choice_is_reported():
    assert rnnlab.LSTM(3, 4).backend_for().name == "native"
    choice = rnnlab.LSTM(3, 4, peephole=True).backend_for()
    assert choice.name == "fused" and "variant" in choice.reason
    assert rnnlab.GRU(3, 4).backend_for(record_gates=True).name == "fused"
    assert rnnlab.GRU(3, 4).backend_for(grad=True).name == "fused"
    from rnnlab.kernels.fused import compiled

    inference = rnnlab.GRU(3, 4).backend_for(grad=False)  # fused where its compiled loop is built
    assert inference.name == ("fused" if compiled.status()[0] else "native"), inference.reason
    assert rnnlab.RNN(3, 4).backend_for(grad=False).name == inference.name  # the RNN's loop too (2026-12-08)
    for layer in (rnnlab.GRU(3, 4), rnnlab.RNN(3, 4)):  # a few steps (generation: one): torch's op, cheaper per call
        short = layer.backend_for(grad=False, steps=1)
        assert short.name == "native" and "under 16 steps" in short.reason, short
        assert layer.backend_for(grad=False, steps=16).name == inference.name
    assert "LSTM peephole+coupled+layer_norm: auto -> fused" in rnnlab.backend_report()


def test_named_backend_that_cannot_serve_names_one_that_can():
    with pytest.raises(ValueError, match=r"LSTM: backend 'native' cannot serve .*peephole.*use backend='fused'"):
        rnnlab.LSTM(3, 4, peephole=True, backend="native")
    lstm = rnnlab.LSTM(3, 4, backend="native")
    with pytest.raises(ValueError, match=r"do not expose gates.*use backend='fused'"):
        lstm(torch.randn(2, 1, 3), record_gates=True)
    with pytest.raises(ValueError, match=r"GRU: unknown backend 'fast'; expected one of"):
        rnnlab.GRU(3, 4, backend="fast")


@pytest.mark.parametrize("family", ["lstm", "gru", "rnn"])
def test_native_and_reference_agree(family):
    torch.manual_seed(0)
    a = RNNLAB_LAYER[family](3, 4, 2, bidirectional=True, backend="reference")
    b = RNNLAB_LAYER[family](3, 4, 2, bidirectional=True, backend="native")
    b.load_state_dict(a.state_dict())
    x = torch.randn(6, 3, 3)
    for u, v in zip([a(x, lengths=[6, 2, 4])[0], *flat_state(a(x)[1])], [b(x, lengths=[6, 2, 4])[0], *flat_state(b(x)[1])]):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)


def test_variant_layer_state_dict_round_trip_and_cell_names():
    lstm = rnnlab.LSTM(3, 4, peephole=True, layer_norm=True, coupled=True)
    names = list(lstm.state_dict())
    assert "weight_ci_l0" in names and "weight_cf_l0" not in names and "ln_weight_c_l0" in names
    cell = rnnlab.LSTMCell(3, 4, peephole=True, layer_norm=True, coupled=True)
    assert [n + "_l0" for n in cell.state_dict()] == names
    with pytest.raises(RuntimeError, match="weight_ci_l0"):
        torch.nn.LSTM(3, 4).load_state_dict(lstm.state_dict())
