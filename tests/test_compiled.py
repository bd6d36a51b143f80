"""The fused LSTM's compiled time loops (kernels/fused/compiled.py): equal to its loop of torch ops at sizes
where the vectorised loops run their full-width body and their remainder, and a clean fallback when the
compiler is missing or turned off. (test_backends_equal_reference.py runs every variant both ways too.)"""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import rnnlab
from rnnlab.kernels.fused import compiled

BUILT, WHY = compiled.status()
needs_build = pytest.mark.skipif(not BUILT, reason=f"compiled loops unavailable here: {WHY}")

VARIANTS = [("lstm", {}), ("lstm", {"peephole": True}), ("lstm", {"coupled": True}), ("lstm", {"layer_norm": True}),
            ("lstm", {"proj_size": 5}), ("lstm", {"peephole": True, "coupled": True, "layer_norm": True, "proj_size": 7}),
            ("gru", {}), ("gru", {"layer_norm": True})]


def _run(m, x, lengths, hx):
    y, state, trace = m(x, hx, lengths=lengths, record_gates=True, return_states=True)
    states = state if isinstance(state, tuple) else (state,)
    loss = (y * torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)).sum() + sum((s ** 2).sum() * 0.7 for s in states)
    grads = torch.autograd.grad(loss, [x, *(hx if isinstance(hx, tuple) else (hx,)), *m.parameters()])
    gates = [v for rec in trace.records.values() for v in rec.gates.values()]
    return [y, *states, *grads, *gates]


@needs_build
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("family,kw", VARIANTS, ids=[f"{f}-{'+'.join(kw) or 'plain'}" for f, kw in VARIANTS])
@pytest.mark.parametrize("H", [37, 64])
def test_compiled_equals_torch_ops_loop(family, kw, H, dtype):
    torch.manual_seed(0)
    layer = rnnlab.LSTM if family == "lstm" else rnnlab.GRU
    m = layer(11, H, num_layers=2, bidirectional=True, backend="fused", dtype=dtype, **kw)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    R = kw.get("proj_size", 0) or H
    x = torch.randn(9, 5, 11, dtype=dtype, requires_grad=True)
    hx = (torch.randn(4, 5, R, dtype=dtype, requires_grad=True), torch.randn(4, 5, H, dtype=dtype, requires_grad=True))
    hx = hx if family == "lstm" else hx[0]
    lengths = [9, 3, 7, 1, 9]
    fast = _run(m, x, lengths, hx)
    with compiled.disabled():
        slow = _run(m, x, lengths, hx)
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, rtol=tol, atol=tol * b.abs().max().item()), (a - b).abs().max()


def _fresh_process(code: str, **env) -> str:
    """Run `code` in a new interpreter (the compiled library is loaded once per process)."""
    src = os.path.join(os.path.dirname(__file__), "..", "src")
    full_env = {**os.environ, "PYTHONPATH": src, **env}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


CHECK = """
    import torch, rnnlab
    from rnnlab.kernels.fused import compiled
    m = rnnlab.LSTM(3, 4, backend="fused", peephole=True)
    y, _ = m(torch.randn(5, 2, 3))
    y.sum().backward()
    print(compiled.status())
"""


def test_turned_off_by_environment_falls_back():
    out = _fresh_process(CHECK, RNNLAB_COMPILED="0")
    assert "(False, 'turned off by RNNLAB_COMPILED=0')" in out


def test_failing_compiler_falls_back_with_the_reason(tmp_path):
    out = _fresh_process(CHECK, CC="false", RNNLAB_CACHE=str(tmp_path))
    assert out.startswith("(False,") and "failed" in out, out
    assert not list(tmp_path.glob("kernels/*.so"))  # nothing half-built left in the cache


@needs_build
def test_report_says_which_loop_runs():
    assert "fused LSTM time loops on the CPU: compiled C" in rnnlab.backend_report()
