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


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_jit_trace_of_a_python_time_loop_raises_naming_torch_export(backend):
    layer = Forward(rnnlab.GRU(3, 4, backend=backend))
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
    x = torch.randn(3, 7, 3)
    torch.testing.assert_close(program.module()(x)[0], layer(x)[0], rtol=1e-5, atol=1e-6)


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


@pytest.mark.parametrize("kw", [dict(peephole=True), dict(proj_size=2)], ids=["peephole", "projection"])
def test_export_onnx_refuses_a_variant_naming_pt2(tmp_path, kw):
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="format='pt2'"):
        rnnlab.export(_layer("LSTM", kw), torch.randn(5, 2, 3), tmp_path / "m.onnx")
