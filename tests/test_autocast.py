"""Under torch.autocast (bfloat16 and float16, CPU) every backend gives the float32 answer within the half type's
tolerance, and the recurrence stays in float32 (issue 13): before, the fused backend failed (or ignored autocast),
the reference with layer norm was up to 0.27 off, and the scan backend failed (a KeyError on the half type). The
native LSTM under float16 (oneDNN has none on the CPU; torch.nn.LSTM fails there) is refused naming the fused
backend, which auto picks."""

from __future__ import annotations

import pytest
import torch

import rnnlab

TOL = 0.01  # bfloat16 keeps 8 bits: the plain cells measured 0.002-0.005 off float32 at these sizes (the layer
# norm variants were 0.03 off here before the fix)

CASES = [("reference", "LSTM", dict(peephole=True, layer_norm=True)), ("reference", "GRU", dict(layer_norm=True)),
         ("reference", "LSTM", {}), ("fused", "LSTM", dict(peephole=True, layer_norm=True, coupled=True)),
         ("fused", "GRU", {}), ("fused", "RNN", dict(layer_norm=True)), ("native", "LSTM", {}), ("native", "GRU", {}),
         ("auto", "LSTM", {}), ("scan", "MinGRU", {}), ("scan", "MinLSTM", dict(log_space=False))]


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
@pytest.mark.parametrize("backend,family,kw", CASES, ids=[f"{b}-{f}-{'+'.join(k) or 'plain'}" for b, f, k in CASES])
def test_autocast_is_within_tolerance_of_float32(backend, family, kw, half):
    if (backend, family, half) == ("native", "LSTM", torch.float16):
        layer = rnnlab.LSTM(8, 16, backend="native")
        with torch.autocast("cpu", dtype=half), pytest.raises(ValueError, match="backend='fused'"):
            layer(torch.randn(6, 3, 8))
        return
    worst = 0.0
    for seed in range(4):  # the layer-norm error was seed-dependent (0.01 to 0.27)
        torch.manual_seed(seed)
        layer = getattr(rnnlab, family)(8, 16, backend=backend, **kw)
        x = torch.randn(6, 3, 8, requires_grad=True)
        y32 = layer(x)[0]
        g32 = torch.autograd.grad(y32.sum(), x)[0]
        with torch.autocast("cpu", dtype=half):
            y16 = layer(x)[0]
        g16 = torch.autograd.grad(y16.float().sum(), x)[0]
        assert torch.isfinite(y16).all() and torch.isfinite(g16).all()
        worst = max(worst, (y16.float() - y32).abs().max().item())
        assert (g16.float() - g32).abs().max().item() < 5 * TOL
    assert worst < TOL
