"""Deploying rnnlab layers (issue 13): torch.export with a dynamic time dimension and batch runs at lengths the
example did not have; torch.jit.trace either works at another length (native) or raises naming the alternative;
rnnlab.export writes ONNX (onnxruntime equals rnnlab) and PT2 files with a model card."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.export import Dim

import rnnlab

CASES = [("LSTM", dict(peephole=True, coupled=True, layer_norm=True, proj_size=2)), ("LSTM", {}),
         ("GRU", dict(layer_norm=True)), ("RNN", {})]
LENGTHS = [(3, 2), (9, 4), (13, 3)]  # none is the example's (5, 2)


class Forward(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


def _layer(family, kw, **more):
    torch.manual_seed(0)
    return getattr(rnnlab, family)(3, 4, num_layers=2, bidirectional=True, **kw, **more).eval()


@pytest.mark.parametrize("family,kw", CASES, ids=["lstm-all", "lstm", "gru-ln", "rnn"])
def test_torch_export_with_dynamic_length_and_batch_runs_at_other_lengths(family, kw):
    layer = _layer(family, kw)
    program = torch.export.export(Forward(layer), (torch.randn(5, 2, 3),),
                                  dynamic_shapes=({0: Dim("T", min=2), 1: Dim("B", min=2)},))
    for T, B in LENGTHS:
        x = torch.randn(T, B, 3)
        got, want = program.module()(x), layer(x)
        torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
        assert got[0].shape[0] == T


class WithLengths(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, lengths):
        return self.layer(x, lengths=lengths)


PADDED = [(3, [3, 1]), (9, [4, 9, 2, 7]), (13, [1, 5, 13])]  # (T, lengths): none is the example's (5, [5, 3, 2])


def _assert_same(got, want):
    for g, w in zip(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(want)):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


EACH = [("LSTM", dict(peephole=True)), ("LSTM", dict(coupled=True)), ("LSTM", dict(layer_norm=True)),
        ("LSTM", dict(proj_size=2)), ("GRU", {}), ("RNN", dict(layer_norm=True)), ("MinLSTM", {})]


class Each(nn.Module):
    """One layer per single variant (with CASES: {LSTM, GRU, RNN} x {plain, each variant, all variants}), one export."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList([getattr(rnnlab, f)(3, 4, **kw).eval() for f, kw in EACH])

    def forward(self, x):
        return torch.cat([layer(x)[0] for layer in self.layers], dim=-1)


def test_torch_export_of_each_variant_runs_at_other_lengths():
    model = Each()
    program = torch.export.export(model, (torch.randn(5, 2, 3),),
                                  dynamic_shapes=({0: Dim("T", min=2), 1: Dim("B", min=2)},))
    for T, B in LENGTHS:
        x = torch.randn(T, B, 3)
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family,kw", CASES + [("MinGRU", {})], ids=["lstm-all", "lstm", "gru-ln", "rnn", "mingru"])
def test_torch_export_with_lengths_runs_at_other_lengths_and_batches(family, kw):
    """lengths= is an input of the program (dynamic B): the fused / scan operator takes it as a tensor."""
    layer = _layer(family, kw)
    B = Dim("B", min=2)
    program = torch.export.export(WithLengths(layer), (torch.randn(5, 3, 3), torch.tensor([5, 3, 2])),
                                  dynamic_shapes=({0: Dim("T", min=2), 1: B}, {0: B}))
    for T, lengths in PADDED:
        x, lengths = torch.randn(T, len(lengths), 3), torch.tensor(lengths)
        got = program.module()(x, lengths)
        _assert_same(got, layer(x, lengths=lengths))
        b = int(lengths.argmin())
        assert got[0].shape[0] == T and (got[0][lengths[b]:, b] == 0).all()  # zeros at padded steps, as eager


def test_torch_export_program_checks_lengths_when_it_runs():
    layer = _layer("GRU", {})
    B = Dim("B", min=2)
    program = torch.export.export(WithLengths(layer), (torch.randn(5, 3, 3), torch.tensor([5, 3, 2])),
                                  dynamic_shapes=({0: Dim("T", min=2), 1: B}, {0: B}))
    with pytest.raises(RuntimeError, match=r"lengths must lie in \[1, T\]"):
        program.module()(torch.randn(4, 2, 3), torch.tensor([5, 1]))


@pytest.mark.parametrize("backend,lengths,match", [("native", True, "lengths="), ("native", False, "dynamic time"),
                                                    ("reference", True, "Python loop")])
def test_torch_export_refuses_what_it_cannot_capture_naming_the_alternative(backend, lengths, match):
    """native: export unrolls torch's kernels over the example's steps and cannot size a packed sequence; reference:
    a Python loop over a dynamic T. Each error names backend='auto'."""
    layer = rnnlab.LSTM(3, 4, backend=backend).eval()
    T, B = Dim("T", min=2), Dim("B", min=2)
    model, args, shapes = ((WithLengths(layer), (torch.randn(5, 3, 3), torch.tensor([5, 3, 2])), ({0: T, 1: B}, {0: B}))
                           if lengths else (Forward(layer), (torch.randn(5, 3, 3),), ({0: T, 1: B},)))
    with pytest.raises(RuntimeError, match=f"{match}.*backend='auto'"):
        torch.export.export(model, args, dynamic_shapes=shapes)


@pytest.mark.parametrize("family,backend", [("GRU", "reference"), ("GRU", "fused"), ("MinGRU", "scan")])
def test_jit_trace_of_a_python_time_loop_raises_naming_torch_export(family, backend):
    layer = Forward(getattr(rnnlab, family)(3, 4, backend=backend))
    with pytest.raises(RuntimeError, match="torch.export"):
        torch.jit.trace(layer, torch.randn(5, 2, 3), check_trace=False)


def test_jit_trace_of_native_runs_at_another_length():
    layer = rnnlab.LSTM(3, 4, backend="native").eval()
    traced = torch.jit.trace(Forward(layer), torch.randn(5, 2, 3), check_trace=False)
    x = torch.randn(9, 3, 3)
    torch.testing.assert_close(traced(x)[0], layer(x)[0])


def test_jit_trace_with_lengths_raises():
    layer = rnnlab.LSTM(3, 4, backend="native")
    with pytest.raises(RuntimeError, match="torch.export"):
        torch.jit.trace(lambda x: layer(x, lengths=torch.tensor([5, 3]))[0], torch.randn(5, 2, 3), check_trace=False)


def test_export_pt2_writes_a_program_and_a_card(tmp_path):
    layer = _layer("LSTM", CASES[0][1], batch_first=True)
    card = rnnlab.export(layer, torch.randn(2, 5, 3), tmp_path / "m.pt2", format="pt2", card={"scaling": [0, 1]})
    info = json.loads(card.read_text())
    assert info["inputs"][0]["shape"] == ["B", "T", 3] and info["scaling"] == [0, 1]
    program = torch.export.load(str(tmp_path / "m.pt2"))
    for B, T in [(3, 7), (1, 4), (2, 1), (1, 1)]:  # a batch of one and a single step too (serving calls)
        x = torch.randn(B, T, 3)
        _assert_same(program.module()(x), layer(x))


@pytest.mark.parametrize("family", ["LSTM", "GRU", "RNN"])
def test_export_onnx_plain_layers_as_onnx_operators_equal_rnnlab(tmp_path, family):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    layer = _layer(family, {})
    layer.backend = "fused"  # whatever a layer runs on, ONNX gets the operator
    rnnlab.export(layer, torch.randn(5, 2, 3), tmp_path / "m.onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert family in ops
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    for T, B in LENGTHS:
        x = torch.randn(T, B, 3)
        got = session.run(None, {"input": x.numpy()})
        want = layer(x)
        torch.testing.assert_close(torch.from_numpy(got[0]), want[0], rtol=1e-5, atol=1e-5)
        h = want[1][0] if family == "LSTM" else want[1]
        torch.testing.assert_close(torch.from_numpy(got[1]), h, rtol=1e-5, atol=1e-5)
    assert layer.backend == "fused"  # restored


@pytest.mark.parametrize("family", ["LSTM", "GRU", "RNN"])
def test_export_onnx_with_lengths_gives_the_operators_sequence_lens_equal_rnnlab(tmp_path, family):
    """A padded batch in onnxruntime: outputs zero past each length, final states at each last valid step."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    layer = _layer(family, {}, batch_first=True)
    card = rnnlab.export(layer, torch.randn(3, 5, 3), tmp_path / "m.onnx", kwargs={"lengths": torch.tensor([5, 3, 2])})
    assert json.loads(card.read_text())["inputs"][1] == {"name": "lengths", "dtype": "int64", "shape": ["B"]}
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    for T, lengths in PADDED:
        x, lengths = torch.randn(len(lengths), T, 3), torch.tensor(lengths)
        x[1, lengths[1]:] = float("nan")  # whatever the padding holds reaches no output
        got = [torch.from_numpy(a) for a in session.run(None, {"input": x.numpy(), "lengths": lengths.numpy()})]
        want = layer(x, lengths=lengths)
        _assert_same(got, want)
        assert (got[0][1, lengths[1]:] == 0).all()


LOOPS = [("LSTM", dict(peephole=True)), ("LSTM", dict(coupled=True)), ("LSTM", dict(layer_norm=True)),
         ("LSTM", dict(proj_size=2)), ("LSTM", dict(peephole=True, coupled=True, layer_norm=True, proj_size=2)),
         ("GRU", dict(layer_norm=True)), ("RNN", dict(layer_norm=True, nonlinearity="relu")), ("LSTM", dict(zoneout=0.3)),
         ("GRU", dict(zoneout=0.2)), ("MinGRU", {}), ("MinLSTM", dict(log_space=False))]


@pytest.mark.parametrize("family,kw", LOOPS, ids=["peephole", "coupled", "ln", "proj", "lstm-all", "gru-ln", "rnn-ln",
                                                  "lstm-zoneout", "gru-zoneout", "mingru", "minlstm"])
def test_export_onnx_variants_as_a_scan_over_the_step_equal_rnnlab(tmp_path, family, kw):
    """Layers ONNX has no operator for become a Scan over the cell's own step: equal to rnnlab in onnxruntime at
    unseen lengths and batch sizes, padded (NaN in the padding), two layers, both directions, h0 given."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    layer = _layer(family, kw, batch_first=True)
    LD, sizes = 4, [layer.cell_config.state_size] + ([layer.hidden_size] if family == "LSTM" else [])

    class WithState(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x, *state, lengths):
            out, h = self.layer(x, state if len(state) == 2 else state[0], lengths=lengths)
            return (out, *h) if isinstance(h, tuple) else (out, h)

    module = WithState().eval()
    state = [torch.randn(LD, 3, n) for n in sizes]
    rnnlab.export(module, (torch.randn(3, 5, 3), *state), tmp_path / "m.onnx", kwargs={"lengths": torch.tensor([5, 3, 2])},
                  dims=[{0: "B", 1: "T"}] + [{1: "B"}] * len(sizes))
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert "Scan" in {n.op_type for n in model.graph.node}
    assert all(o.domain in ("", "ai.onnx") for o in model.opset_import)  # no placeholder left behind
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    for T, lengths in PADDED:
        x, lengths = torch.randn(len(lengths), T, 3), torch.tensor(lengths)
        x[1, lengths[1]:] = float("nan")  # whatever the padding holds reaches no output
        state = [torch.randn(LD, len(lengths), n) for n in sizes]
        feeds = {"input": x.numpy(), "lengths": lengths.numpy(), **{f"input_{k + 1}": s.numpy() for k, s in enumerate(state)}}
        got = [torch.from_numpy(a) for a in session.run(None, feeds)]
        with torch.no_grad():
            want = module(x, *state, lengths=lengths)
        for g, w in zip(got, want):  # the 1e-5 (ONNX's layer norm sums in another order: ~5e-6 here)
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
        assert (got[0][1, lengths[1]:] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_export_onnx_mixes_operators_and_scans_and_takes_float64(tmp_path, dtype):
    """A model with a plain layer (ONNX's LSTM operator) and a variant layer (a Scan), time-major, no lengths:
    onnxruntime equals rnnlab. In float64 the plain layer is a Scan too (onnxruntime's LSTM runs float32 only)."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = nn.Sequential(rnnlab.LSTM(3, 4), rnnlab.GRU(4, 5, layer_norm=True, bidirectional=True)).to(dtype).eval()

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = model[0], model[1]

        def forward(self, x):
            return self.b(self.a(x)[0])[0]

    rnnlab.export(Two(), torch.randn(5, 2, 3, dtype=dtype), tmp_path / "m.onnx", dims={0: "T", 1: "B"})
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert "Scan" in ops and ("LSTM" in ops) == (dtype == torch.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-8, atol=1e-9)  # its layer norm in double: ~1e-11
    for T, B in LENGTHS:
        x = torch.randn(T, B, 3, dtype=dtype)
        got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
        torch.testing.assert_close(got, Two()(x), **tol)


def test_export_onnx_of_recordings_is_refused_naming_pt2(tmp_path):
    pytest.importorskip("onnx")

    class Recording(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = rnnlab.LSTM(3, 4, peephole=True)

        def forward(self, x):
            return self.layer(x, record_gates=True)[2].gate("i")

    with pytest.raises(ValueError, match="format='pt2'"):
        rnnlab.export(Recording(), torch.randn(5, 2, 3), tmp_path / "m.onnx")