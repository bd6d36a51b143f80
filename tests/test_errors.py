"""Rung 6: bad input raises its documented error, naming the module, what was expected and what came."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab


@pytest.mark.parametrize("make,exc,pattern", [
    (lambda: rnnlab.LSTM(3, 4, dropout=1.5), ValueError, r"LSTM: dropout must be a probability in \[0, 1\].*got 1.5"),
    (lambda: rnnlab.GRU(3, 4, dropout=-0.1), ValueError, r"GRU: dropout must be .*got -0.1"),
    (lambda: rnnlab.LSTM(3, 4, dropout="a"), ValueError, r"LSTM: dropout must be"),
    (lambda: rnnlab.LSTM(3, 4, peepholes=True), TypeError, r"LSTM: unknown option 'peepholes' \(did you mean 'peephole'\?\)"),
    (lambda: rnnlab.GRU(3, 4, peephole=True), TypeError, r"GRU: unknown option 'peephole'"),
    (lambda: rnnlab.GRU(3, 4, proj_size=2), ValueError, r"GRU: proj_size is only defined for the LSTM"),
    (lambda: rnnlab.RNN(3, 4, proj_size=2), ValueError, r"RNN: proj_size is only defined for the LSTM"),
    (lambda: rnnlab.LSTM(3, 4, proj_size=4), ValueError, r"LSTM: proj_size must be smaller than hidden_size=4, got 4"),
    (lambda: rnnlab.LSTM(3, 4, proj_size=-1), ValueError, r"LSTM: proj_size must be >= 0"),
    (lambda: rnnlab.LSTM(0, 4), ValueError, r"LSTM: input_size must be > 0, got 0"),
    (lambda: rnnlab.LSTM(3, 0), ValueError, r"LSTM: hidden_size must be > 0, got 0"),
    (lambda: rnnlab.LSTM(3.0, 4), TypeError, r"LSTM: input_size must be an int, got float"),
    (lambda: rnnlab.LSTM(3, 4, num_layers=0), ValueError, r"LSTM: num_layers must be an int >= 1, got 0"),
    (lambda: rnnlab.LSTM(3, 4, bias=1), TypeError, r"LSTM: bias must be True or False, got 1"),
    (lambda: rnnlab.LSTM(3, 4, batch_first="yes"), TypeError, r"LSTM: batch_first must be True or False"),
    (lambda: rnnlab.LSTM(3, 4, init="xavier"), ValueError, r"LSTM: unknown init 'xavier'; expected one of"),
    (lambda: rnnlab.RNN(3, 4, nonlinearity="sigmoid"), ValueError, r"RNN: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"),
    (lambda: rnnlab.RNNCell(3, 4, nonlinearity="gelu"), ValueError, r"RNNCell: nonlinearity must be"),
    (lambda: rnnlab.LSTMCell(3, 4, proj_size=9), ValueError, r"LSTMCell: proj_size must be smaller than hidden_size=4"),
    (lambda: rnnlab.GRUCell(3, 4, coupled=True), TypeError, r"GRUCell: unknown option 'coupled'"),
    (lambda: rnnlab.LSTMCell(3, 4, layernorm=True), TypeError, r"did you mean 'layer_norm'"),
    (lambda: rnnlab.LSTM(3, 4, layer_norm=True, backend="native"), ValueError, r"backend 'native' cannot serve.*layer_norm.*use backend='fused'"),
])
def test_construction_errors(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match=r"LSTM: dropout=0.3 is applied between layers only"):
        rnnlab.LSTM(3, 4, dropout=0.3)


LSTM = rnnlab.LSTM(3, 4, num_layers=2, batch_first=True)
GRU = rnnlab.GRU(3, 4)
X = torch.randn(2, 5, 3)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: LSTM(torch.randn(2, 5, 7)), ValueError, r"LSTM: expected input of shape \(B, T, I=3\), got \(2, 5, 7\); the last dimension must equal input_size=3"),
    (lambda: GRU(torch.randn(5, 2, 7)), ValueError, r"GRU: expected input of shape \(T, B, I=3\), got \(5, 2, 7\)"),
    (lambda: LSTM(torch.randn(5, 7)), ValueError, r"LSTM: expected input of shape unbatched \(T, I=3\), got \(5, 7\)"),
    (lambda: LSTM(torch.randn(2, 5, 3, 1)), ValueError, r"LSTM: expected input of shape \(B, T, I=3\) or unbatched \(T, I=3\), got \(2, 5, 3, 1\)"),
    (lambda: LSTM([[1.0]]), TypeError, r"LSTM: expected input to be a Tensor or a PackedSequence, got list"),
    (lambda: LSTM(X.double()), ValueError, r"LSTM: input dtype torch.float64 does not match the weights' torch.float32"),
    (lambda: LSTM(X, torch.zeros(2, 2, 4)), TypeError, r"LSTM: expected hx to be a tuple \(h0, c0\) or None, got Tensor"),
    (lambda: LSTM(X, (torch.zeros(2, 2, 4), torch.zeros(1, 2, 4))), ValueError, r"LSTM: expected c0 of shape \(L\*D=2, B=2, 4\).*got \(1, 2, 4\)"),
    (lambda: LSTM(X, (torch.zeros(2, 3, 4), torch.zeros(2, 2, 4))), ValueError, r"LSTM: expected h0 of shape \(L\*D=2, B=2, 4\)"),
    (lambda: LSTM(X, (torch.zeros(2, 2, 4).double(), torch.zeros(2, 2, 4))), ValueError, r"LSTM: h0 is torch.float64 on cpu but the input is torch.float32"),
    (lambda: GRU(torch.randn(5, 2, 3), torch.zeros(1, 2, 5)), ValueError, r"GRU: expected h0 of shape \(L\*D=1, B=2, 4\) .*got \(1, 2, 5\)"),
    (lambda: GRU(torch.randn(5, 3), torch.zeros(1, 2, 4)), ValueError, r"GRU: expected h0 of shape unbatched \(L\*D=1, 4\)"),
    (lambda: LSTM(X, lengths=[5, 0]), ValueError, r"LSTM: lengths must lie in \[1, T=5\].*got 0"),
    (lambda: LSTM(X, lengths=[5, 6]), ValueError, r"LSTM: lengths must lie in \[1, T=5\].*got 6"),
    (lambda: LSTM(X, lengths=[-1, 2]), ValueError, r"got -1"),
    (lambda: LSTM(X, lengths=torch.tensor([5.0, 2.0])), TypeError, r"LSTM: lengths must hold integers, got a torch.float32 tensor"),
    (lambda: LSTM(X, lengths=[5.0, 2.0]), TypeError, r"LSTM: lengths must be a 1-D integer tensor or a list of ints"),
    (lambda: LSTM(X, lengths="52"), TypeError, r"LSTM: lengths must be a 1-D integer tensor or a list of ints"),
    (lambda: LSTM(X, lengths=[5, 2, 3]), ValueError, r"LSTM: expected lengths of shape \(B=2,\), one per sequence, got \(3,\)"),
    (lambda: LSTM(torch.randn(5, 3), lengths=[5]), ValueError, r"LSTM: lengths= needs batched input"),
    (lambda: GRU(pack_padded_sequence(torch.randn(5, 2, 3), [5, 3]), lengths=[5, 3]), ValueError, r"GRU: lengths= cannot be combined with a PackedSequence"),
])
def test_forward_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda c: c(torch.randn(2, 5)), ValueError, r"LSTMCell: expected input of shape \(B, I=3\) or unbatched \(I=3,\), got \(2, 5\)"),
    (lambda c: c(torch.randn(2, 3), torch.zeros(2, 4)), TypeError, r"LSTMCell: expected hx to be a tuple \(h, c\)"),
    (lambda c: c(torch.randn(2, 3), (torch.zeros(2, 4), torch.zeros(3, 4))), ValueError, r"LSTMCell: expected c of shape \(B=2, 4\), got \(3, 4\)"),
    (lambda c: c(torch.randn(2, 3).double()), ValueError, r"LSTMCell: input dtype torch.float64 does not match"),
])
def test_cell_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(rnnlab.LSTMCell(3, 4))


def test_errors_are_one_line():
    with pytest.raises(ValueError) as info:
        LSTM(X, lengths=[5, 9])
    assert "\n" not in str(info.value)
