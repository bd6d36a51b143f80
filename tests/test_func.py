"""torch.func and gradcheck on rnnlab layers (issue 13): per-sample gradients with vmap(grad) equal a loop of
single-sample gradients and the reference backend's autograd (fused, reference and scan backends; {LSTM, GRU, RNN} x
{plain, each variant, all variants}); gradcheck with batched gradients and gradgradcheck
pass on the fused backend's registered operators, in both of its loops."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, grad, vmap

import rnnlab
from rnnlab.kernels.fused import compiled

CASES = [("LSTM", dict(peephole=True, coupled=True, layer_norm=True, proj_size=2)), ("LSTM", {}),
         ("GRU", dict(layer_norm=True)), ("RNN", {})]
EACH = [("LSTM", dict(peephole=True)), ("LSTM", dict(coupled=True)), ("LSTM", dict(proj_size=2)), ("GRU", {}),
        ("RNN", dict(layer_norm=True))]  # with CASES: {LSTM, GRU, RNN} x {plain, each variant, all variants}


def _layer(family, kw, backend):
    torch.manual_seed(0)
    return getattr(rnnlab, family)(3, 4, backend=backend, dtype=torch.float64, **kw)


PER_SAMPLE = [(b, f, kw) for b in ("fused", "reference") for f, kw in CASES + EACH] + [
    ("scan", "MinGRU", {}), ("scan", "MinLSTM", dict(log_space=False))]


@pytest.mark.parametrize("backend,family,kw", PER_SAMPLE, ids=[f"{b}-{f}-{'+'.join(k) or 'plain'}" for b, f, k in PER_SAMPLE])
def test_per_sample_gradients_with_vmap_equal_a_loop_and_autograd(family, kw, backend):
    layer = _layer(family, kw, backend)
    params = {k: v.detach() for k, v in layer.named_parameters()}
    x = torch.randn(4, 3, 3, dtype=torch.float64)  # (T, B, I); vmap over B

    def loss(p, xb):  # one sequence (T, I) as a batch of one
        return functional_call(layer, p, (xb.unsqueeze(1),))[0].pow(2).sum()

    batched = vmap(grad(loss), in_dims=(None, 1))(params, x)
    oracle = _layer(family, kw, "reference")
    for b in range(x.shape[1]):
        single = grad(loss)(params, x[:, b])
        ref = torch.autograd.grad(oracle(x[:, b : b + 1])[0].pow(2).sum(), list(oracle.parameters()))
        for (name, g), r in zip(single.items(), ref):
            torch.testing.assert_close(batched[name][b], g, rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("family,kw,torch_ops", [(*CASES[0], False), (*CASES[2], True), (*CASES[3], False)],
                         ids=["lstm-all-compiled-loop", "gru-ln-torch-op-loop", "rnn"])  # both loops, few gradchecks
def test_fused_gradcheck_with_batched_grads_and_gradgradcheck(family, kw, torch_ops):
    layer = _layer(family, kw, "fused")
    x = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 2])

    def f(v):
        out, state = layer(v, lengths=lengths)
        return out, state[0] if family == "LSTM" else state

    with compiled.disabled() if torch_ops else torch.enable_grad():
        assert torch.autograd.gradcheck(f, (x,), check_batched_grad=True)
        assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("backend,family", [("fused", "GRU"), ("scan", "MinLSTM")])
def test_jacrev_equals_the_reference(backend, family):
    fused, ref = _layer(family, {}, backend), _layer(family, {}, "reference")
    x = torch.randn(3, 2, 3, dtype=torch.float64)
    jf = torch.func.jacrev(lambda v: fused(v)[0])(x)
    jr = torch.func.jacrev(lambda v: ref(v)[0])(x)
    torch.testing.assert_close(jf, jr, rtol=1e-10, atol=1e-10)
