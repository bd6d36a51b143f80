"""minGRU / minLSTM benchmark: training time and memory against rnnlab's fused GRU/LSTM and torch.nn.GRU/LSTM.

    python -m benchmarks.minrnn                      # H in {128, 512} x T in {100, 1e3, 1e4, 1e5}: long, run idle
    python -m benchmarks.minrnn --quick              # tiny shapes, seconds: checks the harness, numbers meaningless
    python -m benchmarks.minrnn --hidden 128 --steps 1000 --models mingru,gru-fused,torch-gru --no-memory

What is timed: one training step, forward + backward, of one unidirectional layer with I = H: x (T, B, H)
requires grad and `torch.autograd.grad(output, [x, *parameters], dy)` computes every gradient (dy a fixed
random tensor), as benchmarks/layers.py does. Models (--models):
    mingru, minlstm          rnnlab.MinGRU / MinLSTM, backend "scan" (what auto picks)
    mingru-ref               rnnlab.MinGRU, backend "reference" (the loop over the cell's step)
    gru-fused, lstm-fused    rnnlab.GRU / LSTM, backend "fused" (hand-derived BPTT, compiled loops on the CPU)
    torch-gru, torch-lstm    torch.nn.GRU / LSTM
    gemm-floor               minGRU's input projection alone (W x + b for all steps: forward, dW, dx, on the
                             same kernels as the scan backend: rnnlab.kernels.fused.common.linear): the
                             floor under any minGRU step at that shape on this CPU, so the best ratio to
                             torch.nn.GRU that a minGRU can reach there
Per shape every model is warmed up, then timed in --rounds rounds, each round running every model once in a
shuffled order; reported: the median ms per step and the median over rounds of the per-round ratio to
torch.nn.GRU (ratios within a round cancel much of a shared machine's drift). B is chosen so that B*T is
about --tokens (clamped to [1, 64]): the T = 100,000 rows run one sequence.

Memory, per (shape, model), each in a fresh subprocess (so one model's allocations cannot hide another's):
    peak MiB   how much one training step raised the process's peak resident set size (getrusage ru_maxrss)
               above its peak once the module, x and dy were built. It is the first step (a warm-up would
               already have set the peak), so one-time costs count too (loading the fused backend's compiled
               loops, a few MiB). It includes every transient buffer and the allocator's overhead: an upper
               bound of what a step needs, in pages, and only rises (memory freed and reused is not counted
               twice). Linux reports KiB, macOS bytes; both are converted.
    saved MiB  the bytes autograd keeps for backward after the forward (benchmarks.layers' hook count:
               distinct storages saved, excluding parameters and x).
--no-memory skips both.

Printed first: torch, threads, the CPU model and the ISA torch dispatches to (AVX2 / AVX512 ...), the load.
Nothing here is asserted; tests/test_benchmark_smoke.py only checks that --quick runs and writes its fields.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import torch

import rnnlab
from rnnlab.kernels.fused.common import linear
from benchmarks.layers import measure_interleaved, saved_for_backward_bytes

__all__ = ["MODELS", "main"]

MODELS = ("mingru", "minlstm", "gru-fused", "lstm-fused", "torch-gru", "torch-lstm")
OPTIONAL_MODELS = ("mingru-ref", "gemm-floor")
BASELINE = "torch-gru"
FIELDS = ["H", "T", "B", "model", "ms", "ratio_vs_torch_gru", "round_ms", "peak_mib", "saved_mib", "error"]


def build(model: str, H: int) -> torch.nn.Module:
    """One layer of `model` reading H features (I = H)."""
    if model == "mingru":
        return rnnlab.MinGRU(H, H, backend="scan")
    if model == "minlstm":
        return rnnlab.MinLSTM(H, H, backend="scan")
    if model == "mingru-ref":
        return rnnlab.MinGRU(H, H, backend="reference")
    if model == "gru-fused":
        return rnnlab.GRU(H, H, backend="fused")
    if model == "lstm-fused":
        return rnnlab.LSTM(H, H, backend="fused")
    if model == "gemm-floor":  # minGRU's input projection alone: what any minGRU training step must pay
        return _Projection(H, 2 * H)
    if model == "torch-gru":
        return torch.nn.GRU(H, H)
    if model == "torch-lstm":
        return torch.nn.LSTM(H, H)
    raise ValueError(f"benchmarks.minrnn: unknown model {model!r}; expected one of {MODELS + OPTIONAL_MODELS}")


class _Projection(torch.nn.Module):
    """W x + b for every step at once, its output's first half returned: the three matrix products (forward,
    dW, dx) of a minGRU training step without the gates and the recurrence -- the floor under any minGRU
    implementation at that shape on this CPU, and so under the ratio to torch.nn.GRU it can reach."""

    def __init__(self, I: int, out: int) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(I, out)

    def forward(self, x):
        k = linear(x, self.proj.weight, self.proj.bias)  # the products minGRU's scan runs (the loops' kernels)
        return k[..., : k.shape[-1] // 2], None


def batch_for(T: int, tokens: int) -> int:
    return max(1, min(64, tokens // T))


def train_step(module: torch.nn.Module, x: torch.Tensor, dy: torch.Tensor):
    params = list(module.parameters())

    def step():
        out = module(x)[0]
        torch.autograd.grad(out, [x, *params], dy)

    return step


def memory_child(model: str, H: int, T: int, B: int) -> dict:
    """In this (fresh) process: peak RSS raised by one training step, and the bytes saved for backward."""
    torch.manual_seed(0)
    module = build(model, H)
    x = torch.randn(T, B, H, requires_grad=True)
    dy = torch.randn(T, B, H)
    before = _peak_rss_bytes()
    train_step(module, x, dy)()
    after = _peak_rss_bytes()
    saved = saved_for_backward_bytes(module, x)
    return {"peak_mib": (after - before) / 2**20, "saved_mib": saved / 2**20}


def _peak_rss_bytes() -> int:
    """This process's peak resident set size. Linux: VmHWM of /proc/self/status, the high-water mark of this
    process image. Not getrusage's ru_maxrss there: Linux carries it across exec from the parent's image, so every
    child of a large benchmark process started at the parent's peak and a step raised nothing (the 2026-12-08 run
    printed 0.0 MiB everywhere). Elsewhere ru_maxrss (bytes on macOS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def measure_memory(model: str, H: int, T: int, B: int, threads: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.minrnn", "--memory-child", f"{model},{H},{T},{B}",
           "--threads", str(threads)]
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=3600)
    if done.returncode != 0:
        return {"peak_mib": None, "saved_mib": None, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def environment(args) -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"torch": torch.__version__, "rnnlab": rnnlab.__version__, "threads": torch.get_num_threads(),
            "cpu": cpu, "isa": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "load_1_5_15": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "rounds": args.rounds, "tokens": args.tokens, "quick": args.quick}


def run_shape(H: int, T: int, args, rng: random.Random) -> list[dict]:
    B = batch_for(T, args.tokens)
    torch.manual_seed(args.seed)
    x = torch.randn(T, B, H, requires_grad=True)
    dy = torch.randn(T, B, H)
    steps, rows = {}, {}
    for model in args.models:
        rows[model] = {"H": H, "T": T, "B": B, "model": model, "ms": None, "ratio_vs_torch_gru": None,
                       "round_ms": [], "peak_mib": None, "saved_mib": None, "error": None}
        try:
            step = train_step(build(model, H), x, dy)
            step()
            steps[model] = step
        except Exception as e:  # a failure is a row with its reason, never a stopped run
            rows[model]["error"] = f"{type(e).__name__}: {e}"
    times, _ = measure_interleaved(steps, args.rounds, 0, args.min_time_ms, rng, lambda: None)
    for model, ms in times.items():
        rows[model].update(ms=statistics.median(ms), round_ms=ms)
        if BASELINE in times:
            rows[model]["ratio_vs_torch_gru"] = statistics.median(a / b for a, b in zip(ms, times[BASELINE]))
    if args.memory:
        for model in steps:
            rows[model].update(measure_memory(model, H, T, B, torch.get_num_threads()))
    return list(rows.values())


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    lines = [f"{'H':>5} {'T':>7} {'B':>3}  {'model':<11} {'ms/step':>10} {'x torch.nn.GRU':>15} {'peak MiB':>9} "
             f"{'saved MiB':>9}"]
    for r in rows:
        lines.append(f"{r['H']:>5} {r['T']:>7} {r['B']:>3}  {r['model']:<11} {_fmt(r['ms'], '10.2f')} "
                     f"{_fmt(r['ratio_vs_torch_gru'], '15.3f')} {_fmt(r['peak_mib'], '9.1f')} "
                     f"{_fmt(r['saved_mib'], '9.1f')}" + (f"  {r['error']}" if r["error"] else ""))
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.minrnn", description=__doc__.split("\n")[0])
    p.add_argument("--hidden", default="128,512", help="H values, comma-separated")
    p.add_argument("--steps", default="100,1000,10000,100000", help="T values, comma-separated")
    p.add_argument("--models", default=",".join(MODELS), help=f"of {', '.join(MODELS + OPTIONAL_MODELS)}")
    p.add_argument("--tokens", type=int, default=100_000, help="B*T per shape, B clamped to [1, 64]")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-time-ms", type=float, default=200.0, help="each timing repeats a step to last this long")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory subprocesses")
    p.add_argument("--quick", action="store_true", help="H 16, T 50 and 400, 2 rounds: a smoke run")
    p.add_argument("--out", help="write the rows and the environment as JSON here")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.hidden, args.steps, args.rounds, args.tokens, args.min_time_ms = "16", "50,400", 2, 800, 1.0
    args.hidden = [int(v) for v in args.hidden.split(",")]
    args.steps = [int(v) for v in args.steps.split(",")]
    args.models = [m for m in args.models.split(",") if m]
    for m in args.models:
        if m not in MODELS + OPTIONAL_MODELS:
            p.error(f"unknown model {m!r}; expected one of {', '.join(MODELS + OPTIONAL_MODELS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        model, H, T, B = args.memory_child.split(",")
        print(json.dumps(memory_child(model, int(H), int(T), int(B))))
        return 0
    meta = environment(args)
    print(f"rnnlab {meta['rnnlab']} minGRU/minLSTM training benchmark; torch {meta['torch']}, threads "
          f"{meta['threads']} of {meta['cores']} cores, CPU {meta['cpu']}, ISA {meta['isa']}, load "
          f"{meta['load_1_5_15']}" + ("  [--quick: numbers meaningless]" if args.quick else ""))
    print("ms/step: median over rounds of one forward+backward; x torch.nn.GRU: median per-round ratio (< 1 "
          "faster); peak MiB: rise of the step's process peak RSS; saved MiB: kept for backward")
    rng = random.Random(args.seed)
    rows = []
    for H in args.hidden:
        for T in args.steps:
            print(f"H={H} T={T} ...", file=sys.stderr, flush=True)
            rows += run_shape(H, T, args, rng)
    print(table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
