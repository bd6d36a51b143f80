"""Rungs 1 and 2: shapes, parameter counts, and values checkable by hand (all-ones weights)."""

import math

import pytest
import torch

import rnnlab


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def fill(module, **values):
    """Set every parameter to 1, then the named ones to the given value."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.fill_(values.get(name, 1.0))
    return module


def test_rnn_cell_golden():
    cell = fill(rnnlab.RNNCell(2, 2, dtype=torch.float64))
    h = cell(torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    # a = W_ih x + b_ih = 1 + 1 = 2 per unit; W_hh 0 + b_hh = 1  ->  tanh(3)
    torch.testing.assert_close(h, torch.full((1, 2), math.tanh(3.0), dtype=torch.float64))
    relu = fill(rnnlab.RNNCell(2, 2, nonlinearity="relu", dtype=torch.float64), bias_ih=-5.0)
    torch.testing.assert_close(relu(torch.tensor([[1.0, 0.0]], dtype=torch.float64)), torch.zeros(1, 2, dtype=torch.float64))


def test_lstm_cell_golden():
    cell = fill(rnnlab.LSTMCell(1, 1, dtype=torch.float64), bias_ih=0.0, bias_hh=0.0)
    h, c = cell(torch.ones(1, 1, dtype=torch.float64))
    # all pre-activations are 1: i = f = o = sig(1), g = tanh(1), c = i*g, h = o*tanh(c)
    c_want = sig(1) * math.tanh(1)
    assert c.item() == pytest.approx(c_want, abs=1e-15)
    assert h.item() == pytest.approx(sig(1) * math.tanh(c_want), abs=1e-15)


def test_lstm_peephole_golden():
    cell = fill(rnnlab.LSTMCell(1, 1, peephole=True, dtype=torch.float64), bias_ih=0.0, bias_hh=0.0)
    one = torch.ones(1, 1, dtype=torch.float64)
    h, c = cell(one, (torch.zeros(1, 1, dtype=torch.float64), one))  # h0 = 0, c0 = 1
    # i = f = sig(1 + 1*c0) = sig(2); g = tanh(1); c = f*1 + i*g; o = sig(1 + 1*c) sees the NEW c
    c_want = sig(2) + sig(2) * math.tanh(1)
    assert c.item() == pytest.approx(c_want, abs=1e-15)
    assert h.item() == pytest.approx(sig(1 + c_want) * math.tanh(c_want), abs=1e-15)


def test_lstm_coupled_golden():
    cell = fill(rnnlab.LSTMCell(1, 1, coupled=True, dtype=torch.float64), bias_ih=0.0, bias_hh=0.0)
    assert cell.weight_ih.shape == (3, 1)  # i | g | o: no forget-gate rows
    one = torch.ones(1, 1, dtype=torch.float64)
    (h, c), gates = cell(one, (torch.zeros(1, 1, dtype=torch.float64), 2 * one), record_gates=True)
    # f = 1 - i = 1 - sig(1); c = f*2 + i*tanh(1)
    assert gates["f"].item() == pytest.approx(1 - sig(1), abs=1e-15)
    assert c.item() == pytest.approx((1 - sig(1)) * 2 + sig(1) * math.tanh(1), abs=1e-15)


def test_lstm_layer_norm_golden():
    cell = fill(rnnlab.LSTMCell(1, 1, layer_norm=True, dtype=torch.float64), bias_ih=0.0, bias_hh=0.0, ln_bias_c=0.5)
    one = torch.ones(1, 1, dtype=torch.float64)
    (h, c), gates = cell(one, (one, 3 * one), record_gates=True)
    # W_ih x = (1,1,1,1): its layer norm is 0, likewise W_hh h -> every gate sees 0:
    # i = f = o = 0.5, g = 0, c = 0.5 * 3; LN of the single c value is 0, plus shift 0.5 -> h = 0.5 tanh(0.5)
    assert [gates[n].item() for n in "ifgo"] == pytest.approx([0.5, 0.5, 0.0, 0.5])
    assert c.item() == pytest.approx(1.5)
    assert h.item() == pytest.approx(0.5 * math.tanh(0.5))


def test_lstm_projection_golden():
    cell = fill(rnnlab.LSTMCell(1, 2, proj_size=1, dtype=torch.float64), bias_ih=0.0, bias_hh=0.0, weight_hr=0.5)
    h, c = cell(torch.ones(1, 1, dtype=torch.float64))
    c_want = sig(1) * math.tanh(1)
    assert h.shape == (1, 1) and c.shape == (1, 2)
    assert h.item() == pytest.approx(0.5 * 2 * sig(1) * math.tanh(c_want))  # W_hr sums two equal units


def test_gru_cell_golden():
    cell = fill(rnnlab.GRUCell(1, 1, dtype=torch.float64), bias_ih=0.0, bias_hh=0.0)
    one = torch.ones(1, 1, dtype=torch.float64)
    h, gates = cell(one, 2 * one, record_gates=True)
    # r = z = sig(1 + 2); n = tanh(1 + r * 2); h = (1 - z) n + z * 2
    r = sig(3)
    n = math.tanh(1 + r * 2)
    assert gates["r"].item() == pytest.approx(r) and gates["n"].item() == pytest.approx(n)
    assert h.item() == pytest.approx((1 - r) * n + r * 2)


def test_rnn_layer_two_steps_golden():
    layer = fill(rnnlab.RNN(1, 1, bias=False, dtype=torch.float64, backend="reference"))
    out, h = layer(torch.tensor([[[1.0]], [[2.0]]], dtype=torch.float64))
    h1 = math.tanh(1.0)
    h2 = math.tanh(2.0 + h1)
    assert out.flatten().tolist() == pytest.approx([h1, h2])
    assert h.item() == pytest.approx(h2)


@pytest.mark.parametrize("cls,kw,count", [
    # G*H*(I + R) + 2*G*H biases (+ projection P*H) (+ peepholes 3H) (+ LN 2*G*H + 2H)
    (rnnlab.LSTM, {}, 4 * 8 * (5 + 8) + 2 * 4 * 8),
    (rnnlab.LSTM, {"proj_size": 3}, 4 * 8 * (5 + 3) + 2 * 4 * 8 + 3 * 8),
    (rnnlab.LSTM, {"peephole": True}, 4 * 8 * (5 + 8) + 2 * 4 * 8 + 3 * 8),
    (rnnlab.LSTM, {"coupled": True}, 3 * 8 * (5 + 8) + 2 * 3 * 8),
    (rnnlab.LSTM, {"coupled": True, "peephole": True}, 3 * 8 * (5 + 8) + 2 * 3 * 8 + 2 * 8),
    (rnnlab.LSTM, {"layer_norm": True}, 4 * 8 * (5 + 8) + 2 * 4 * 8 + 2 * 4 * 8 + 2 * 8),
    (rnnlab.GRU, {}, 3 * 8 * (5 + 8) + 2 * 3 * 8),
    (rnnlab.GRU, {"layer_norm": True}, 3 * 8 * (5 + 8) + 2 * 3 * 8 + 2 * 3 * 8),
    (rnnlab.RNN, {}, 8 * (5 + 8) + 2 * 8),
])
def test_parameter_counts(cls, kw, count):
    assert sum(p.numel() for p in cls(5, 8, **kw).parameters()) == count


def test_parameter_counts_match_torch_for_plain_configs():
    for ours, ref in [(rnnlab.LSTM(5, 8, 3, bidirectional=True, proj_size=2), torch.nn.LSTM(5, 8, 3, bidirectional=True, proj_size=2)),
                      (rnnlab.GRU(5, 8, 2, bias=False), torch.nn.GRU(5, 8, 2, bias=False)),
                      (rnnlab.RNN(5, 8, 2, bidirectional=True), torch.nn.RNN(5, 8, 2, bidirectional=True))]:
        assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in ref.named_parameters()]


@pytest.mark.parametrize("kw", [{}, {"peephole": True, "layer_norm": True}, {"proj_size": 3}])
def test_output_shapes(kw):
    lstm = rnnlab.LSTM(5, 8, num_layers=3, bidirectional=True, batch_first=True, **kw)
    out, (h, c) = lstm(torch.randn(4, 6, 5))
    R = kw.get("proj_size", 8)
    assert out.shape == (4, 6, 2 * R) and h.shape == (6, 4, R) and c.shape == (6, 4, 8)
