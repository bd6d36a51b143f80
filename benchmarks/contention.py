"""Trainings side by side: rnnlab's default thread count against the best manual `--threads`, on a busy machine.

    python benchmarks/contention.py                  # charlm, forecast, recognize; 1, 2 and 3 at once; 60 s each
    python benchmarks/contention.py --quick          # 4 s runs, 1 and 2 at once, --threads 1 only: checks it works
    python benchmarks/contention.py --tasks forecast --concurrent 2 --seconds 120 --threads 1 2

For each task and each count k of concurrent runs, k copies of `rnnlab train TASK` (its defaults, the data
set's preset, a time budget) start together, first with the default thread count, then with each manual
`--threads N`; each run's throughput is the training units per second (chars/s, windows/s, images/s) of its
metrics.csv's last row, evaluation excluded. Reported per (task, k): the default's mean, the best manual
setting's mean and their ratio. Targets (issue 19): >= 0.8 with 2 at once, >= 0.95 alone.

It measures the machine, so it needs the machine: run it when nothing else does (the runs are the load).
Never run in CI. Writes a markdown table and OUT/contention.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = ("charlm", "forecast", "recognize")
UNIT = {"charlm": "chars_per_s", "forecast": "windows_per_s", "recognize": "images_per_s"}


def run_batch(task: str, k: int, threads: int | None, seconds: float, out: Path) -> list[float]:
    """k concurrent `rnnlab train TASK` runs; their training throughputs (units/s)."""
    procs, folders = [], []
    for i in range(k):
        folder = out / f"{task}-k{k}-t{threads or 'default'}-{i}-{time.monotonic_ns()}"
        cmd = [sys.executable, "-m", "rnnlab", "train", task, "--out", str(folder), "--max-time", str(seconds),
               "--max-steps", "none", "--quiet"] + ([] if threads is None else ["--threads", str(threads)])
        if task == "charlm":
            cmd += ["--sample-length", "0"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        folders.append(folder)
    rates = []
    for p, folder in zip(procs, folders):
        stdout, stderr = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"{task}: `rnnlab train` failed ({p.returncode}): {stderr.strip()[-500:]}")
        with open(folder / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        rates.append(float(rows[-1][UNIT[task]]))
    return rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--concurrent", nargs="+", type=int, default=[1, 2, 3], help="runs at once (default 1 2 3)")
    ap.add_argument("--threads", nargs="+", type=int, help="manual settings tried (default 1 .. usable cores)")
    ap.add_argument("--seconds", type=float, default=60.0, help="time budget of each run (default 60)")
    ap.add_argument("--quick", action="store_true", help="4 s runs, 1 and 2 at once, --threads 1: a smoke test")
    ap.add_argument("--out", type=Path, help="keep the run folders and contention.json here")
    args = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if args.quick:
        args.seconds, args.concurrent, args.threads = 4.0, [1, 2], [1]
    manual = args.threads or list(range(1, cores + 1))
    out = args.out or Path(tempfile.mkdtemp(prefix="rnnlab-contention-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"{cores} usable cores, load {os.getloadavg()[0]:.1f} at the start; {args.seconds:g} s per run; "
          f"manual --threads {manual}", flush=True)

    results = []
    print("| task | at once | default units/s | best manual units/s (--threads) | default / best |")
    print("|---|---|---|---|---|")
    for task in args.tasks:
        for k in args.concurrent:
            default = statistics.mean(run_batch(task, k, None, args.seconds, out))
            by_threads = {n: statistics.mean(run_batch(task, k, n, args.seconds, out)) for n in manual}
            best_n = max(by_threads, key=by_threads.get)
            ratio = default / by_threads[best_n]
            results.append({"task": task, "concurrent": k, "unit": UNIT[task], "default": default,
                            "manual": by_threads, "best_threads": best_n, "ratio": ratio})
            print(f"| {task} | {k} | {default:,.0f} | {by_threads[best_n]:,.0f} ({best_n}) | {ratio:.2f} |", flush=True)
    (out / "contention.json").write_text(json.dumps({"cores": cores, "seconds": args.seconds, "results": results},
                                                    indent=1))
    print(f"written to {out / 'contention.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
