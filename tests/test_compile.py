"""torch.compile of rnnlab layers equals eager, forward and backward (issue 13): every backend x {LSTM, GRU, RNN}
x {plain, each variant, all variants}, fullgraph in float64 (1e-10) and the default mode in float32 (1e-5), in as
few compiles as possible (one module holds every configuration). The scan backend (minGRU/minLSTM): test_minrnn.py
and the dynamic-shape test below."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.kernels.fused import compiled

GRID = [("LSTM", {}), ("LSTM", dict(peephole=True)), ("LSTM", dict(coupled=True)), ("LSTM", dict(layer_norm=True)),
        ("LSTM", dict(proj_size=2)), ("LSTM", dict(peephole=True, coupled=True, layer_norm=True, proj_size=2)),
        ("GRU", {}), ("GRU", dict(layer_norm=True)), ("RNN", {}), ("RNN", dict(layer_norm=True))]
# {LSTM, GRU, RNN} x {plain, each variant, all variants}; native serves the plain cells and the LSTM's projection
FEW = [GRID[5], GRID[7], GRID[8]]  # for the slower compiles (inductor; the reference's unrolled loop in float32)


class Grid(nn.Module):
    """Every configuration a backend serves, side by side on the same input: one compile covers them all (the
    all-variant LSTM is bidirectional, so the reverse direction is compiled too)."""

    def __init__(self, backend: str, dtype: torch.dtype, cases=GRID):
        super().__init__()
        cases = [(f, kw) for f, kw in cases if backend != "native" or not set(kw) - {"proj_size"}]
        self.layers = nn.ModuleList([
            getattr(rnnlab, f)(3, 4, backend=backend, dtype=dtype, bidirectional=len(kw) > 1, **kw) for f, kw in cases
        ])

    def forward(self, x):
        return torch.cat([layer(x)[0] for layer in self.layers], dim=-1)


def _outputs_and_grads(model, x):
    y = model(x)
    grads = torch.autograd.grad(y.pow(2).sum(), [x, *model.parameters()])
    return [y, *grads]


def _check(backend, dtype, tol, compile_kw, torch_ops=False, cases=GRID):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = Grid(backend, dtype, cases)
    x = torch.randn(5, 2, 3, dtype=dtype, requires_grad=True)
    with compiled.disabled() if torch_ops else torch.enable_grad():
        eager = _outputs_and_grads(model, x)
        got = _outputs_and_grads(torch.compile(model, **compile_kw), x)
    for a, b in zip(eager, got):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, a, rtol=tol, atol=tol)


def test_fused_compiles_to_one_graph_equal_to_eager():
    _check("fused", torch.float64, 1e-10, dict(backend="aot_eager", fullgraph=True))


def test_fused_compiles_with_inductor_equal_to_eager():
    _check("fused", torch.float64, 1e-10, dict(fullgraph=True), cases=FEW)


def test_fused_torch_op_loop_compiled_is_not_nan():
    """The loop CUDA and compiler-less machines run: compiled, it returned NaN before issue 13. Default mode
    (graph breaks allowed), float32."""
    _check("fused", torch.float32, 1e-5, dict(backend="aot_eager"), torch_ops=True)


@pytest.mark.parametrize("dtype,tol,fullgraph,cases", [(torch.float64, 1e-10, True, GRID), (torch.float32, 1e-5, False, FEW)],
                         ids=["fullgraph-float64", "default-float32"])
def test_reference_compiles_equal_to_eager(dtype, tol, fullgraph, cases):
    _check("reference", dtype, tol, dict(backend="aot_eager", fullgraph=fullgraph), cases=cases)


def test_native_compile_equals_eager():
    _check("native", torch.float32, 1e-5, dict(backend="aot_eager"))


@pytest.mark.parametrize("made_before", [False, True], ids=["first-call-in-the-trace", "after-an-eager-call"])
def test_native_with_fullgraph_raises_naming_the_fused_backend(made_before, monkeypatch):
    """torch's kernels run eagerly between graphs (as torch.nn's do): fullgraph=True cannot hold them, and the error
    says so and names backend='fused', whether the eager wrapper exists yet or the first call is inside the trace."""
    from rnnlab.kernels import native

    monkeypatch.setattr(native, "_EAGER", [])
    torch._dynamo.reset()
    layer = rnnlab.GRU(3, 4, backend="native")
    if made_before:
        layer(torch.randn(5, 2, 3))
        assert native._EAGER  # made by the eager call (torch._dynamo is loaded)
    with pytest.raises(torch._dynamo.exc.Unsupported, match="use backend='fused'"):
        torch.compile(layer, backend="aot_eager", fullgraph=True)(torch.randn(5, 2, 3))


def test_auto_picks_fused_inside_compile_so_fullgraph_works():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = rnnlab.LSTM(3, 4)  # auto: native in eager
    assert model.backend_for().name == "native"
    x = torch.randn(4, 2, 3, requires_grad=True)
    y = model(x)[0]
    g = torch.autograd.grad(y.sum(), x)[0]
    yc = torch.compile(model, fullgraph=True, backend="aot_eager")(x)[0]
    gc = torch.autograd.grad(yc.sum(), x)[0]
    torch.testing.assert_close(yc, y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gc, g, rtol=1e-5, atol=1e-5)


def test_fused_operator_passes_torch_library_opcheck():
    """Schema (no aliasing, nothing mutated), fake implementation == real shapes, autograd registration, and
    AOT dispatch with dynamic shapes, on the LSTM with every variant and a padded batch."""
    from rnnlab.kernels.fused import ops

    torch.manual_seed(0)
    layer = rnnlab.LSTM(3, 4, dtype=torch.float64, peephole=True, layer_norm=True, proj_size=2)
    cfg = layer.cell_config
    params = {name.rsplit("_l0", 1)[0]: p for name, p in layer.named_parameters()}
    present, roles = ops.roles_of([params.get(r) for r in ops.ROLES])
    x = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    state = [torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64)]
    args = (x, state, present, roles, "lstm", 4, 2, ops.flags_of(cfg), torch.tensor([4, 3, 2]), True, False)
    torch.library.opcheck(ops.fused_forward, args)


class GRUs(nn.Module):
    """A bidirectional GRU and MinGRU on a padded batch: the two families whose compiled backward failed."""

    def __init__(self):
        super().__init__()
        self.gru, self.mingru = rnnlab.GRU(3, 4, bidirectional=True), rnnlab.MinGRU(3, 4, bidirectional=True)

    def forward(self, x, lengths):
        return torch.cat([self.gru(x, lengths=lengths)[0], self.mingru(x, lengths=lengths)[0]], dim=-1)


def test_compile_dynamic_with_lengths_and_backward_is_one_graph_equal_to_eager():
    """inductor with dynamic=True, lengths= and backward: before issue 13 closed, the layout read the lengths' values
    (a graph break) and inductor's backward named an unbound size symbol (NameError 's52'); now the lengths stay a
    tensor in one graph (fullgraph) and a second length and batch reuse it (no recompile)."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = GRUs()
    counter = CompileCounterWithBackend("inductor")
    compiled_model = torch.compile(model, backend=counter, dynamic=True, fullgraph=True)
    # batch sizes unlike I=3 and H=4: torch gives equal sizes one symbol and would specialise the batch
    compiles = []
    for T, lengths in [(6, [6, 3]), (7, [2, 7, 5, 1, 3])]:
        x = torch.randn(T, len(lengths), 3, requires_grad=True)
        lengths = torch.tensor(lengths)
        y = model(x, lengths)
        want = [y, *torch.autograd.grad(y.pow(2).sum(), [x, *model.parameters()])]
        yc = compiled_model(x, lengths)
        got = [yc, *torch.autograd.grad(yc.pow(2).sum(), [x, *model.parameters()])]
        for a, b in zip(want, got):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        compiles.append(counter.frame_count)
    assert compiles[1] == compiles[0]  # the second length and batch ran the first graph


def test_segment_steps_with_lengths_compile_to_one_graph_equal_to_eager():
    """segment_steps (checkpointed segments) on a padded batch: the segments' layout reads no lengths' values."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer = rnnlab.LSTM(3, 4, segment_steps=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([5, 3, 1])

    def loss(x, lengths):
        return layer(x, lengths=lengths)[0].pow(2).sum()

    want = torch.autograd.grad(loss(x, lengths), [x, *layer.parameters()])
    got = torch.autograd.grad(torch.compile(loss, backend="aot_eager", fullgraph=True)(x, lengths),
                              [x, *layer.parameters()])
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)


def test_regularizer_masks_under_compile_are_eager_ones_for_a_seed():
    """Training with every regularizer and lengths: the compiled layer draws the masks eager draws for the same seed
    (aot_eager runs torch's generator; inductor has its own unless torch._inductor.config.fallback_random)."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer = rnnlab.LSTM(3, 4, num_layers=2, dropout=0.3, zoneout=0.3, recurrent_dropout=0.2, input_dropout=0.1,
                        weight_drop=0.2).train()
    x, lengths = torch.randn(6, 2, 3), torch.tensor([6, 4])
    compiled_layer = torch.compile(layer, backend="aot_eager")
    torch.manual_seed(1)
    want = layer(x, lengths=lengths)[0]
    torch.manual_seed(1)
    got = compiled_layer(x, lengths=lengths)[0]
    torch.testing.assert_close(got, want, rtol=0, atol=0)
