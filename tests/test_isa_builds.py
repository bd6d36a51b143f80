"""Every instruction-set build of the compiled loops that rnnlab ships (RNNLAB_ISA: avx512, avx2, portable) gives
the reference's numbers: each is built and run in its own process (a process loads one build), forward and
backward, float64 and float32, with the variants and the loop regularizers, both thread splits."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rnnlab.kernels.fused import compiled

CHECK = r"""
import sys, torch, rnnlab
from rnnlab.kernels.fused import compiled
ok, why = compiled.status()
assert ok, why
assert compiled.isa() == sys.argv[1], (compiled.isa(), why)
assert compiled.vector_bits() == int(sys.argv[2]), why
torch.set_num_threads(2)
torch.manual_seed(0)
configs = [("lstm", dict(peephole=True, layer_norm=True, proj_size=3, recurrent_dropout=0.3, zoneout=0.2)),
           ("lstm", dict(coupled=True)), ("gru", dict(layer_norm=True, zoneout=0.2, recurrent_dropout=0.2)),
           ("gru", {}), ("rnn", dict(layer_norm=True, zoneout=0.2, recurrent_dropout=0.2)),
           ("rnn", dict(nonlinearity="relu"))]
for split in (1, 2):
    compiled.SPLIT = split
    for family, kw in configs:
        for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 2e-4)):
            cls = {"lstm": rnnlab.LSTM, "gru": rnnlab.GRU, "rnn": rnnlab.RNN}[family]
            ref = cls(5, 37, num_layers=2, bidirectional=True, backend="reference", dtype=dtype, **kw)
            fused = cls(5, 37, num_layers=2, bidirectional=True, backend="fused", dtype=dtype, **kw)
            fused.load_state_dict(ref.state_dict())
            x = torch.randn(9, 12, 5, dtype=dtype)
            lengths = [9, 3, 5, 9, 1, 2, 8, 7, 9, 4, 6, 9]
            outs = []
            for m in (ref, fused):
                torch.manual_seed(1)
                y = m(x, lengths=lengths)[0]
                g = torch.autograd.grad((y * y).sum(), list(m.parameters()))
                outs.append([y, *g])
            for a, b in zip(*outs):
                scale = max(1.0, a.abs().max().item())
                assert (a - b).abs().max().item() <= tol * scale, (family, kw, dtype, split, (a - b).abs().max())
for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):  # the weight gradients' D^T X
    for K, M, N in ((1, 1, 1), (300, 37, 45), (700, 130, 33)):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            D, X = torch.randn(K, M, dtype=dtype), torch.randn(K, N, dtype=dtype)
            ref = D.t() @ X
            assert (compiled.gemm_at(D, X) - ref).abs().max().item() <= tol * ref.abs().max().item(), (K, M, N)
print("ok")
"""


def _cpu_has(*flags: str) -> bool:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return False
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return all(f in line.split() for f in flags)


ISAS = [("avx512", 512, ("avx512f", "avx512bw", "avx512vl", "avx512dq")), ("avx2", 256, ("avx2", "fma")),
        ("portable", 128, ())]


@pytest.mark.skipif(not compiled.status()[0], reason="no compiled loops here (no C compiler, or turned off)")
@pytest.mark.parametrize("isa,bits,needs", ISAS, ids=[i[0] for i in ISAS])
def test_forced_isa_build_equals_the_reference(isa, bits, needs):
    if not _cpu_has(*needs):
        pytest.skip(f"this CPU lacks {needs}: the {isa} build cannot run here")
    env = dict(os.environ, RNNLAB_ISA=isa, OMP_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", CHECK, isa, str(bits)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_an_isa_this_cpu_lacks_or_an_unknown_name_is_refused_not_run(monkeypatch):
    monkeypatch.setenv("RNNLAB_ISA", "bogus")
    isa, why = compiled._requested_isa()
    assert isa is None and "not one of native, avx512, avx2, portable" in why
    monkeypatch.setenv("RNNLAB_ISA", "avx512")
    monkeypatch.setattr(compiled, "_machine", lambda: "x86_64\0x\0flags : fpu sse2 avx2 fma")
    monkeypatch.setattr(compiled.platform, "machine", lambda: "x86_64")
    isa, why = compiled._requested_isa()
    assert isa is None and "lacks avx512f" in why
