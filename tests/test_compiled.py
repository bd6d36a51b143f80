"""The fused LSTM's compiled time loops (kernels/fused/compiled.py): equal to its loop of torch ops at sizes
where the vectorised loops run their full-width body and their remainder, and a clean fallback when the
compiler is missing or turned off. (test_backends_equal_reference.py runs every variant both ways too.)"""

import ctypes
import os
import subprocess
import sys
import textwrap

import numpy as np
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


def _model(family, kw, H, dtype, layers=2, B=5):
    torch.manual_seed(0)
    layer = rnnlab.LSTM if family == "lstm" else rnnlab.GRU
    m = layer(11, H, num_layers=layers, bidirectional=True, backend="fused", dtype=dtype, **kw)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    R = kw.get("proj_size", 0) or H
    x = torch.randn(9, B, 11, dtype=dtype, requires_grad=True)
    hx = (torch.randn(2 * layers, B, R, dtype=dtype, requires_grad=True),
          torch.randn(2 * layers, B, H, dtype=dtype, requires_grad=True))
    return m, x, (hx if family == "lstm" else hx[0])


def _float(m, x, hx):
    f = lambda t: t.detach().float().requires_grad_()
    return m.float(), f(x), (tuple(map(f, hx)) if isinstance(hx, tuple) else f(hx))


LENGTHS = [9, 3, 7, 1, 9]
SPLITS = {"units": 1, "rows": 2}  # how the loops' threads share a step (compiled.SPLIT; 0 = the loops choose)


@pytest.fixture(params=list(SPLITS))
def split(request, monkeypatch):
    monkeypatch.setattr(compiled, "SPLIT", SPLITS[request.param])
    return request.param


@needs_build
@pytest.mark.parametrize("family,kw", VARIANTS, ids=[f"{f}-{'+'.join(kw) or 'plain'}" for f, kw in VARIANTS])
@pytest.mark.parametrize("H", [37, 64])
def test_compiled_equals_torch_ops_loop(family, kw, H, split):
    """float64: the compiled loops equal the loop of torch ops to 1e-10. float32: both are compared with the
    float64 answer, and the compiled loops must be about as close to it as torch's own float32 ops are
    (within 2e-5 of the largest value, or within 4x the torch ops' error: in a 2-layer bidirectional
    all-variants LSTM float32 rounding is amplified chaotically, and either path's error ranged
    4e-6..7e-5 over ten seeds)."""
    m, x, hx = _model(family, kw, H, torch.float64)
    truth = _run(m, x, LENGTHS, hx)
    with compiled.disabled():
        slow = _run(m, x, LENGTHS, hx)
    for a, b in zip(truth, slow):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10 * b.abs().max().item()), (a - b).abs().max()
    m, x, hx = _float(m, x, hx)
    fast = _run(m, x, LENGTHS, hx)
    with compiled.disabled():
        slow = _run(m, x, LENGTHS, hx)
    for a, b, t in zip(fast, slow, truth):
        scale = t.abs().max().item()
        err_fast = (a.double() - t).abs().max().item() / scale
        err_slow = (b.double() - t).abs().max().item() / scale
        assert err_fast <= max(2e-5, 4 * err_slow), (err_fast, err_slow)


@needs_build
@pytest.mark.parametrize("family,kw", [VARIANTS[0], VARIANTS[5], VARIANTS[7]], ids=["lstm", "lstm-all", "gru-ln"])
def test_thread_count_does_not_change_results(family, kw, split):
    """By units, 37 units are 3 blocks of 16 doubles, so 1, 2, 3 and 5 threads split them differently, one with
    an idle thread; by rows, 37 sequences (lengths 1-9) are 5 blocks of rows. Only the order of sums may differ
    (layer norm's row sums by units, the gradient sums of the gains and peepholes by rows)."""
    m, x, hx = _model(family, kw, 37, torch.float64, B=37)
    lengths = [1 + (7 * i) % 9 for i in range(37)]
    before = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3, 5):
            torch.set_num_threads(n)
            results.append(_run(m, x, lengths, hx))
    finally:
        torch.set_num_threads(before)
    with compiled.disabled():
        slow = _run(m, x, lengths, hx)
    for other in [*results[1:], slow]:
        for a, b in zip(other, results[0]):
            assert torch.allclose(a, b, rtol=1e-11, atol=1e-11 * b.abs().max().item())


@needs_build
def test_float32_sigmoid_and_tanh_are_correctly_rounded():
    """The loops' own float32 sigmoid and tanh (loops.c) against float64, over the whole useful range."""
    lib = compiled._load()["lib"]
    torch.manual_seed(0)
    x = torch.cat([torch.empty(200_000).uniform_(-110, 110), torch.empty(200_000).uniform_(-20, 20),
                   torch.empty(200_000).uniform_(-1, 1), torch.empty(100_000).uniform_(-1e-3, 1e-3),
                   torch.tensor([0.0, -0.0, 1e-40, 0.125, 4e-4, 20.0, 104.0, float("inf"), -float("inf")])])
    for name, fn in [("sigmoid", lib.sigmoid_array_f32), ("tanh", lib.tanh_array_f32)]:
        y = torch.empty_like(x)
        fn(len(x), ctypes.c_void_p(x.data_ptr()), ctypes.c_void_p(y.data_ptr()))
        ref = getattr(torch, name)(x.double())
        normal = ref.abs() >= torch.finfo(torch.float32).tiny
        ulp = torch.from_numpy(np.spacing(ref[normal].float().abs().numpy())).double()
        assert ((y.double() - ref)[normal].abs() / ulp).max() <= 0.5 + 1e-6, name
        assert torch.equal(y[-2:], getattr(torch, name)(x[-2:]))  # +-inf
    nan = torch.tensor([float("nan")] * 16)
    y = torch.empty_like(nan)
    lib.tanh_array_f32(16, ctypes.c_void_p(nan.data_ptr()), ctypes.c_void_p(y.data_ptr()))
    assert torch.isnan(y).all()


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


@needs_build
@pytest.mark.parametrize("family,kw", VARIANTS, ids=[f"{f}-{'+'.join(kw) or 'plain'}" for f, kw in VARIANTS])
def test_inference_equals_training_forward(family, kw, split):
    """Without grad the loops keep only one step of the buffers backward would need (Rr, ST, M, Bh):
    outputs, final states and recordings must not change."""
    m, x, hx = _model(family, kw, 37, torch.float64)
    run = lambda: m(x, hx, lengths=LENGTHS, record_gates=True, return_states=True)
    y, state, trace = run()
    with torch.no_grad():
        y2, state2, trace2 = run()
    states, states2 = (state, state2) if family == "lstm" else ((state,), (state2,))
    assert torch.equal(y, y2) and all(torch.equal(a, b) for a, b in zip(states, states2))
    for key, rec in trace.records.items():
        for name, g in rec.gates.items():
            assert torch.equal(g, trace2.records[key].gates[name])
        for name, v in rec.states.items():
            assert torch.equal(v, trace2.records[key].states[name])


@needs_build
def test_portable_build_equals_the_native_one(tmp_path, monkeypatch):
    """The last fallback build (no -march=native, no libmvec, no OpenMP: 16-byte vectors, 4-row blocks)
    computes what the default build does."""
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path))
    path, why = compiled._build(compiled._source(), compiled._compiler(), builds=compiled.BUILDS[-1:])
    assert path is not None, why
    cases = [_model("lstm", VARIANTS[5][1], 37, torch.float64, B=13), _model("gru", VARIANTS[7][1], 37, torch.float64)]
    native = [_run(m, x, None, hx) for m, x, hx in cases]
    monkeypatch.setitem(compiled._state, "lib", compiled._open(path))
    portable = [_run(m, x, None, hx) for m, x, hx in cases]
    for a_run, b_run in zip(portable, native):
        for a, b in zip(a_run, b_run):
            assert torch.allclose(a, b, rtol=1e-12, atol=1e-12 * b.abs().max().item())


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("threads", [1, 2])
def test_weight_gradient_product_equals_torch(dtype, tol, threads):
    """compiled.gemm_at (D^T X, the weight gradients over T*B rows) at shapes that leave partial row blocks, partial
    panels and a partial last block of K (KC = 256), on one thread and split by panels over two."""
    if not compiled.status()[0]:
        pytest.skip(compiled.status()[1])
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        for K, M, N in ((1, 1, 1), (5, 3, 70), (256, 64, 64), (257, 41, 19), (1000, 130, 97)):
            D, X = torch.randn(K, M, dtype=dtype), torch.randn(K, N, dtype=dtype)
            ref = D.t() @ X
            got = compiled.gemm_at(D, X)
            assert got.shape == (M, N)
            assert (got - ref).abs().max().item() <= tol * ref.abs().max().item(), (K, M, N)
    finally:
        torch.set_num_threads(before)


def test_layer_gradients_through_own_weight_product_equal_reference():
    """A layer large enough (T*B*4H*H >= 2^20) that the fused backward takes its weight gradients from
    compiled.gemm_at gives the reference's gradients (float64)."""
    if not compiled.status()[0]:
        pytest.skip(compiled.status()[1])
    torch.manual_seed(0)
    ref = rnnlab.LSTM(16, 40, backend="reference", dtype=torch.float64, layer_norm=True, peephole=True)
    fused = rnnlab.LSTM(16, 40, backend="fused", dtype=torch.float64, layer_norm=True, peephole=True)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(30, 12, 16, dtype=torch.float64)  # 360 rows x 160 x 40 = 2.3M multiply-adds for W_hh
    grads = []
    for m in (ref, fused):
        y = m(x)[0]
        grads.append(torch.autograd.grad((y * y).sum(), list(m.parameters())))
    for a, b in zip(*grads):
        assert (a - b).abs().max().item() <= 1e-10 * max(1.0, a.abs().max().item())


@needs_build
@pytest.mark.parametrize("family,kw", [v for v in VARIANTS if v[0] == "lstm"] + [("lstm", {"zoneout": 0.3})])
@pytest.mark.parametrize("rows", [False, True])
def test_inference_in_chunks_equals_one_call(family, kw, rows, monkeypatch):
    """Inference (nothing kept) computes the input part a chunk of steps at a time (lstm.py _inference): forced
    into chunks of 2 steps (the last one shorter), its outputs equal one whole-sequence call's and the reference's.
    rows: enough rows that the input projection runs on the loops' own product with W_ih packed once."""
    from rnnlab.kernels.fused import lstm as fused_lstm

    B = 300 if rows else 5
    m, x, hx = _model(family, kw, 16, torch.float32, B=B)
    m.eval()
    ref = rnnlab.LSTM(11, 16, num_layers=2, bidirectional=True, backend="reference", **kw).eval()
    ref.load_state_dict(m.state_dict())
    with torch.no_grad():
        y1, s1 = m(x, hx)
        monkeypatch.setattr(fused_lstm, "chunk_steps", lambda T, B, width, itemsize: 2)
        calls = []
        monkeypatch.setattr(compiled, "pack_recurrent", lambda *a, f=compiled.pack_recurrent: calls.append(1) or f(*a))
        y2, s2 = m(x, hx)
        yr, sr = ref(x, hx)
    assert calls, "the chunked path did not run"
    for a, b, r in zip((y1, *s1), (y2, *s2), (yr, *sr)):
        # products over other row counts round differently, amplified through the all-variants stack (see
        # test_compiled_equals_torch_ops_loop): the chunked error at most 4x the whole call's, or within 2e-5
        err_chunked, err_whole = (b - r).abs().max().item(), (a - r).abs().max().item()
        assert err_chunked <= max(4 * err_whole, 2e-5), (err_chunked, err_whole)


RNN_VARIANTS = [{}, {"nonlinearity": "relu"}, {"zoneout": 0.3}, {"recurrent_dropout": 0.3}, {"layer_norm": True},
                {"layer_norm": True, "nonlinearity": "relu", "zoneout": 0.2, "recurrent_dropout": 0.2}]


@needs_build
@pytest.mark.parametrize("kw", RNN_VARIANTS, ids=["tanh", "relu", "zoneout", "recurrent-dropout", "ln", "ln-relu-regularized"])
@pytest.mark.parametrize("H", [37, 64])
def test_compiled_rnn_equals_torch_ops_loop(kw, H, split, monkeypatch):
    """The Elman RNN's compiled loops (loop_rnn_body.c) equal its loop of torch ops:
    float64 to 1e-10 (outputs, final state, every gradient), in training mode, the same masks drawn both ways,
    with lengths, two layers, both directions."""
    torch.manual_seed(0)
    m = rnnlab.RNN(11, H, num_layers=2, bidirectional=True, backend="fused", dtype=torch.float64, **kw)
    x = torch.randn(9, 5, 11, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 5, H, dtype=torch.float64, requires_grad=True)

    def run():
        torch.manual_seed(1)  # the regularizers' masks
        y, h = m(x, h0, lengths=LENGTHS)
        loss = (y * torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)).sum() + (h ** 2).sum() * 0.7
        return [y, h, *torch.autograd.grad(loss, [x, h0, *m.parameters()])]

    calls = []
    for name in ("rnn_forward", "rnn_backward"):
        monkeypatch.setattr(compiled, name, lambda *a, f=getattr(compiled, name), n=name: calls.append(n) or f(*a))
    fast = run()
    assert sorted(set(calls)) == ["rnn_backward", "rnn_forward"], calls
    with compiled.disabled():
        slow = run()
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10 * b.abs().max().item()), (a - b).abs().max()
    m.eval()  # inference: nothing kept (layer norm's products in one step's scratch), zoneout's expectation
    with torch.no_grad():
        calls.clear()
        fast = m(x, h0, lengths=LENGTHS)
        assert calls == ["rnn_forward"] * 4, calls
        with compiled.disabled():
            slow = m(x, h0, lengths=LENGTHS)
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10 * b.abs().max().item()), (a - b).abs().max()
