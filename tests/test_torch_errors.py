"""rnnlab raises what torch.nn raises for the same mistake (issue 13): shape mismatches are RuntimeError (an
rnnlab.InputShapeError, also a ValueError) whose message starts with torch's own words; bad arguments are
ValueError; a batch of no sequences runs as in torch.nn."""

from __future__ import annotations

import pytest
import torch

import rnnlab

X = torch.randn(5, 3, 8)
CASES = {
    "input size": (lambda m: m(torch.randn(5, 3, 5)), "input.size(-1) must be equal to input_size. Expected 8, got 5"),
    "h0 batch": (lambda m: m(X, _state(m, 1, 4, 16)), "size (1, 3, 16), got [1, 4, 16]"),
    "h0 layers": (lambda m: m(X, _state(m, 2, 3, 16)), "size (1, 3, 16), got [2, 3, 16]"),
    "h0 width": (lambda m: m(X, _state(m, 1, 3, 15)), "size (1, 3, 16), got [1, 3, 15]"),
}


def _state(m, L, B, H):
    h = torch.zeros(L, B, H)
    return (h, torch.zeros(L, B, H)) if isinstance(m, (torch.nn.LSTM, rnnlab.LSTM)) else h


@pytest.mark.parametrize("family", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("case", list(CASES))
def test_shape_mistakes_raise_runtime_error_as_torch_nn_does(family, case):
    call, words = CASES[case]
    with pytest.raises(RuntimeError):
        call(getattr(torch.nn, family)(8, 16))
    with pytest.raises(RuntimeError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")) as info:
        call(getattr(rnnlab, family)(8, 16))
    assert isinstance(info.value, ValueError) and isinstance(info.value, rnnlab.InputShapeError)
    assert f"{family}: expected" in str(info.value)  # then rnnlab's who / expected / got


@pytest.mark.parametrize("family", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cell_shape_mistakes_raise_runtime_error_as_torch_nn_does(family):
    state = lambda B, H: (torch.zeros(B, H), torch.zeros(B, H)) if family == "LSTMCell" else torch.zeros(B, H)  # noqa
    for call, words in [(lambda c: c(torch.randn(3, 5)), "input has inconsistent input_size: got 5 expected 8"),
                        (lambda c: c(torch.randn(3, 8), state(4, 16)), "Input batch size 3 doesn't match hidden0 batch size 4"),
                        (lambda c: c(torch.randn(3, 8), state(3, 15)), "hidden0 has inconsistent hidden_size: got 15, expected 16")]:
        with pytest.raises(RuntimeError):
            call(getattr(torch.nn, family)(8, 16))
        with pytest.raises(RuntimeError, match=words):
            call(getattr(rnnlab, family)(8, 16))


@pytest.mark.parametrize("make", [lambda nn: nn.RNN(8, 16, nonlinearity="foo"), lambda nn: nn.LSTM(8, 16, dropout=2),
                                  lambda nn: nn.LSTM(8, 16, num_layers=0), lambda nn: nn.LSTM(8, 0),
                                  lambda nn: nn.GRU(8, 16, proj_size=4),
                                  lambda nn: nn.LSTM(8, 16)(torch.randn(5, 3, 3, 8))],
                         ids=["nonlinearity", "dropout", "num_layers", "hidden_size", "proj_size on GRU", "4-D input"])
def test_argument_mistakes_raise_value_error_as_torch_nn_does(make):
    with pytest.raises(ValueError):
        make(torch.nn)
    with pytest.raises(ValueError):
        make(rnnlab)


@pytest.mark.parametrize("family,kw", [("LSTM", {}), ("LSTM", dict(peephole=True, proj_size=4)), ("GRU", {}),
                                       ("RNN", dict(layer_norm=True))])
def test_a_batch_of_no_sequences_runs_as_in_torch_nn(family, kw):
    layer = getattr(rnnlab, family)(8, 16, num_layers=2, bidirectional=True, **kw)
    out, state = layer(torch.randn(5, 0, 8, requires_grad=True))
    R = kw.get("proj_size") or 16
    assert out.shape == (5, 0, 2 * R)
    h = state[0] if family == "LSTM" else state
    assert h.shape == (4, 0, R)
    out.sum().backward()  # and a backward through it works
