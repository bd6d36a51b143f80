"""Rungs 3 and 4 for what torch.nn does not have: every variant and combination.

- layer == a hand-written loop over the cell module (both directions, stacked);
- lengths= == running each sequence alone, unpadded;
- gradcheck in float64 of cells and layers, with lengths, bidirectional, stacked;
- recording never changes the numbers, and the recorded gates rebuild the states.
"""

import pytest
import torch
from torch.func import functional_call

import rnnlab
from helpers import ALL_VARIANTS, RNNLAB_LAYER, flat_state, variant_id

CELL = {"lstm": rnnlab.LSTMCell, "gru": rnnlab.GRUCell, "rnn": rnnlab.RNNCell}
IDS = [variant_id(f, kw) for f, kw in ALL_VARIANTS]


def make_layer(family, kw, I=3, H=4, layers=2, bidir=True, dtype=torch.float64, **extra):
    torch.manual_seed(0)
    layer = RNNLAB_LAYER[family](I, H, layers, bidirectional=bidir, dtype=dtype, **kw, **extra)
    with torch.no_grad():  # LN gains of exactly 1 and peepholes of torch's scale would hide mistakes
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


def cell_for(layer, family, kw, k_layer, d):
    """The cell module of one layer-direction, loaded with the layer's parameters."""
    suffix = "_reverse" if d else ""
    I = layer.input_size if k_layer == 0 else layer.num_directions * (layer.proj_size or layer.hidden_size)
    cell = CELL[family](I, layer.hidden_size, dtype=layer.weight_ih_l0.dtype, **kw)
    state = {name: getattr(layer, f"{name}_l{k_layer}{suffix}") for name in cell.state_dict()}
    cell.load_state_dict(state)
    return cell


def loop_over_cells(layer, family, kw, x):
    """Oracle: the stacked bidirectional network as a plain Python loop over cell modules. x (T, B, I)."""
    T = x.shape[0]
    finals = []
    inp = x
    for k in range(layer.num_layers):
        outs = []
        for d in range(layer.num_directions):
            cell = cell_for(layer, family, kw, k, d)
            state = None
            ys = [None] * T
            for t in (range(T) if d == 0 else reversed(range(T))):
                state = cell(inp[t], state)
                ys[t] = state[0] if family == "lstm" else state
            outs.append(torch.stack(ys))
            finals.append(state)
        inp = torch.cat(outs, dim=-1)
    return inp, finals


@pytest.mark.parametrize("family,kw", ALL_VARIANTS, ids=IDS)
def test_layer_equals_loop_over_cell(family, kw):
    layer = make_layer(family, kw, backend="reference")
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    out, st = layer(x)
    ref_out, finals = loop_over_cells(layer, family, kw, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    for j, parts in enumerate(zip(*[flat_state(s) for s in finals])):
        torch.testing.assert_close(flat_state(st)[j], torch.stack(parts), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("family,kw", ALL_VARIANTS, ids=IDS)
def test_lengths_equal_each_sequence_alone(family, kw):
    layer = make_layer(family, kw, batch_first=True)
    lengths = [5, 2, 4, 1]
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    out, st = layer(x, lengths=lengths)
    for b, n in enumerate(lengths):
        alone_out, alone_st = layer(x[b : b + 1, :n])
        torch.testing.assert_close(out[b, :n], alone_out[0], rtol=1e-10, atol=1e-10)
        assert torch.all(out[b, n:] == 0), "padded outputs must be exactly zero"
        for s, a in zip(flat_state(st), flat_state(alone_st)):
            torch.testing.assert_close(s[:, b], a[:, 0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("family,kw", ALL_VARIANTS, ids=IDS)
def test_cell_gradcheck(family, kw):
    torch.manual_seed(0)
    cell = CELL[family](2, 4, dtype=torch.float64, **kw)
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().add_(0.3 * torch.randn_like(p)).requires_grad_() for p in cell.parameters()]
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, kw.get("proj_size", 0) or 4, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)

    def f(x, h, c, *ps):
        hx = (h, c) if family == "lstm" else h
        return tuple(flat_state(functional_call(cell, dict(zip(names, ps)), (x, hx))))

    assert torch.autograd.gradcheck(f, (x, h, c, *params))


@pytest.mark.parametrize("family,kw", ALL_VARIANTS, ids=IDS)
def test_layer_gradcheck_bidirectional_stacked_with_lengths(family, kw):
    if kw.get("proj_size"):
        kw = {**kw, "proj_size": 1}  # must stay below H=2
    layer = make_layer(family, kw, I=2, H=2, batch_first=True)
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, kw.get("proj_size", 0) or 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)

    def f(x, h0, c0, *ps):
        hx = (h0, c0) if family == "lstm" else h0
        out, st = functional_call(layer, dict(zip(names, ps)), (x, hx), {"lengths": [3, 2]})
        return (out, *flat_state(st))

    assert torch.autograd.gradcheck(f, (x, h0, c0, *params))


@pytest.mark.parametrize("family,kw", ALL_VARIANTS, ids=IDS)
def test_recording_never_changes_the_numbers(family, kw):
    layer = make_layer(family, kw, dtype=torch.float32, backend="reference", batch_first=True)
    x = torch.randn(2, 6, 3)
    out, st = layer(x, lengths=[6, 4])
    out_r, st_r, trace = layer(x, lengths=[6, 4], record_gates=True, return_states=True)
    assert torch.equal(out, out_r)
    for a, b in zip(flat_state(st), flat_state(st_r)):
        assert torch.equal(a, b)
    assert set(trace.keys()) == {(0, 0), (0, 1), (1, 0), (1, 1)}


@pytest.mark.parametrize("family,kw", ALL_VARIANTS, ids=IDS)
def test_recorded_gates_rebuild_the_states(family, kw):
    """c_t = f*c_{t-1} + i*g and h_t = o*tanh(c_t) (GRU: h_t = (1-z)*n + z*h_{t-1}) from the recording."""
    layer = make_layer(family, kw, batch_first=True)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    out, st, trace = layer(x, record_gates=True, return_states=True)
    R = kw.get("proj_size", 0) or 4
    for (k, d), rec in trace.records.items():
        h = rec.states["h"]  # (B, T, R)
        assert h.shape == (2, 5, R)
        if k == layer.num_layers - 1:  # the top layer's recorded h is the output
            torch.testing.assert_close(h, out[..., d * R : (d + 1) * R])
        order = range(5) if d == 0 else reversed(range(5))
        prev = None
        for t in order:
            if family == "lstm":
                i, f, g, o = (rec.gates[n][:, t] for n in "ifgo")
                c = rec.states["c"][:, t]
                c_prev = torch.zeros_like(c) if prev is None else rec.states["c"][:, prev]
                torch.testing.assert_close(c, f * c_prev + i * g)
                if kw.get("coupled"):
                    torch.testing.assert_close(f, 1 - i)
                cell = cell_for(layer, family, kw, k, d)
                c_out = c
                if kw.get("layer_norm"):
                    c_out = torch.nn.functional.layer_norm(c, (4,), cell.ln_weight_c, cell.ln_bias_c)
                m = o * torch.tanh(c_out)
                want = m @ cell.weight_hr.T if kw.get("proj_size") else m
                torch.testing.assert_close(h[:, t], want)
            elif family == "gru":
                r, z, n = (rec.gates[q][:, t] for q in "rzn")
                h_prev = torch.zeros_like(h[:, t]) if prev is None else h[:, prev]
                torch.testing.assert_close(h[:, t], (1 - z) * n + z * h_prev)
                assert ((r > 0) & (r < 1)).all()
            else:
                assert rec.gates == {}
            prev = t


def test_gate_and_state_shapes_and_accessors():
    lstm = rnnlab.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, batch_first=True)
    out, (h, c), trace = lstm(torch.randn(5, 7, 3), record_gates=True, return_states=True)
    for key in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        for name in "ifgo":
            assert trace[key].gates[name].shape == (5, 7, 4)
        assert trace[key].states["h"].shape == (5, 7, 2)
        assert trace[key].states["c"].shape == (5, 7, 4)
    assert trace.gate("f", layer=1, direction=1) is trace[1, 1].gates["f"]
    torch.testing.assert_close(trace.state("c", 1, 0)[:, -1], c[2])  # last step of layer 1 forward = c_n
    torch.testing.assert_close(trace.state("c", 1, 1)[:, 0], c[3])  # reverse direction ends at t = 0
    only_gates = lstm(torch.randn(5, 7, 3), record_gates=True)[2]
    assert only_gates[0, 0].states == {}
    with pytest.raises(KeyError, match="return_states=True"):
        only_gates.state("c")
    with pytest.raises(KeyError, match="no record"):
        only_gates[2, 0]


def test_recording_unbatched_is_time_by_hidden():
    gru = rnnlab.GRU(3, 4)
    out, h, trace = gru(torch.randn(6, 3), record_gates=True, return_states=True)
    assert out.shape == (6, 4) and h.shape == (1, 4)
    assert trace[0, 0].gates["z"].shape == (6, 4)
    torch.testing.assert_close(trace[0, 0].states["h"], out)


def test_recording_with_lengths_zero_past_each_end():
    lstm = rnnlab.LSTM(3, 4, bidirectional=True, batch_first=True)
    out, _, trace = lstm(torch.randn(3, 5, 3), lengths=torch.tensor([5, 2, 3]), record_gates=True)
    assert torch.equal(trace.lengths, torch.tensor([5, 2, 3]))
    for d in (0, 1):
        f = trace[0, d].gates["f"]
        assert torch.all(f[1, 2:] == 0) and torch.all(f[2, 3:] == 0)
        assert torch.all(f[1, :2] > 0)
