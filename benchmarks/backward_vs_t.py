"""Does any backend's training time grow faster than the sequence length? Forward + backward vs T, per backend.

    python -m benchmarks.backward_vs_t                      # T = 1k, 2k, 4k, 8k, 16k; LSTM and GRU; B=16, H=64
    python -m benchmarks.backward_vs_t --quick

For each family and backend (reference, native, fused), with and without lengths= (a padded batch whose
lengths are drawn in [T/2, T], one sequence of T), one training step (forward, then backward of the output's
sum into dx and the parameters) is timed at each T, best of --reps. Printed: seconds per step and seconds per
1,000 steps of T; linear time shows as a flat second column. (Issue 19: torch's packed-sequence backward,
what `native` runs with lengths=, measured 18.9 s at T=2,000; the reference loop 120 s at T=4,000 before it
unbound its input part instead of indexing it once per step.)
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import rnnlab


def step_time(family: str, backend: str, T: int, padded: bool, args) -> float:
    torch.manual_seed(0)
    layer = {"lstm": rnnlab.LSTM, "gru": rnnlab.GRU}[family](args.hidden, args.hidden, backend=backend)
    x = torch.randn(T, args.batch, args.hidden, requires_grad=True)
    lengths = None
    if padded:
        lengths = torch.randint(T // 2, T + 1, (args.batch,))
        lengths[0] = T
    best = float("inf")
    for _ in range(args.reps):
        t0 = time.perf_counter()
        y, _ = layer(x, lengths=lengths)
        y.sum().backward()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default="1000,2000,4000,8000,16000")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backends", default="reference,native,fused")
    p.add_argument("--max-seconds", type=float, default=60.0, help="skip longer T for a backend past this")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.lengths, args.batch, args.hidden, args.reps = "20,40", 2, 8, 1
    torch.set_num_threads(args.threads)
    Ts = [int(t) for t in args.lengths.split(",")]
    print(f"# torch {torch.__version__}, {args.threads} threads, B={args.batch}, H={args.hidden}")
    print("| family | backend | lengths= | " + " | ".join(f"T={t}" for t in Ts) + " | s per 1k steps (first -> last) |")
    print("|---|---|---|" + "---|" * len(Ts) + "---|")
    for family in ("lstm", "gru"):
        for backend in args.backends.split(","):
            for padded in (False, True):
                times = []
                for T in Ts:
                    if times and times[-1] is not None and times[-1] > args.max_seconds:
                        times.append(None)
                        continue
                    times.append(step_time(family, backend, T, padded, args))
                done = [(T, s) for T, s in zip(Ts, times) if s is not None]
                per = f"{done[0][1] / done[0][0] * 1e3:.3f} -> {done[-1][1] / done[-1][0] * 1e3:.3f}"
                cells = " | ".join("-" if s is None else f"{s:.3f}" for s in times)
                print(f"| {family} | {backend} | {'yes' if padded else 'no'} | {cells} | {per} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
