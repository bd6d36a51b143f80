"""minGRU and minLSTM (cells/minrnn.py, kernels/scan.py): the ladder for the new families.

shapes and names; golden values by hand; the layer equals a loop over its cell and streaming step by step equals
the whole sequence; the scan backend equals the reference loop (outputs, states, recordings, gradients) in
float64 to 1e-10 for every option, with random lengths (hypothesis), both directions, stacking and h0, for both
scan methods (the CPU's "loop" and the log-space "log" one); gradcheck and double backward; segment_steps and
the log method's chunks change no number; float32 stays close to float64 over long sequences; bad options
raise errors that name the fix; every `rnnlab train` task trains a few steps with each cell.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab
from rnnlab.kernels import scan
from helpers import assert_close_dict, assert_user_error, grads, loss_of, run_cli

F64 = dict(rtol=1e-10, atol=1e-10)
LAYERS = {"mingru": rnnlab.MinGRU, "minlstm": rnnlab.MinLSTM}
CELLS = {"mingru": rnnlab.MinGRUCell, "minlstm": rnnlab.MinLSTMCell}
OPTIONS = [dict(log_space=ls, bias=b) for ls, b in itertools.product([True, False], [True, False])]
CASES = [(c, o) for c in LAYERS for o in OPTIONS]


def case_id(case) -> str:
    cell, o = case
    return f"{cell}-{'log' if o['log_space'] else 'plain'}{'' if o['bias'] else '-nobias'}"


@pytest.fixture(params=["fused", "loop", "log"])
def method(request, monkeypatch):
    """Every scan method on the CPU: the C pass, the loop of torch ops (where the C library is not there), the
    log-space one (what runs on a GPU)."""
    monkeypatch.setattr(scan, "method_for", lambda device: request.param)
    return request.param


def _run(layer, backend, x, h0=None, **kw):
    layer.backend = backend
    out, h, trace = layer(x, h0, record_gates=True, return_states=True, **kw)
    return out, h, trace


def _compare(layer, x, h0=None, **kw):
    """scan vs reference: outputs, final states, every recording and every gradient, to 1e-10."""
    inputs = [x] + ([h0] if h0 is not None else [])
    results = []
    for backend in ("reference", "scan"):
        out, h, trace = _run(layer, backend, x, h0, **kw)
        results.append((out, h, trace, grads(layer, inputs, loss_of(out, h))))
    (o1, h1, t1, g1), (o2, h2, t2, g2) = results
    torch.testing.assert_close(o2, o1, **F64)
    torch.testing.assert_close(h2, h1, **F64)
    assert t1.keys() == t2.keys() and t1.gate_names == t2.gate_names
    for key in t1.keys():
        assert_close_dict(t2[key].gates, t1[key].gates, **F64)
        assert_close_dict(t2[key].states, t1[key].states, **F64)
    assert_close_dict(g2, g1, **F64)


# ----- 1. shapes, names, parameter counts ------------------------------------------------------------------
@pytest.mark.parametrize("cell,G,gates", [("mingru", 2, ("z", "h~")), ("minlstm", 3, ("f", "i", "h~"))])
def test_parameters_are_the_input_projection_only(cell, G, gates):
    layer = LAYERS[cell](3, 5, num_layers=2, bidirectional=True)
    shapes = {n: tuple(p.shape) for n, p in layer.named_parameters()}
    assert shapes == {f"{role}_l{l}{sfx}": (G * 5, 3 if l == 0 else 10) if role == "weight_ih" else (G * 5,)
                      for l in range(2) for sfx in ("", "_reverse") for role in ("weight_ih", "bias_ih")}
    assert not any("weight_hh" in n for n in shapes)
    assert [n for n, _ in LAYERS[cell](3, 5, bias=False).named_parameters()] == ["weight_ih_l0"]
    out, h, trace = layer(torch.randn(2, 7, 3), record_gates=True, return_states=True)
    assert out.shape == (2, 7, 10)  # (T, B, D*H)
    assert h.shape == (4, 7, 5) and trace.gate_names == gates and set(trace[1, 1].states) == {"h"}
    for orth in (True, False):
        init = "orthogonal" if orth else "torch"
        assert LAYERS[cell](3, 5, init=init).weight_ih_l0.abs().sum() > 0
    assert "log_space=False" in repr(LAYERS[cell](3, 5, log_space=False))
    assert "log_space" not in repr(LAYERS[cell](3, 5))


# ----- 2. golden values by hand ----------------------------------------------------------------------------
@pytest.mark.parametrize("cell", LAYERS)
@pytest.mark.parametrize("log_space,expected", [(True, [0.75, 1.125, 1.3125]), (False, [0.5, 0.75, 0.875])])
def test_golden_values(cell, log_space, expected, method):
    """Zero weights, zero gate biases and candidate bias 1: every gate mixes half and half (minLSTM: f = i =
    sigmoid(0), normalised 0.5 each); h~ = g(1) = 1.5 (log_space) or 1, so h_t = h_{t-1} / 2 + h~ / 2."""
    layer = LAYERS[cell](1, 1, dtype=torch.float64, log_space=log_space, backend="scan")
    with torch.no_grad():
        layer.weight_ih_l0.zero_()
        layer.bias_ih_l0.zero_()
        layer.bias_ih_l0[-1] = 1.0
    x = torch.zeros(3, 1, 1, dtype=torch.float64)
    for backend in ("scan", "reference"):
        layer.backend = backend
        out, h = layer(x)
        torch.testing.assert_close(out[:, 0, 0], torch.tensor(expected, dtype=torch.float64), **F64)
        torch.testing.assert_close(h[0, 0, 0], torch.tensor(expected[-1], dtype=torch.float64), **F64)


def test_candidate_is_positive_and_continuous():
    from rnnlab.cells.minrnn import candidate, log_candidate
    from rnnlab.cells import CellConfig

    x = torch.linspace(-30, 30, 601, dtype=torch.float64)
    g = candidate(x, CellConfig("mingru", 1, 1))
    assert (g > 0).all()
    torch.testing.assert_close(log_candidate(x), g.log(), **F64)
    torch.testing.assert_close(candidate(torch.tensor([-1e-12, 0.0]), CellConfig("mingru", 1, 1)),
                               torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(candidate(x, CellConfig("mingru", 1, 1, log_space=False)), x)


# ----- 3. the layer is a loop over its cell; streaming equals the whole sequence -------------------------------
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_layer_equals_a_loop_over_its_cell(case):
    cell_name, o = case
    torch.manual_seed(0)
    layer = LAYERS[cell_name](3, 4, dtype=torch.float64, **o)
    cell = CELLS[cell_name](3, 4, dtype=torch.float64, **o)
    cell.load_state_dict({k[: -len("_l0")]: v for k, v in layer.state_dict().items()})
    x, h = torch.randn(6, 2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    out, h_n, trace = layer(x, h[None], record_gates=True)
    for t in range(6):
        h, gates = cell(x[t], h, record_gates=True)
        torch.testing.assert_close(out[t], h, **F64)
        for name, g in gates.items():
            torch.testing.assert_close(trace[0, 0].gates[name][:, t], g, **F64)
    torch.testing.assert_close(h_n[0], h, **F64)
    if cell_name == "minlstm":
        torch.testing.assert_close(trace[0, 0].gates["f"] + trace[0, 0].gates["i"],
                                   torch.ones(2, 6, 4, dtype=torch.float64), **F64)


@pytest.mark.parametrize("cell", LAYERS)
def test_step_by_step_equals_the_whole_sequence(cell, method):
    """Streaming / generation: one step (or a few) at a time, carrying h, gives the layer's outputs."""
    torch.manual_seed(1)
    layer = LAYERS[cell](3, 4, num_layers=2, dtype=torch.float64, backend="scan")
    x = torch.randn(9, 2, 3, dtype=torch.float64)
    whole, h_whole = layer(x)
    h, outs = None, []
    for piece in x.split([1, 1, 3, 1, 2, 1]):
        out, h = layer(piece, h)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs), whole, **F64)
    torch.testing.assert_close(h, h_whole, **F64)


@pytest.mark.parametrize("cell", LAYERS)
def test_charlm_generation_steps_equal_the_whole_text(cell):
    from rnnlab.models import CharLM, CharLMConfig
    from rnnlab.layers import RecurrentConfig

    torch.manual_seed(2)
    model = CharLM(CharLMConfig(vocab_size=7, embed=4, rnn=RecurrentConfig(cell=cell, hidden_size=6)))
    model.double().eval()
    ids = torch.randint(0, 7, (1, 12))
    whole, _ = model(ids)
    state, steps = None, []
    for t in range(12):
        logits, _, state = model(ids[:, t : t + 1], state=state, return_state=True)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole, **F64)
    assert len(list(model.generate(ids[0, :3], 5, temperature=0))) == 5


# ----- 5. the scan equals the reference loop -----------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_scan_equals_reference_stacked_bidirectional_with_h0(case, method):
    cell, o = case
    torch.manual_seed(3)
    layer = LAYERS[cell](3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype=torch.float64, **o)
    x = torch.randn(3, 8, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 3, 4, dtype=torch.float64, requires_grad=True)
    _compare(layer, x, h0)
    _compare(layer, x, h0, lengths=[8, 5, 1])


@st.composite
def length_cases(draw):
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 9))
    return dict(B=B, T=T, lengths=draw(st.lists(st.integers(1, T), min_size=B, max_size=B)),
                cell=draw(st.sampled_from(sorted(LAYERS))), log_space=draw(st.booleans()),
                layers=draw(st.integers(1, 2)), bidir=draw(st.booleans()), h0=draw(st.booleans()),
                method=draw(st.sampled_from(["fused", "loop", "log"])), seed=draw(st.integers(0, 2**16)))


@settings(max_examples=30, deadline=None)
@given(length_cases())
def test_scan_equals_reference_on_random_lengths(case):
    torch.manual_seed(case["seed"])
    layer = LAYERS[case["cell"]](2, 3, case["layers"], bidirectional=case["bidir"], log_space=case["log_space"],
                                 dtype=torch.float64)
    B, T, D = case["B"], case["T"], 2 if case["bidir"] else 1
    x = torch.randn(T, B, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(case["layers"] * D, B, 3, dtype=torch.float64, requires_grad=True) if case["h0"] else None
    real = scan.method_for
    scan.method_for = lambda device: case["method"]
    try:
        _compare(layer, x, h0, lengths=torch.tensor(case["lengths"]))
    finally:
        scan.method_for = real


@pytest.mark.parametrize("cell", LAYERS)
def test_padding_does_not_leak_and_packed_sequences_equal_lengths(cell, method):
    """What lies past a sequence's length changes nothing: not its outputs, its state or any gradient."""
    torch.manual_seed(4)
    layer = LAYERS[cell](2, 3, bidirectional=True, dtype=torch.float64, backend="scan")
    x = torch.randn(6, 3, 2, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    noisy = x.clone()
    for b, n in enumerate(lengths):
        noisy[n:, b] = 1e3 * torch.randn(6 - n, 2, dtype=torch.float64)
    out_a, h_a = layer(x, lengths=lengths)
    out_b, h_b = layer(noisy, lengths=lengths)
    torch.testing.assert_close(out_b, out_a, **F64)
    torch.testing.assert_close(h_b, h_a, **F64)
    out_p, h_p = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))
    torch.testing.assert_close(pad_packed_sequence(out_p, total_length=6)[0], out_a, **F64)
    torch.testing.assert_close(h_p, h_a, **F64)


# ----- gradcheck, double backward --------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gradcheck(case, method):
    cell, o = case
    torch.manual_seed(5)
    layer = LAYERS[cell](2, 2, bidirectional=True, dtype=torch.float64, backend="scan", **o)
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 2, dtype=torch.float64, requires_grad=True)

    def f(x, h0, *params):
        out, h = torch.func.functional_call(layer, dict(zip(names, params)), (x, h0), {"lengths": [4, 3]})
        return out, h

    # batched gradients too (a vmap over backward: what jacobians with vectorize=True and is_grads_batched do)
    assert torch.autograd.gradcheck(f, (x, h0, *[p.detach().requires_grad_() for p in layer.parameters()]),
                                    check_batched_grad=True)


@pytest.mark.parametrize("T", [1, 2, 5, 64, 65, 101])
def test_the_blocked_recurrence_equals_the_plain_loop(T, monkeypatch):
    """_solve's two levels (blocks of ~sqrt(T) steps, padded at the end) give the plain loop's values and gradients."""
    torch.manual_seed(T)
    a = torch.rand(T, 2, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(T, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    results = []
    for blocked_from in (10**9, 2):
        monkeypatch.setattr(scan, "BLOCKED_FROM", blocked_from)
        y = scan.linear_recurrence(a, b, h0)
        results.append((y, *torch.autograd.grad((y * y.detach().cos()).sum(), [a, b, h0])))
    for plain, blocked in zip(*results):
        torch.testing.assert_close(blocked, plain, **F64)
    monkeypatch.setattr(scan, "BLOCKED_UP_TO", 0)  # large steps: the plain loop whatever T
    torch.testing.assert_close(scan.linear_recurrence(a, b, h0), results[0][0], **F64)


@pytest.mark.parametrize("blocked_from", [2, 10**9])
def test_the_recurrence_has_double_backward(blocked_from, monkeypatch):
    monkeypatch.setattr(scan, "BLOCKED_FROM", blocked_from)
    torch.manual_seed(6)
    a = torch.rand(5, 2, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(scan.linear_recurrence, (a, b, h0), check_batched_grad=True)
    assert torch.autograd.gradgradcheck(scan.linear_recurrence, (a, b, h0))
    h0_row = torch.randn(3, dtype=torch.float64, requires_grad=True)  # broadcast over the batch
    assert torch.autograd.gradcheck(scan.linear_recurrence, (a, b, h0_row))


needs_c = pytest.mark.skipif(not rnnlab.kernels.fused.compiled.status()[0], reason="no compiled loops here")


@needs_c
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_fused_pass_has_double_backward(case):
    """The C pass (bias, gates, recurrence) from the pre-activations: gradcheck, and gradgradcheck through its
    recomputed double backward."""
    cell, o = case
    cfg = LAYERS[cell](2, 3, **o).cell_config
    torch.manual_seed(7)
    G = 3 if cell == "minlstm" else 2
    k = torch.randn(5, 2, G * 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(G * 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert scan.fused_serves(k, h0)
    f = lambda k, bias, h0: scan._Fused.apply(k, bias, h0, cfg)  # noqa: E731
    torch.testing.assert_close(f(k, bias, h0), scan._loop_outputs(k + bias, h0, cfg), **F64)
    assert torch.autograd.gradcheck(f, (k, bias, h0), check_batched_grad=True)
    assert torch.autograd.gradgradcheck(f, (k, bias, h0))


@needs_c
@pytest.mark.parametrize("cell", LAYERS)
def test_the_fused_pass_equals_the_loop_in_float32_across_unit_blocks(cell, monkeypatch):
    """H = 300: one full block of 256 units and a tail of 44 per row, two threads' shares; the C pass against
    the loop method's torch ops, outputs and every gradient."""
    torch.manual_seed(8)
    layer = LAYERS[cell](7, 300, backend="scan")
    x = torch.randn(40, 3, 7, requires_grad=True)
    results = []
    for m in ("fused", "loop"):
        monkeypatch.setattr(scan, "method_for", lambda device, m=m: m)
        out, h = layer(x)
        results.append((out, h, grads(layer, [x], loss_of(out, h))))
    (o1, h1, g1), (o2, h2, g2) = results
    torch.testing.assert_close(o1, o2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h1, h2, rtol=1e-5, atol=1e-6)
    assert_close_dict(g1, g2, rtol=1e-4, atol=1e-5)


def test_minlstm_stays_finite_where_both_gates_underflow(method):
    """f' = f / (f + i) with f and i both ~e^-100: 0/0 and an infinite gradient if formed that way (a minLSTM on
    mnist-rows at lr 3e-3 hit it at step 59); every method gives the float64 answer, finite, in float32."""
    torch.manual_seed(9)
    layer = rnnlab.MinLSTM(3, 4, backend="scan")
    with torch.no_grad():
        layer.weight_ih_l0.mul_(60.0)  # pre-activations of tens to hundreds
    x = torch.randn(12, 2, 3, requires_grad=True)
    out, h = layer(x)
    g = torch.autograd.grad(loss_of(out, h), [x, *layer.parameters()])
    assert torch.isfinite(out).all() and all(torch.isfinite(t).all() for t in g)
    ref = rnnlab.MinLSTM(3, 4, backend="reference", dtype=torch.float64)
    ref.load_state_dict({k: v.double() for k, v in layer.state_dict().items()})
    out64, _ = ref(x.detach().double())
    torch.testing.assert_close(out.double(), out64, rtol=1e-4, atol=1e-4)


# ----- chunks: segment_steps and the log method's chunks change no number -----------------------------------------
@pytest.mark.parametrize("cell", LAYERS)
def test_segment_steps_equal_one_pass(cell, method):
    torch.manual_seed(7)
    layer = LAYERS[cell](2, 3, num_layers=2, bidirectional=True, dtype=torch.float64, backend="scan")
    x = torch.randn(11, 3, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([11, 4, 7])
    out, h = layer(x, lengths=lengths)
    g = grads(layer, [x], loss_of(out, h))
    layer.segment_steps = 3
    out_s, h_s = layer(x, lengths=lengths)
    torch.testing.assert_close(out_s, out, **F64)
    torch.testing.assert_close(h_s, h, **F64)
    assert_close_dict(grads(layer, [x], loss_of(out_s, h_s)), g, **F64)


@pytest.mark.parametrize("cell", LAYERS)
@pytest.mark.parametrize("log_space", [True, False])
def test_log_chunks_equal_one_scan(cell, log_space, monkeypatch):
    monkeypatch.setattr(scan, "method_for", lambda device: "log")
    torch.manual_seed(8)
    layer = LAYERS[cell](2, 3, dtype=torch.float64, log_space=log_space, backend="scan")
    x = torch.randn(20, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 2, 3, dtype=torch.float64)
    out, h = layer(x, h0)
    g = grads(layer, [x], loss_of(out, h))
    monkeypatch.setattr(scan, "LOG_CHUNK", 3)
    out_c, h_c = layer(x, h0)
    torch.testing.assert_close(out_c, out, **F64)
    torch.testing.assert_close(h_c, h, **F64)
    assert_close_dict(grads(layer, [x], loss_of(out_c, h_c)), g, **F64)


@pytest.mark.parametrize("cell", LAYERS)
@pytest.mark.parametrize("log_space", [True, False])
def test_float32_stays_close_to_float64_over_long_sequences(cell, log_space, method):
    """T = 3,000 in float32 against float64, relative to the outputs' scale: the loop method rounds as the
    sequential loop does; the log method's error grows with the steps scanned at once, so it scans LOG_CHUNK
    (256) at a time (measured 2e-5 to 6e-5 here; a single scan of 100,000 steps measured 1e-2)."""
    torch.manual_seed(9)
    layer = LAYERS[cell](2, 4, log_space=log_space, backend="scan")
    x = 2 * torch.randn(3000, 2, 2)
    with torch.no_grad():
        out32, _ = layer(x)
        out64, _ = layer.double()(x.double())
    scale = out64.abs().amax()
    assert ((out32.double() - out64).abs().amax() / scale).item() < (1e-4 if method == "log" else 1e-5)


# ----- 6. errors that name the fix ---------------------------------------------------------------------------
@pytest.mark.parametrize("cell", LAYERS)
def test_bad_options_raise_errors_naming_the_fix(cell):
    cls = LAYERS[cell]
    with pytest.raises(ValueError, match=r"backend 'native' cannot serve this configuration: .* use backend='scan'"):
        cls(2, 3, backend="native")
    with pytest.raises(ValueError, match=r"backend 'fused' cannot serve .* use backend='scan'"):
        cls(2, 3, backend="fused")
    with pytest.raises(TypeError, match="unknown"):
        cls(2, 3, layer_norm=True)
    with pytest.raises(TypeError, match="unknown"):
        cls(2, 3, proj_size=1)
    with pytest.raises(TypeError, match="log_space must be True or False"):
        cls(2, 3, log_space="yes")
    with pytest.raises(ValueError, match="layer_norm is not defined for the"):
        rnnlab.RecurrentConfig(cell=cell, layer_norm=True).check()
    with pytest.raises(ValueError, match="peephole is only defined for the LSTM"):
        rnnlab.RecurrentConfig(cell=cell, peephole=True).check()
    with pytest.raises(ValueError, match="log_space off .* only defined for minGRU/minLSTM"):
        rnnlab.RecurrentConfig(cell="gru", log_space=False).check()
    with pytest.raises(ValueError, match="input_dropout, weight_drop is not available for the"):
        rnnlab.RecurrentConfig(cell=cell, input_dropout=0.1, weight_drop=0.2).check()
    with pytest.raises(ValueError, match="expected h0 of shape"):
        cls(2, 3)(torch.randn(4, 1, 2), torch.randn(1, 2, 3))


def test_auto_picks_the_scan_and_the_report_lists_it():
    assert rnnlab.MinGRU(2, 3).backend_for().name == "scan"
    assert rnnlab.MinLSTM(2, 3).backend_for(record_gates=True, grad=False).name == "scan"
    assert rnnlab.GRU(2, 3).backend_for().name != "scan"
    report = rnnlab.backend_report()
    assert "minGRU: auto -> scan" in report and "minLSTM plain: auto -> scan" in report


def test_recurrent_config_builds_and_describes_them():
    cfg = rnnlab.RecurrentConfig(cell="minlstm", hidden_size=6, num_layers=2, bidirectional=True, log_space=False)
    layer = cfg.build(3, batch_first=True)
    assert isinstance(layer, rnnlab.MinLSTM) and layer.batch_first and not layer.log_space
    assert cfg.describe() == "2 x biminLSTM(plain) 6" and cfg.output_size == 12
    assert rnnlab.RecurrentConfig(cell="mingru", hidden_size=4).describe() == "1 x minGRU 4"


# ----- every task trains a few steps with each cell ------------------------------------------------------------
STEPS = ["--max-steps", "2", "--eval-every", "2", "--warmup-steps", "1", "--quiet", "--threads", "1", "--hidden", "6"]


def _task_args(task, tmp_path):
    if task == "charlm":
        from charlm_helpers import write_tiny

        return ["--data", write_tiny(tmp_path), "--batch", "2", "--seq-len", "8", "--embed", "4", "--eval-chars",
                "64", "--val-fraction", "0.1", "--sample-length", "8"]
    if task == "classify":
        rows = [f"{'good fine' if i % 2 else 'bad awful'} film,{'pos' if i % 2 else 'neg'}" for i in range(12)]
        (tmp_path / "t.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
        return ["--data", tmp_path / "t.csv", "--min-count", "1", "--embed", "4", "--bidirectional"]
    if task == "forecast":
        lines = ["date,value"] + [f"2000-{1 + i // 28:02d}-{1 + i % 28:02d},{10 + math.sin(i / 2):.4f}"
                                  for i in range(60)]
        (tmp_path / "s.csv").write_text("\n".join(lines))
        return ["--data", tmp_path / "s.csv", "--season", "12", "--horizon", "3", "--lookback", "6",
                "--test-size", "6"]
    if task == "recognize":
        return ["--val-size", "2", "--batch", "2", "--channels", "2", "--embed", "4"]
    pytest.importorskip("PIL", reason="images need Pillow (pip install rnnlab[datasets])")
    pytest.importorskip("sacrebleu", reason="BLEU needs sacrebleu")
    pytest.importorskip("rapidfuzz", reason="WER needs rapidfuzz")
    from test_caption_cli import write_shapes

    return ["--data", write_shapes(tmp_path / "shapes"), "--val-fraction", "0.34", "--batch", "2", "--channels",
            "2", "--features", "8", "--embed", "4"]


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("task", ["charlm", "classify", "forecast", "recognize", "caption"])
def test_every_task_trains_with_the_cell(tmp_path, capsys, monkeypatch, task, cell):
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    code, out, err = run_cli(capsys, "train", task, *_task_args(task, tmp_path), *STEPS, "--cell", cell,
                             "--out", tmp_path / "run")
    assert code == 0, err
    assert "after 2 steps" in out
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()


def test_a_min_cell_option_on_the_command_line_names_the_flag(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train", "classify", "--cell", "mingru", "--layer-norm", "--quiet")
    assert_user_error(code, err, "--layer-norm is not defined for the mingru cell")
    code, _, err = run_cli(capsys, "train", "classify", "--cell", "gru", "--no-log-space", "--quiet")
    assert_user_error(code, err, "--log-space off")
    code, _, err = run_cli(capsys, "train", "classify", "--cell", "minlstm", "--zoneout", "0.1", "--quiet")
    assert_user_error(code, err, "--zoneout is not available for the minlstm cell")


# ----- torch.compile and torch.export: the fused pass as registered operators ---------------------------------
@needs_c
@pytest.mark.parametrize("cell", LAYERS)
def test_compile_fullgraph_and_export_at_unseen_lengths(cell, tmp_path):
    torch.manual_seed(11)
    layer = LAYERS[cell](3, 4, num_layers=2, bidirectional=True)
    whole = torch.compile(layer, fullgraph=True, dynamic=True)
    padded = torch.compile(layer, dynamic=False)  # lengths=: graph breaks at the layer checks; static shapes
    for T, compiled, lengths in ((5, whole, None), (8, whole, None), (7, padded, [7, 5])):
        x = torch.randn(T, 2, 3, requires_grad=True)
        (y1, h1), (y2, h2) = compiled(x, lengths=lengths), layer(x, lengths=lengths)
        torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(h1, h2, rtol=1e-5, atol=1e-6)
        g1 = torch.autograd.grad(loss_of(y1, h1), [x, *layer.parameters()])
        g2 = torch.autograd.grad(loss_of(y2, h2), [x, *layer.parameters()])
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    rnnlab.export(layer, (torch.randn(5, 2, 3),), tmp_path / "m.pt2", format="pt2")
    program = torch.export.load(tmp_path / "m.pt2").module()
    for T in (2, 9, 17):  # none of them the example's 5
        x = torch.randn(T, 2, 3)
        (y1, h1), (y2, h2) = program(x), layer(x)
        torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(h1, h2, rtol=1e-5, atol=1e-6)


@needs_c
def test_the_scan_operators_pass_opcheck():
    k, bias, h0 = torch.randn(6, 2, 3 * 4), torch.randn(3 * 4), torch.randn(2, 4)
    torch.library.opcheck(scan.minrec_forward, (k, bias.requires_grad_(), h0, True, True))
    y = scan.minrec_forward(k, bias.detach(), h0, True, True)
    torch.library.opcheck(scan.minrec_backward, (k, bias.detach(), h0, y, torch.randn_like(y), True, True))
