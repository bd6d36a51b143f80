"""minGRU / minLSTM against GRU / LSTM at equal compute: what each learns in the same CPU time, three seeds.

    python -m benchmarks.minrnn_quality                        # every task x cell x seed (about 1 h of CPU)
    python -m benchmarks.minrnn_quality --budget 20 --seeds 0  # a smaller run
    python -m benchmarks.minrnn_quality --report               # the table from the results already written

Tasks (rnnlab's own, defaults and presets, only the cell changed; hidden sizes equal across cells, so the min
cells have fewer parameters: no W_hh):
    charlm         `rnnlab train charlm` on its default built-in corpus: best validation bits/char
    mnist-rows     `rnnlab train classify --data builtin:mnist-rows` (T = 28): test accuracy
    mnist-pixels   `... --data builtin:mnist-pixels` (T = 784, one pixel per step): test accuracy
    memory-300     the copy-memory experiment (`rnnlab experiment memory`'s task) at delay 300, LSTM hidden 32
                   for every cell: validation accuracy on the recalled symbol (chance 1/8). GRU and LSTM start
                   with the experiment's chrono initialisation; the min cells have none (none is defined for them)
    memory-1000    the same at delay 1,000 (T = 1,002)

Equal compute, not equal wall time: this machine is shared, so a wall-clock budget would hand each run
whatever the other jobs left it. Each run gets the same CPU-time budget (--budget seconds, one thread): a
calibration measures the CPU seconds per training step of each (task, cell) -- two short runs, their CPU time
difference over their step difference, each evaluating once, so start-up, data loading and evaluation
cancel -- and the run gets
budget / (seconds per step) steps (evaluations excluded). Every run's result is a JSON file in --out; a run
whose file exists is not run again.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CELLS = ("mingru", "minlstm", "gru", "lstm")
# the paper stacks its min layers (a min layer's gates never see the state; a second layer's see the first's
# output): two layers of the same hidden size, charlm and mnist only (the memory task's net has one layer)
STACKED = ("mingru-x2", "minlstm-x2")
TASKS = ("charlm", "mnist-rows", "mnist-pixels", "memory-300", "memory-1000")


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _command(task: str, cell: str, steps: int, seed: int, out: Path, evals: int = 5) -> list[str]:
    every = max(steps // evals, 1)
    cell, _, layers = cell.partition("-x")
    if layers and task.startswith("memory"):
        raise ValueError(f"{task}: the memory task's net has one layer; {cell}-x{layers} runs on charlm and mnist")
    common = ["--cell", cell, "--layers", layers or "1", "--max-steps", str(steps), "--max-time", "none",
              "--threads", "1", "--seed", str(seed), "--quiet", "--out", str(out)]
    if task == "charlm":
        return ["rnnlab", "train", "charlm", *common, "--eval-every", str(every)]
    if task.startswith("mnist"):
        return ["rnnlab", "train", "classify", "--data", f"builtin:{task}", *common,
                "--eval-every", str(every), "--patience", "none"]
    delay = task.split("-")[1]
    code = (f"import json, sys, torch; from rnnlab.train.memory import MemoryConfig, MemoryTask; "
            f"from rnnlab.train import fit, TrainConfig; torch.set_num_threads(1); "
            f"cfg = MemoryConfig(delays=[{delay}], cells=['{cell}'], steps={steps}, seed={seed}, "
            f"chrono={cell in ('gru', 'lstm')}); "
            f"t = MemoryTask(cfg, '{cell}', {delay}, 32); "
            f"r = fit(t, TrainConfig(lr=cfg.lr, clip=cfg.clip, max_steps={steps}, max_time=None, "
            f"eval_every={every}, patience=None, seed={seed}), None, progress=False, "
            f"log=lambda line: None); print('RESULT', json.dumps(t.evaluate()))")
    return [sys.executable, "-c", code]


def _run(task: str, cell: str, steps: int, seed: int, folder: Path, evals: int = 5) -> tuple[str, float]:
    shutil.rmtree(folder, ignore_errors=True)  # a run cut short before its result was written starts again
    before = _cpu_children()
    p = subprocess.run(_command(task, cell, steps, seed, folder, evals), capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    if p.returncode != 0:
        raise RuntimeError(f"{task} {cell} seed {seed}: exit {p.returncode}\n{p.stderr[-2000:]}")
    return p.stdout, _cpu_children() - before


def _score(task: str, stdout: str, folder: Path) -> float:
    if task == "charlm":
        m = re.search(r"best val_bpc ([0-9.]+)", stdout)
    elif task.startswith("mnist"):
        m = re.search(r"--- test split.*?accuracy ([0-9.]+)", stdout, re.S)
    else:
        m = re.search(r'RESULT .*"acc": ([0-9.]+)', stdout)
    if m is None:
        raise RuntimeError(f"{task}: no score in the output:\n{stdout[-1500:]}")
    return float(m.group(1))


def calibrate(task: str, cell: str, out: Path, cache: Path) -> float:
    """CPU seconds per training step (one thread): (cpu(n2) - cpu(n1)) / (n2 - n1)."""
    known = json.loads(cache.read_text()) if cache.exists() else {}
    key = f"{task}/{cell}"
    if key not in known:
        # one evaluation each (at the end), so start-up, data loading and evaluation cancel in the difference;
        # the longer run grows until the difference is >= 4 CPU seconds (start-up varies by ~0.3 s)
        n1, n2 = 2, 12
        _, c1 = _run(task, cell, n1, 0, out / "calib" / f"{task}-{cell}-1", evals=1)
        while True:
            _, c2 = _run(task, cell, n2, 0, out / "calib" / f"{task}-{cell}-{n2}", evals=1)
            if c2 - c1 >= 4.0 or n2 >= 20_000:
                break
            n2 = min(n2 * max(2, int(4.5 / max(c2 - c1, 0.05))), 20_000)
        known[key] = max((c2 - c1) / (n2 - n1), 1e-5)
        # the 1-minute load average when it ended: CPU time is robust to other jobs, not immune (shared caches)
        known[f"{key}/load"] = os.getloadavg()[0]
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, indent=1))
    return known[key]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS + STACKED)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--budget", type=float, default=40.0, help="CPU seconds of training per run (one thread)")
    p.add_argument("--out", default="benchmarks/results/minrnn_quality")
    p.add_argument("--calibration", default=None,
                   help="calibration.json to read and extend (default: OUT/calibration.json); a longer-budget study "
                        "reuses the 40 s study's CPU seconds per step")
    p.add_argument("--report", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    cache = Path(args.calibration) if args.calibration else out / "calibration.json"
    if not args.report:
        for seed in args.seeds:  # every task and cell at one seed before the next seed: a cut-short study is even
            for task in args.tasks:
                for cell in args.cells:
                    f = out / f"{task}-{cell}-seed{seed}.json"
                    if f.exists():
                        continue
                    per_step = calibrate(task, cell, out, cache)
                    steps = max(int(args.budget / per_step), 5)
                    load = os.getloadavg()[0]
                    t0 = time.perf_counter()
                    stdout, cpu = _run(task, cell, steps, seed, out / "runs" / f"{task}-{cell}-{seed}")
                    r = {"task": task, "cell": cell, "seed": seed, "steps": steps, "cpu_per_step": per_step,
                         "budget": args.budget, "cpu_seconds": cpu, "wall_seconds": time.perf_counter() - t0,
                         "score": _score(task, stdout, out), "load_before": load,
                         "load_after": os.getloadavg()[0]}
                    f.write_text(json.dumps(r, indent=1))
                    print(f"{task:13s} {cell:8s} seed {seed}: {steps} steps, score {r['score']:.4f} "
                          f"(cpu {cpu:.0f} s)", flush=True)
    results = [json.loads(f.read_text()) for f in sorted(out.glob("*-seed*.json"))]
    print(f"\n| task (metric) | {' | '.join(args.cells)} |")
    print(f"|---|{'---|' * len(args.cells)}")
    metric = {"charlm": "val bits/char, lower is better", "mnist-rows": "test accuracy",
              "mnist-pixels": "test accuracy", "memory-300": "recall accuracy, chance 0.125",
              "memory-1000": "recall accuracy, chance 0.125"}
    for task in args.tasks:
        cells = []
        for cell in args.cells:
            rs = [r for r in results if r["task"] == task and r["cell"] == cell]
            if not rs:
                cells.append("-")
                continue
            scores = [r["score"] for r in rs]
            sd = f" ± {statistics.stdev(scores):.3f}" if len(scores) > 1 else ""
            cpu = statistics.mean(r["cpu_seconds"] for r in rs)
            cells.append(f"{statistics.mean(scores):.3f}{sd} (n={len(rs)}, {rs[0]['steps']:,} steps, "
                         f"{cpu:.0f} CPU s)")
        print(f"| {task} ({metric[task]}) | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
