"""charlm on one process with 2 threads against 2 processes (torchrun/DDP, gloo) with 1 thread each, on this
2-core machine; and what the gradient all-reduce costs a step (issue 15, "Benchmarks").

    python benchmarks/distributed.py                 # 60 s per run, 2 repeats each, 50 timed steps each way
    python benchmarks/distributed.py --quick         # 4 s runs of a tiny model, 1 repeat: checks that it works
    python benchmarks/distributed.py --seconds 120 --repeats 3 --out benchmarks/results/distributed

1. Throughput and quality at the same global batch and the same time budget. Two configurations of
   `rnnlab train charlm` (its defaults otherwise: builtin:pystdlib, 1 x LSTM 256, --seq-len 100):
     (a) 1 process x 2 threads:   --threads 2 --batch 2B
     (b) 2 processes x 1 thread:  --nproc 2 --threads 1 --batch B   (global batch 2B, the same streams cut in two)
   B is charlm's default --batch (32) unless --batch says otherwise. Each run has --max-time SECONDS (the loop's
   budget: training and evaluation, not the start-up that reads the corpus) and charlm's evaluation schedule;
   the configurations run one after the other, alternated (a b, b a, ...), --repeats times each, and the
   median over repeats is reported. From each run folder:
     chars/s      metrics.csv's last row. Under several processes the loop sums the characters of every rank
                  (the global batch's) and divides by rank 0's time inside training steps, so it is the global
                  rate, comparable with (a). Evaluation is excluded; so is the loop's per-step "agree on the
                  budget" all-reduce, which sits between steps (its cost is in part 2's table).
     budget c/s   the characters trained (last/state.json) / SECONDS: what a time budget buys, evaluation
                  included (the loop starts no step once its clock, evaluations included, passes the budget).
                  Under (b) rank 0 evaluates alone on its 1 thread while rank 1 waits, so evaluation takes a
                  larger share of (b)'s budget than of (a)'s. (Divided by SECONDS, not by state.json's
                  elapsed: the checkpoint's clock is read before the evaluation it follows, so it leaves the
                  last evaluation out.)
     best bpc     the lowest val_bpc of metrics.csv (every evaluation, the one at the end of the budget too).
   Ratio (b)/(a) of each median; for bits/char the difference (b) - (a).

2. The gradient all-reduce's share of a 2-process step, in this process's own 2-rank gloo job (spawned with
   torch.multiprocessing, localhost, a free port; 1 thread per rank, as in (b)). Each rank builds charlm the
   way `rnnlab train charlm` does (rnnlab.train.charlm.CharLMTask: the corpus, its vocabulary, the seeded
   model), takes its half of every global batch of 2B streams (TextStreams.distribute, as under torchrun),
   wraps the model in DistributedDataParallel and runs the loop's step: zero_grad, forward from the carried
   state, backward, clip_grad_norm_, AdamW step. Steps alternate between
     with sync   a normal DDP step: the backward all-reduces (averages) the gradients
     no sync     the same step under ddp.no_sync(): no collective at all
   after warm-up steps of both. A barrier (not timed) precedes every timed step, so both ranks start it
   together: "with sync" minus "no sync" is then what the all-reduce adds to a step, waiting for the slower
   rank inside the step included. Reported: the median over both ranks' steps of each, their difference and
   its share of a synchronised step; beside them, for reference, the median of a bare all-reduce of one
   float32 tensor as large as the gradient (what DDP sends, without its buckets and hooks), and of the small
   all-reduce (2 float64) the loop makes twice a step outside DDP (agreeing on the budget, reducing the loss).
   Each rank times its own steps with time.perf_counter (all of it runs on the CPU: nothing to synchronise).

3. A header: date, torch and rnnlab versions, the CPU (model, widest vector ISA in its flags, the ISA the
   compiled loops were built for), usable cores, the load average at the start (and at the end).

It measures the machine, so it needs the machine: run it on an otherwise idle one (the runs are the load; on
the shared 2-core machines another job holding a core changes every number here). Never run in CI; there
are no assertions on timings. Prints markdown tables and writes OUT/distributed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as _dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

CONFIGS = ("a", "b")
LABEL = {"a": "1 process x 2 threads", "b": "2 processes x 1 thread"}


# --------------------------------------------------------------------------- the header
def machine() -> dict:
    """torch and rnnlab versions, CPU model and vector ISA, the compiled loops' ISA, cores, load."""
    import rnnlab
    from rnnlab.kernels.fused import compiled

    cpu, widest = platform.processor() or platform.machine(), "?"
    try:
        text = Path("/proc/cpuinfo").read_text()
        cpu = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), cpu)
        flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split()
        widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE2" if "sse2" in flags else "?"
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
            "rnnlab": rnnlab.__version__, "python": platform.python_version(), "cpu": cpu, "cpu_isa": widest,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "loops_isa": compiled.isa(),
            "loops_vector_bits": compiled.vector_bits(), "cores": cores,
            "load_1_5_15_start": [round(v, 2) for v in os.getloadavg()]}


def charlm_defaults() -> tuple[int, int, int]:
    """charlm's default (batch, seq_len, hidden) on its default corpus, as `rnnlab train charlm` resolves them."""
    from rnnlab.train.charlm import KIND
    from rnnlab.train.config import preset_config

    cfg = preset_config(KIND.config, KIND.presets)
    return cfg.data.batch, cfg.data.seq_len, cfg.model.rnn.hidden_size


# --------------------------------------------------------------------------- 1: rnnlab train, (a) against (b)
def train_run(config: str, args: argparse.Namespace, folder: Path) -> dict:
    """One `rnnlab train charlm` run of configuration a or b; its throughputs and best validation bits/char."""
    B = args.batch
    common = ["--out", str(folder), "--max-time", str(args.seconds), "--max-steps", "none", "--quiet",
              "--sample-length", "0", "--seq-len", str(args.seq_len), "--hidden", str(args.hidden)]
    if args.eval_chars is not None:
        common += ["--eval-chars", str(args.eval_chars)]
    if config == "a":
        own = ["--threads", "2", "--batch", str(2 * B)]
    else:
        own = ["--nproc", "2", "--threads", "1", "--batch", str(B)]
    cmd = [sys.executable, "-m", "rnnlab", "train", "charlm", *own, *common]
    limit = args.seconds + 600  # the budget, the corpus read by every rank, the evaluation after the budget
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"({config}) {LABEL[config]}: `rnnlab train` did not end within {limit:.0f} s: "
                         f"{' '.join(cmd[1:])}") from None
    if p.returncode != 0:
        raise SystemExit(f"({config}) {LABEL[config]}: `rnnlab train` failed (exit code {p.returncode}): "
                         f"{' '.join(cmd[1:])}\n{(p.stderr or p.stdout).strip()[-1500:]}")
    try:
        with open(folder / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        loop = json.loads((folder / "last" / "state.json").read_text())["loop"]
    except (OSError, KeyError, ValueError) as e:
        raise SystemExit(f"({config}) {LABEL[config]}: cannot read the run's metrics.csv or last/state.json in "
                         f"{folder}: {e}") from None
    if not rows:
        raise SystemExit(f"({config}) {LABEL[config]}: {folder}/metrics.csv has no row (no evaluation ran)")
    return {"chars_per_s": float(rows[-1]["chars_per_s"]),
            "budget_chars_per_s": loop["units"] / max(loop["elapsed"], args.seconds),
            "best_val_bpc": min(float(r["val_bpc"]) for r in rows),
            "steps": int(rows[-1]["step"]), "elapsed_s": loop["elapsed"], "train_time_s": loop["train_time"],
            "evaluations": len(rows), "folder": str(folder)}


def compare(args: argparse.Namespace, out: Path) -> dict:
    runs: dict[str, list[dict]] = {c: [] for c in CONFIGS}
    for r in range(args.repeats):
        for c in (CONFIGS if r % 2 == 0 else CONFIGS[::-1]):  # alternated: a b, b a, a b, ...
            print(f"  repeat {r + 1}/{args.repeats}: ({c}) {LABEL[c]}, {args.seconds:g} s ...", flush=True)
            runs[c].append(train_run(c, args, out / f"charlm-{c}-{r}"))
    keys = ("chars_per_s", "budget_chars_per_s", "best_val_bpc", "steps")
    median = {c: {k: statistics.median(run[k] for run in runs[c]) for k in keys} for c in CONFIGS}
    return {"runs": runs, "median": median,
            "ratio_b_over_a": {k: median["b"][k] / median["a"][k] for k in keys},
            "best_val_bpc_b_minus_a": median["b"]["best_val_bpc"] - median["a"]["best_val_bpc"]}


# --------------------------------------------------------------------------- 2: the all-reduce's share of a step
def _detach(state):
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(_detach(s) for s in state)
    return state


def _rank(rank: int, port: int, opts: dict, result: str) -> None:
    """One rank of the 2-rank gloo job of part 2 (module docstring); rank 0 writes the timings to `result`."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from rnnlab.train.charlm import KIND, CharLMTask
    from rnnlab.train.config import preset_config
    from rnnlab.train.loop import make_optimizer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=_dt.timedelta(seconds=600))
    try:
        sizes = {"data": {"batch": opts["batch"], "seq_len": opts["seq_len"]},
                 "model": {"rnn": {"hidden_size": opts["hidden"]}}}
        cfg = preset_config(KIND.config, KIND.presets, None, sizes)
        task = CharLMTask(cfg)  # the corpus, its vocabulary and the seeded model, as `rnnlab train charlm` builds them
        task.batches.distribute(rank, 2, 1)  # this rank's half of every global batch of 2 x batch streams
        model = task.model
        model.train()
        opt = make_optimizer(model, cfg.train)
        ddp = DistributedDataParallel(model)
        carry = [None]

        def step(sync: bool) -> float:
            dist.barrier()  # both ranks start the step together (not timed)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            batch = next(task.batches)
            task.model = ddp  # the forward through the DDP wrapper, as the loop does
            try:
                with (contextlib.nullcontext() if sync else ddp.no_sync()):
                    out = task.step_loss(batch, carry[0])
                    carry[0] = _detach(out.state)
                    out.loss.item()
                    out.loss.backward()
            finally:
                task.model = model
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip)
            opt.step()
            return time.perf_counter() - t0

        def collective(t: torch.Tensor) -> float:
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            return time.perf_counter() - t0

        for _ in range(opts["warmup"]):
            step(True)
            step(False)
        times: dict[str, list[float]] = {"sync": [], "no_sync": []}
        for i in range(2 * opts["steps"]):  # alternated: sync, no sync, sync, ...
            kind = "sync" if i % 2 == 0 else "no_sync"
            times[kind].append(step(kind == "sync"))
        numel = sum(p.numel() for p in model.parameters())
        grad = torch.zeros(numel, dtype=torch.float32)
        small = torch.zeros(2, dtype=torch.float64)
        times["allreduce_grad"] = [collective(grad) for _ in range(opts["steps"])]
        times["allreduce_small"] = [collective(small) for _ in range(opts["steps"])]

        mine = torch.tensor(times["sync"] + times["no_sync"] + times["allreduce_grad"] + times["allreduce_small"],
                            dtype=torch.float64)
        both = [torch.empty_like(mine) for _ in range(2)]
        dist.all_gather(both, mine)
        if rank == 0:
            n = opts["steps"]
            per_rank = [{k: b[j * n:(j + 1) * n].tolist() for j, k in
                         enumerate(("sync", "no_sync", "allreduce_grad", "allreduce_small"))} for b in both]
            Path(result).write_text(json.dumps({
                "parameters": numel, "gradient_bytes": 4 * numel, "vocab_size": cfg.model.vocab_size,
                "buffers": sum(b.numel() for b in model.buffers()), "backend": model.rnn.backend_for().name,
                "ddp_buckets": _buckets(ddp), "seconds": per_rank}))
        # Both ranks here, and DDP's reducer (which holds the process group) gone, before the group ends: with
        # the wrapper freed after destroy_process_group, a rank was seen to hang for good in gloo's teardown.
        dist.barrier()
        del ddp
    finally:
        dist.destroy_process_group()


def _buckets(ddp) -> int | None:
    """How many buckets DDP's reducer all-reduces per step (None where this torch does not say)."""
    try:
        return len(ddp._get_ddp_logging_data().get("bucket_sizes", "").split(", "))
    except Exception:
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def allreduce_share(args: argparse.Namespace, out: Path) -> dict:
    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException

    result = out / "allreduce-rank0.json"
    result.unlink(missing_ok=True)
    opts = {"batch": args.batch, "seq_len": args.seq_len, "hidden": args.hidden, "steps": args.steps,
            "warmup": args.warmup}
    limit = 600.0  # the corpus read by each rank, the steps, the collectives: a minute or two when idle
    deadline = time.monotonic() + limit
    try:
        job = mp.spawn(_rank, args=(free_port(), opts, str(result)), nprocs=2, join=False)
        while not job.join(timeout=5):
            if time.monotonic() > deadline:
                for p in job.processes:
                    p.terminate()
                if not result.exists():
                    raise SystemExit(f"the 2-rank gloo job of part 2 did not end within {limit:.0f} s; stopped it")
                print(f"  (the 2-rank job wrote its timings but a rank did not exit within {limit:.0f} s: "
                      f"stopped it)", flush=True)
                break
    except ProcessException as e:  # a rank's exception (its traceback), exit code or signal
        raise SystemExit(f"the 2-rank gloo job of part 2 failed: {str(e).strip()[-1500:]}") from None
    data = json.loads(result.read_text())
    pooled = {k: [t for r in data["seconds"] for t in r[k]] for k in data["seconds"][0]}
    ms = {k: 1000 * statistics.median(v) for k, v in pooled.items()}
    data["median_ms"] = ms
    data["allreduce_ms"] = ms["sync"] - ms["no_sync"]
    data["share"] = data["allreduce_ms"] / ms["sync"]
    return data


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B, T, H = charlm_defaults()
    ap.add_argument("--seconds", type=float, default=60.0, help="time budget of each training run (default 60)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each configuration, alternated (default 2)")
    ap.add_argument("--batch", type=int, default=B, help=f"B, the batch per process of (b); (a) trains on 2B "
                                                         f"(default {B}, charlm's --batch)")
    ap.add_argument("--seq-len", type=int, default=T, help=f"charlm's --seq-len (default {T})")
    ap.add_argument("--hidden", type=int, default=H, help=f"charlm's --hidden (default {H})")
    ap.add_argument("--eval-chars", type=int, help="charlm's --eval-chars (default: charlm's)")
    ap.add_argument("--steps", type=int, default=50, help="part 2: timed steps of each kind per rank (default 50)")
    ap.add_argument("--warmup", type=int, default=3, help="part 2: untimed steps of each kind first (default 3)")
    ap.add_argument("--skip", choices=("train", "allreduce"), help="leave out part 1 (train) or part 2 (allreduce)")
    ap.add_argument("--quick", action="store_true",
                    help="4 s runs, 1 repeat, --hidden 16 --seq-len 16 --eval-chars 5000, 5 steps: a smoke test")
    ap.add_argument("--out", type=Path, help="keep the run folders and distributed.json here")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.repeats, args.hidden, args.seq_len = 4.0, 1, 16, 16
        args.eval_chars, args.steps, args.warmup = 5000, 5, 1
    for name in ("repeats", "batch", "seq_len", "hidden", "steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.seconds <= 0 or args.warmup < 0:
        ap.error("--seconds must be > 0 and --warmup >= 0")
    out = args.out or Path(tempfile.mkdtemp(prefix="rnnlab-distributed-"))
    out.mkdir(parents=True, exist_ok=True)

    meta = machine()
    print(f"{meta['date']}  torch {meta['torch']}  rnnlab {meta['rnnlab']}  python {meta['python']}")
    print(f"cpu {meta['cpu']} ({meta['cpu_isa']}; torch's kernels {meta['torch_cpu_capability']}; compiled loops "
          f"built for {meta['loops_isa']}, {meta['loops_vector_bits']}-bit vectors); {meta['cores']} usable cores; "
          f"load {' '.join(f'{v:.2f}' for v in meta['load_1_5_15_start'])} (1/5/15 min) at the start")
    print("run it on an otherwise idle machine: the runs are the load, and a core held by anything else changes "
          "every number" + ("  [--quick: a smoke test, numbers meaningless]" if args.quick else ""))
    print(f"charlm: builtin:pystdlib, 1 x LSTM {args.hidden}, --seq-len {args.seq_len}; (a) --threads 2 --batch "
          f"{2 * args.batch}; (b) --nproc 2 --threads 1 --batch {args.batch} (global {2 * args.batch}); "
          f"{args.seconds:g} s budget, {args.repeats} repeat(s) each, alternated, medians", flush=True)
    report = {"meta": meta, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}

    if args.skip != "train":
        cmp = compare(args, out)
        report["train"] = cmp
        m, ratio = cmp["median"], cmp["ratio_b_over_a"]
        print()
        print("| configuration | chars/s (training) | chars/s (budget, eval. incl.) | best val bits/char | steps |")
        print("|---|---|---|---|---|")
        for c in CONFIGS:
            print(f"| ({c}) {LABEL[c]} | {m[c]['chars_per_s']:,.0f} | {m[c]['budget_chars_per_s']:,.0f} | "
                  f"{m[c]['best_val_bpc']:.3f} | {m[c]['steps']:.0f} |")
        print(f"| (b) / (a); bits/char: (b) - (a) | {ratio['chars_per_s']:.2f} | {ratio['budget_chars_per_s']:.2f} | "
              f"{m['b']['best_val_bpc'] - m['a']['best_val_bpc']:+.3f} | {ratio['steps']:.2f} |", flush=True)

    if args.skip != "allreduce":
        print(f"\n  2-rank gloo job: {args.warmup} + {args.steps} steps of each kind per rank ...", flush=True)
        share = allreduce_share(args, out)
        report["allreduce"] = share
        ms = share["median_ms"]
        print(f"\nDDP step on 2 ranks x 1 thread, batch {args.batch} per rank, {share['parameters']:,} parameters "
              f"({share['gradient_bytes'] / 1e6:.2f} MB of float32 gradient, {share['ddp_buckets']} DDP bucket(s)), "
              f"backend {share['backend']}; medians over both ranks' steps\n")
        print("| measured | ms |")
        print("|---|---|")
        print(f"| step with sync (DDP all-reduces the gradient) | {ms['sync']:.2f} |")
        print(f"| step under no_sync (no collective) | {ms['no_sync']:.2f} |")
        print(f"| difference: what the all-reduce adds to a step | {share['allreduce_ms']:.2f} "
              f"({100 * share['share']:.1f} % of a synchronised step) |")
        print(f"| bare all-reduce of the gradient's size, for reference | {ms['allreduce_grad']:.2f} |")
        print(f"| small all-reduce (2 float64; the loop makes 2 a step outside DDP) | {ms['allreduce_small']:.3f} |")

    meta["load_1_5_15_end"] = [round(v, 2) for v in os.getloadavg()]
    (out / "distributed.json").write_text(json.dumps(report, indent=1))
    print(f"\nload {' '.join(f'{v:.2f}' for v in meta['load_1_5_15_end'])} at the end; written to "
          f"{out / 'distributed.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
