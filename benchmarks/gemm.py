"""The fused backend's own matrix product against torch's, at the shapes a layer's time-parallel products
take on the reference shapes (../shared/BENCHMARKS.md): the input projection x W_ih^T of all steps (T*B rows),
dx = dZ W_ih and a weight's gradient dW = dZ^T h summed over the T*B rows. They run on the compiled loops' kernel
(kernels/fused/loop_gemm_body.c, `compiled.gemm`, `compiled.gemm_at`) where it is built; torch's call is MKL's
sgemm here (AVX2 code on this project's AMD machine, even with AVX-512 present). Interleaved, median of rounds, ratio per round.

    python -m benchmarks.gemm [--threads 2] [--rounds 7] [--shapes S1,S2,S3,S4]

Prints a table; never fails on a timing. (The per-step recurrent product runs inside the loops and is
measured there: benchmarks/layers.py.)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnlab.kernels.fused import compiled

SHAPES = {"S1": (100, 32, 256), "S2": (100, 64, 512), "S3": (512, 8, 128), "S4": (50, 1, 256)}


def _time(fn, reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--shapes", default="S1,S2,S3,S4", help="comma-separated, from S1-S4")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ok, why = compiled.status()
    print(f"torch {torch.__version__}, {args.threads} threads; compiled loops: {why}")
    if not ok:
        return
    print(f"{'shape':6} {'product':22} {'M x K x N':>18} {'torch ms':>9} {'ours ms':>8} {'ratio':>6} {'ours GFLOP/s':>13}")
    for name in args.shapes.split(","):
        T, B, H = SHAPES[name]
        G = 4 * H  # an LSTM's gates; I = H
        x, W, b, dZ = torch.randn(T * B, H), torch.randn(G, H), torch.randn(G), torch.randn(T * B, G)
        cases = {
            "input projection": (lambda: torch.addmm(b, x, W.t()), lambda: compiled.gemm(x, W, True, b), (T * B, H, G)),
            "dx = dZ W_ih": (lambda: dZ @ W, lambda: compiled.gemm(dZ, W, False), (T * B, G, H)),
            "dW = dZ^T h": (lambda: dZ.t() @ x, lambda: compiled.gemm_at(dZ, x), (G, T * B, H)),
        }
        for label, (theirs, ours, (M, K, N)) in cases.items():
            assert torch.allclose(theirs(), ours(), rtol=1e-4, atol=1e-3)
            reps = max(1, int(0.02 / max(_time(theirs, 1), 1e-6)))
            t_theirs, t_ours = [], []
            for r in range(args.rounds):  # alternate which goes first
                for fn, out in ((theirs, t_theirs), (ours, t_ours))[:: 1 if r % 2 else -1]:
                    out.append(_time(fn, reps))
            ratio = statistics.median(o / t for o, t in zip(t_ours, t_theirs))
            mo = statistics.median(t_ours)
            print(f"{name:6} {label:22} {f'{M}x{K}x{N}':>18} {statistics.median(t_theirs) * 1e3:9.3f} "
                  f"{mo * 1e3:8.3f} {ratio:6.2f} {2 * M * K * N / mo / 1e9:13.0f}")


if __name__ == "__main__":
    main()
