"""Layer benchmark: every rnnlab backend against the torch.nn module of the same family, same process.

    python -m benchmarks.layers                                   # S1-S4, every config, every backend, CPU
    python -m benchmarks.layers --quick --configs lstm --shapes S3 # a smoke run (seconds)
    python -m benchmarks.layers --device cuda --shapes S1,S2,S3,S4,G5 --dtype bfloat16

Shapes and method are those of shared/BENCHMARKS.md: one layer, unidirectional, I = H.

What is timed
    "train"  forward + backward: x requires grad and `torch.autograd.grad(output, [x, *parameters], dy)`
             computes dx and every parameter gradient (no .grad accumulation, so nothing to zero);
             dy is a fixed random tensor made once per shape. The LSTM's final states are not
             differentiated (as inside a stack where only the output sequence flows on).
    "infer"  forward under torch.no_grad().
Per (config, shape, mode) the torch.nn baseline and every candidate backend are warmed up, then timed in
`rounds` rounds; each round runs every module once, in an order shuffled per round (A B C, C A B, ...),
each timing being `reps` back-to-back runs (reps chosen in warm-up so that a timing of the fastest module
lasts at least --min-time-ms). CUDA is synchronised before each clock read. Reported: the median per-run
time of each module, and the median over rounds of the per-round ratio candidate / baseline (ratios taken
within a round cancel much of the drift of a shared, noisy machine). Differences under ~15 % are noise
on the 2-core machines (BENCHMARKS.md). A timing never fails the run: errors become rows with a reason.

The baseline of a row is the torch.nn module of the same *family* and sizes: torch.nn.LSTM for every LSTM
variant (torch.nn.LSTM(proj_size=P) for lstm-proj), torch.nn.GRU for the GRU variants, torch.nn.RNN for the
RNN. So a variant's ratio is "what the variant costs over torch's plain cell", as the issue asks.

Memory ("saved MiB", training only, measured in a separate untimed forward)
    The bytes of the tensors autograd keeps for backward, seen through
    `torch.autograd.graph.saved_tensors_hooks` during the forward: every tensor the graph saves
    (ctx.save_for_backward of custom Functions, the inputs/outputs built-in ops save, oneDNN's/cuDNN's
    reserve workspace that the fused RNN ops return and save). Each distinct storage is counted once, at
    its full size (a saved view keeps its whole base alive), deduplicated by
    `untyped_storage().data_ptr()`. Storages of the module's parameters and of the input x are excluded:
    they are alive whether or not a graph exists.
    It does NOT measure: transient workspace allocated and freed inside forward or backward, the
    gradients themselves, anything a custom autograd.Function keeps as a plain ctx attribute instead of
    save_for_backward, nor allocator overhead / fragmentation. The output sequence is counted when an op
    saves it (it is alive anyway in a stack, as the next layer's input).
    On CUDA also "peak MiB": torch.cuda.max_memory_allocated over one training step (forward + backward)
    minus the memory allocated just before it, i.e. the step's own high-water mark including transient
    workspace.

Output: a table on stdout (progress on stderr), and with --out PATH a JSON file (meta + one row per
config x shape x mode x backend, with per-round times) and a CSV beside it (same rows, scalar fields).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gc
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

import rnnlab
from rnnlab import kernels
from rnnlab.kernels.fused import compiled

__all__ = ["CONFIGS", "DEFAULT_CONFIGS", "SHAPES", "main"]

# name: (T, B, H); I = H. G5 is for GPU runs only.
SHAPES: dict[str, tuple[int, int, int]] = {
    "S1": (100, 32, 256),
    "S2": (100, 64, 512),
    "S3": (512, 8, 128),
    "S4": (50, 1, 256),
    "G5": (100, 256, 1024),
}
GPU_ONLY_SHAPES = ("G5",)

_REG4 = {"input_dropout": 0.25, "recurrent_dropout": 0.25, "zoneout": 0.1, "weight_drop": 0.5}

# name: (family, rnnlab keyword options); proj_size "half" means P = H // 2.
CONFIGS: dict[str, tuple[str, dict]] = {
    "rnn": ("rnn", {}),
    "rnn-ln": ("rnn", {"layer_norm": True}),
    "gru": ("gru", {}),
    "gru-ln": ("gru", {"layer_norm": True}),
    "lstm": ("lstm", {}),
    "lstm-peephole": ("lstm", {"peephole": True}),
    "lstm-coupled": ("lstm", {"coupled": True}),
    "lstm-ln": ("lstm", {"layer_norm": True}),
    "lstm-proj": ("lstm", {"proj_size": "half"}),
    "lstm-all": ("lstm", {"peephole": True, "coupled": True, "layer_norm": True}),
    # all four recurrent regularizers (layers/regularize.py), training mode; benchmarks/regularize_speed.py
    # times each one against the same layer without
    "lstm-reg4": ("lstm", dict(_REG4)),
    "gru-reg4": ("gru", dict(_REG4)),
    "lstm-ln-reg4": ("lstm", {"layer_norm": True, **_REG4}),
}
DEFAULT_CONFIGS = [
    "rnn", "gru", "gru-ln", "lstm", "lstm-peephole", "lstm-coupled", "lstm-ln", "lstm-proj", "lstm-all",
]
MODES = ("train", "infer")

_RNNLAB = {"rnn": rnnlab.RNN, "gru": rnnlab.GRU, "lstm": rnnlab.LSTM}
_TORCH = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

QUICK_T = 8  # --quick shortens every sequence to this many steps
BASELINE = "torch.nn"

# Scalar fields of a row, in CSV column order (the JSON rows also carry the per-round lists).
FIELDS = [
    "config", "family", "shape", "T", "B", "I", "H", "proj_size", "device", "dtype", "mode", "backend",
    "status", "reason", "ran_backend", "ran_reason", "auto_backend", "auto_reason", "baseline",
    "ms", "baseline_ms", "ratio", "ratio_min", "ratio_max", "rounds", "reps",
    "saved_mib", "baseline_saved_mib", "saved_ratio",
    "cuda_peak_mib", "baseline_cuda_peak_mib", "cuda_peak_ratio",
]


# ----- building -------------------------------------------------------------------------------------------
def _options(config: str, H: int) -> tuple[str, dict, int]:
    family, opts = CONFIGS[config]
    opts = dict(opts)
    P = 0
    if opts.get("proj_size") == "half":
        P = H // 2
        opts["proj_size"] = P
    return family, opts, P


def _baseline(family: str, I: int, H: int, P: int, device, dtype) -> nn.Module:
    kw = {"proj_size": P} if P else {}
    return _TORCH[family](I, H, device=device, dtype=dtype, **kw)


def _baseline_name(family: str, P: int) -> str:
    return f"torch.nn.{_TORCH[family].__name__}" + (f"(proj_size={P})" if P else "")


def _candidate(family: str, opts: dict, I: int, H: int, backend: str, device, dtype, init_from: nn.Module):
    """The rnnlab layer with `backend`, or raises ValueError when the backend refuses the configuration."""
    layer = _RNNLAB[family](I, H, device=device, dtype=dtype, backend=backend, **opts)
    try:  # torch's weights where the shapes agree (plain cells): same numbers, same work
        layer.load_state_dict(init_from.state_dict(), strict=False)
    except RuntimeError:
        pass
    return layer


def _grad_context(mode: str):
    return torch.enable_grad() if mode == "train" else torch.no_grad()


def _make_step(module: nn.Module, x: torch.Tensor, dy: torch.Tensor, mode: str):
    """A no-argument callable running one forward (+ backward for "train")."""
    params = [p for p in module.parameters() if p.requires_grad]
    if mode == "train":
        xg = x.detach().requires_grad_()

        def step():
            y = module(xg)[0]
            torch.autograd.grad(y, [xg, *params], dy)
    else:

        def step():
            with torch.no_grad():
                module(x)

    return step


# ----- measuring ------------------------------------------------------------------------------------------
def _sync_for(device: torch.device):
    if device.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def _time(step, reps: int, sync) -> float:
    """Milliseconds per run of `reps` back-to-back runs."""
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    sync()
    return (time.perf_counter() - t0) * 1e3 / reps


def measure_interleaved(steps: dict, rounds: int, warmup: int, min_time_ms: float, rng: random.Random, sync):
    """Warm up, pick reps, then `rounds` rounds of every step in a shuffled order.

    Returns ({name: [ms per run, one per round]}, reps)."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    sync()
    single = {name: _time(step, 1, sync) for name, step in steps.items()}
    fastest = max(min(single.values()), 1e-3)
    reps = max(1, min(1000, math.ceil(min_time_ms / fastest)))
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        order = list(steps)
        rng.shuffle(order)
        for name in order:
            times[name].append(_time(steps[name], reps, sync))
    return times, reps


def saved_for_backward_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves for backward in one forward of `module` on `x`
    (x requires grad), excluding the storages of the module's parameters and of x. See the module docstring."""
    xg = x.detach().requires_grad_()
    exclude = {p.untyped_storage().data_ptr() for p in module.parameters()}
    exclude.add(xg.untyped_storage().data_ptr())
    seen: dict[int, int] = {}

    def pack(t):
        try:
            storage = t.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # tensors without a plain storage (e.g. wrappers)
            key, size = -id(t), t.numel() * t.element_size()
        if size and key not in exclude:
            seen.setdefault(key, size)
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(xg)
    del out
    return sum(seen.values())


def cuda_step_peak_bytes(step) -> int:
    """torch.cuda.max_memory_allocated over one call of `step`, minus what was allocated before it."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def _or_none(measure, *args):
    """A memory measurement, or None (reported as "-") when it fails: memory never stops the timings."""
    try:
        return measure(*args)
    except Exception as e:  # noqa: BLE001
        print(f"  memory measurement failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return None


def _mib(n: int | None) -> float | None:
    return None if n is None else n / 2**20


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


# ----- one (config, shape) --------------------------------------------------------------------------------
def bench_config_shape(config, shape, backends, modes, args, device, dtype, rng, inputs) -> list[dict]:
    T, B, H = args.shape_dims[shape]
    I = H
    family, opts, P = _options(config, H)
    sync = _sync_for(device)
    base_row = dict(
        config=config, family=family, shape=shape, T=T, B=B, I=I, H=H, proj_size=P, device=str(device),
        dtype=str(dtype).replace("torch.", ""), baseline=_baseline_name(family, P),
    )
    x = inputs["x"]
    R = P or H
    if ("dy", R) not in inputs:  # the output gradient, once per shape and output width
        g = torch.Generator(device="cpu").manual_seed(args.seed + 1)
        inputs["dy", R] = torch.randn(T, B, R, generator=g).to(device=device, dtype=dtype)
    dy = inputs["dy", R]

    torch.manual_seed(args.seed)
    baseline = _baseline(family, I, H, P, device, dtype)
    candidates: dict[str, nn.Module] = {}
    refused: dict[str, str] = {}
    for name in backends:
        try:
            candidates[name] = _candidate(family, opts, I, H, name, device, dtype, baseline)
        except ValueError as e:
            refused[name] = str(e)

    # Which backend auto runs here, and why, per mode (a rule may depend on whether gradients are recorded).
    auto_layer = candidates["auto"] if "auto" in candidates else _candidate(
        family, opts, I, H, "auto", device, dtype, baseline
    )
    auto_choice = {}
    for mode in modes:
        with _grad_context(mode):
            try:
                c = auto_layer.backend_for(device, grad=mode == "train")
                auto_choice[mode] = (c.name, c.reason)
            except ValueError as e:
                auto_choice[mode] = (None, str(e))

    rows = []
    for mode in modes:
        mode_row = dict(base_row, mode=mode, auto_backend=auto_choice[mode][0], auto_reason=auto_choice[mode][1])
        for name, reason in refused.items():
            rows.append(dict(mode_row, backend=name, status="skipped", reason=reason))

        steps = {BASELINE: _make_step(baseline, x, dy, mode)}
        ran = {}
        for name, layer in candidates.items():
            step = _make_step(layer, x, dy, mode)
            try:  # probe once: a backend may refuse only at forward time (e.g. per grad mode)
                step()
            except ValueError as e:
                rows.append(dict(mode_row, backend=name, status="skipped", reason=str(e)))
                continue
            except Exception as e:  # noqa: BLE001 - report, never fail the benchmark
                rows.append(dict(mode_row, backend=name, status="error", reason=f"{type(e).__name__}: {e}"))
                continue
            steps[name] = step
            c = layer.backend_for(device, grad=mode == "train")
            ran[name] = (c.name, c.reason)
        if len(steps) == 1:
            continue

        gc.collect()
        try:
            times, reps = measure_interleaved(steps, args.rounds, args.warmup, args.min_time_ms, rng, sync)
        except Exception as e:  # noqa: BLE001
            for name in ran:
                rows.append(dict(mode_row, backend=name, status="error", reason=f"{type(e).__name__}: {e}"))
            continue

        base_saved = base_peak = None
        mem = {}
        if mode == "train":
            base_saved = _or_none(saved_for_backward_bytes, baseline, x)
            mem = {name: _or_none(saved_for_backward_bytes, candidates[name], x) for name in ran}
            if device.type == "cuda":
                base_peak = _or_none(cuda_step_peak_bytes, steps[BASELINE])
                peaks = {name: _or_none(cuda_step_peak_bytes, steps[name]) for name in ran}
        base_ms = statistics.median(times[BASELINE])
        for name, (ran_name, ran_reason) in ran.items():
            ratios = [c / b for c, b in zip(times[name], times[BASELINE])]
            ms = statistics.median(times[name])
            row = dict(
                mode_row, backend=name, status="ok", reason="", ran_backend=ran_name, ran_reason=ran_reason,
                ms=ms, baseline_ms=base_ms, ratio=statistics.median(ratios), ratio_min=min(ratios),
                ratio_max=max(ratios), rounds=args.rounds, reps=reps,
                round_ms=times[name], baseline_round_ms=times[BASELINE], round_ratios=ratios,
            )
            if mode == "train":
                row.update(
                    saved_mib=_mib(mem[name]), baseline_saved_mib=_mib(base_saved),
                    saved_ratio=_ratio(mem[name], base_saved),
                )
                if device.type == "cuda":
                    row.update(
                        cuda_peak_mib=_mib(peaks[name]), baseline_cuda_peak_mib=_mib(base_peak),
                        cuda_peak_ratio=_ratio(peaks[name], base_peak),
                    )
            rows.append(row)
    order = {name: k for k, name in enumerate(backends)}
    rows.sort(key=lambda r: (MODES.index(r["mode"]), order[r["backend"]]))
    return [{f: r.get(f) for f in FIELDS} | {k: v for k, v in r.items() if k not in FIELDS} for r in rows]


# ----- reporting ------------------------------------------------------------------------------------------
def environment(args, device: torch.device, dtype) -> dict:
    meta = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "rnnlab": rnnlab.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "mkl_available": torch.backends.mkl.is_available(),
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "backends": list(kernels.backend_names()),
        "auto_order": "per configuration and grad mode: rnnlab.kernels.auto.preference (auto_backend per row)",
        "shapes": {s: dict(zip("TBH", args.shape_dims[s])) for s in args.shapes},
        "configs": args.configs,
        "modes": args.modes,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "min_time_ms": args.min_time_ms,
        "quick": args.quick,
        "seed": args.seed,
        "argv": args.argv,
        "cpu": _cpu_name(),
        "loops_isa": compiled.isa(),
        "emulate": args.emulate,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "loops_vector_bits": compiled.vector_bits(),
        "loops": compiled.status()[1],
    }
    try:  # which rnnlab was measured; absent outside a git checkout
        meta["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        meta["git_commit"] = None
    if device.type == "cuda":
        meta.update(
            device_name=torch.cuda.get_device_name(device),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
        )
    return meta


def _cpu_name() -> str:
    """The CPU's model name and its widest vector ISA (from /proc/cpuinfo where there is one)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split()
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE" if "sse2" in flags else "?"
    return f"{name} ({widest})"


def header(meta: dict) -> str:
    lines = [
        f"rnnlab {meta['rnnlab']} (git {meta['git_commit']}) layer benchmark  {meta['date']}",
        f"torch {meta['torch']}  python {meta['python']}  {meta['platform']}",
        f"device {meta['device']}" + (f" ({meta['device_name']}, CUDA {meta['cuda']}, cuDNN {meta['cudnn']})"
                                      if "device_name" in meta else "")
        + f"  dtype {meta['dtype']}  threads {meta['threads']}"
        f"  oneDNN(mkldnn) available {meta['mkldnn_available']}  MKL available {meta['mkl_available']}",
        f"cpu {meta['cpu']}  compiled loops: built for {meta['loops_isa']} ({meta['loops_vector_bits']}-bit vectors; "
        f"RNNLAB_ISA=avx512|avx2|portable forces one)",
        f"torch's kernels: ATen {meta['torch_cpu_capability']}" + (
            f"; emulating a CPU with {meta['emulate']} only (--emulate: oneDNN, MKL, ATen and rnnlab's loops limited "
            f"to it)" if meta.get("emulate") else ""),
        f"backends {', '.join(meta['backends'])}  (auto: the rule in rnnlab/kernels/auto.py, per configuration and grad mode)",
        f"{meta['rounds']} rounds after {meta['warmup']} warm-up, interleaved in shuffled order, "
        f">= {meta['min_time_ms']} ms per timing" + ("  [--quick: T shortened, numbers meaningless]"
                                                     if meta["quick"] else ""),
        "ms = median per run; xnn = median of per-round ratios to the torch.nn module of the same family "
        "(< 1 faster); saved = MiB kept for backward (excl. parameters and input)",
    ]
    return "\n".join(lines)


def _fmt(v, spec: str, width: int) -> str:
    return f"{v:{width}{spec}}" if isinstance(v, (int, float)) else f"{'-':>{width}}"


def _pair(value, ratio, value_width: int = 10) -> str:
    """One table cell: a value and its ratio to torch.nn."""
    return f"| {_fmt(value, '.3f' if value_width == 10 else '.2f', value_width)} {_fmt(ratio, '.2f', 5)} "


def _short(reason: str, width: int = 100) -> str:
    """The registry's refusal "X: backend 'b' cannot serve this configuration: WHY; use ..." -> WHY."""
    if "cannot serve this configuration: " in reason:
        reason = reason.split("cannot serve this configuration: ", 1)[1].split("; ", 1)[0]
    return reason if len(reason) <= width else reason[: width - 3] + "..."


def table(rows: list[dict], modes: list[str], cuda: bool) -> str:
    """Rows config x shape (the torch.nn baseline first, then each backend); columns per mode and memory."""
    memory = [("saved", "saved_mib", "baseline_saved_mib", "saved_ratio")] if "train" in modes else []
    if memory and cuda:
        memory.append(("peak", "cuda_peak_mib", "baseline_cuda_peak_mib", "cuda_peak_ratio"))
    head = f"{'config':<14}{'shape':<6}{'backend':<18}"
    head += "".join(f"| {m + ' ms':>10} {'xnn':>5} " for m in modes)
    head += "".join(f"| {label + ' MiB':>9} {'xnn':>5} " for label, *_ in memory)
    lines = [head, "-" * len(head)]

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["config"], r["shape"]), []).append(r)
    for (config, shape), grp in groups.items():
        ok = {(r["backend"], r["mode"]): r for r in grp if r["status"] == "ok"}
        prefix = f"{config:<14}{shape:<6}"
        if ok:  # the baseline line: its numbers are in every ok row of the same mode
            base = {r["mode"]: r for r in ok.values()}
            line = f"{prefix}{BASELINE:<18}"
            line += "".join(_pair(base[m]["baseline_ms"], 1.0) if m in base else _pair(None, None) for m in modes)
            train = base.get("train")
            line += "".join(_pair(train and train[b], 1.0 if train else None, 9) for _, _, b, _ in memory)
            lines.append(line)
            prefix = " " * 20
        for name in dict.fromkeys(r["backend"] for r in grp):
            per_mode = [r for r in grp if r["backend"] == name]
            label = name
            if name == "auto":
                ran = list(dict.fromkeys(r["ran_backend"] for r in per_mode if r.get("ran_backend")))
                label = "auto->" + "/".join(ran) if ran else name
            bad = [r for r in per_mode if r["status"] != "ok"]
            if len(bad) == len(per_mode):
                lines.append(f"{prefix}{label:<18}| {bad[0]['status']}: {_short(bad[0]['reason'])}")
            else:
                line = f"{prefix}{label:<18}"
                for m in modes:
                    r = ok.get((name, m))
                    line += _pair(r and r["ms"], r and r["ratio"])
                r = ok.get((name, "train"))
                line += "".join(_pair(r and r[v], r and r[q], 9) for _, v, _, q in memory)
                if bad:
                    line += f"  ({bad[0]['mode']} {bad[0]['status']}: {_short(bad[0]['reason'], 60)})"
                lines.append(line)
            prefix = " " * 20
    return "\n".join(lines)


def auto_summary(rows: list[dict]) -> str:
    """What auto chose per config (and mode where it differs), with its reason."""
    seen: dict[str, dict[str, tuple]] = {}
    for r in rows:
        seen.setdefault(r["config"], {})[r["mode"]] = (r["auto_backend"], r["auto_reason"])
    lines = ["auto's choice:"]
    for config, by_mode in seen.items():
        if len(set(by_mode.values())) == 1:
            name, reason = next(iter(by_mode.values()))
            lines.append(f"  {config:<14} {str(name):<10} {reason}")
        else:
            for mode, (name, reason) in by_mode.items():
                lines.append(f"  {config + ' ' + mode:<14} {str(name):<10} {reason}")
    return "\n".join(lines)


def write_outputs(path: Path, meta: dict, rows: list[dict]) -> tuple[Path, Path]:
    path = Path(path)
    json_path = path if path.suffix == ".json" else path.with_name(path.name + ".json")
    csv_path = json_path.with_suffix(".csv")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    with csv_path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return json_path, csv_path


# ----- CLI ------------------------------------------------------------------------------------------------
def _csv_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.layers",
        description="Time rnnlab's recurrent layers (every registered backend) against torch.nn, interleaved.",
    )
    p.add_argument("--shapes", default="S1,S2,S3,S4",
                   help=f"comma list of {', '.join(SHAPES)} (G5 only with --device cuda); default S1-S4")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help=f"comma list of {', '.join(CONFIGS)}; default: {', '.join(DEFAULT_CONFIGS)}")
    p.add_argument("--backends", default=None,
                   help="comma list of registered backends (default: all, auto included): "
                   + ", ".join(kernels.backend_names()))
    p.add_argument("--mode", default="train,infer", help="comma list of train, infer")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 7; 2 with --quick)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up runs per module (default 2; 1 with --quick)")
    p.add_argument("--min-time-ms", type=float, default=None,
                   help="repeat a run within one timing until it lasts this long (default 5; 0 with --quick)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2, as BENCHMARKS.md)")
    p.add_argument("--emulate", choices=sorted(EMULATE), default=None,
                   help="measure as on a CPU with only this ISA: rnnlab's loops (RNNLAB_ISA), oneDNN, MKL and ATen's "
                        "kernels are all limited to it (the run restarts itself with their environment variables)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: T shortened to {QUICK_T}, few rounds; numbers are meaningless")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write PATH(.json) and the same name with .csv")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)

    args.shapes = _csv_list(args.shapes)
    for s in args.shapes:
        if s not in SHAPES:
            p.error(f"unknown shape {s!r}; expected one of {', '.join(SHAPES)}")
        if s in GPU_ONLY_SHAPES and args.device != "cuda":
            p.error(f"shape {s} is for GPU runs only (use --device cuda)")
    args.configs = _csv_list(args.configs)
    for c in args.configs:
        if c not in CONFIGS:
            p.error(f"unknown config {c!r}; expected one of {', '.join(CONFIGS)}")
    names = kernels.backend_names()
    args.backends = list(names) if args.backends is None else _csv_list(args.backends)
    for b in args.backends:
        if b not in names:
            p.error(f"unknown backend {b!r}; registered: {', '.join(names)}")
    args.modes = _csv_list(args.mode)
    for m in args.modes:
        if m not in MODES:
            p.error(f"unknown mode {m!r}; expected train and/or infer")
    args.modes = [m for m in MODES if m in args.modes]
    if args.rounds is None:
        args.rounds = 2 if args.quick else 7
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.min_time_ms is None:
        args.min_time_ms = 0.0 if args.quick else 5.0
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available in this torch build / machine")
    args.shape_dims = {
        s: ((min(T, QUICK_T) if args.quick else T), B, H) for s, (T, B, H) in SHAPES.items()
    }
    return args


def run(args: argparse.Namespace) -> tuple[dict, list[dict]]:
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    meta = environment(args, device, dtype)
    rng = random.Random(args.seed)
    rows: list[dict] = []
    total = len(args.configs) * len(args.shapes)
    k = 0
    for shape in args.shapes:
        T, B, H = args.shape_dims[shape]
        g = torch.Generator(device="cpu").manual_seed(args.seed)
        inputs = {"x": torch.randn(T, B, H, generator=g).to(device=device, dtype=dtype)}  # once per shape
        for config in args.configs:
            k += 1
            print(f"[{k}/{total}] {config} {shape} (T={T}, B={B}, H={H})", file=sys.stderr, flush=True)
            try:
                got = bench_config_shape(config, shape, args.backends, args.modes, args, device, dtype, rng, inputs)
                rows.extend(got)
                for mode in args.modes:
                    done = [f"{r['backend']} {r['ratio']:.2f}" for r in got
                            if r["mode"] == mode and r["status"] == "ok"]
                    print(f"  {mode} (x torch.nn): {', '.join(done) or '-'}", file=sys.stderr, flush=True)
            except Exception as e:  # noqa: BLE001 - a benchmark reports, it does not fail
                rows.append({f: None for f in FIELDS} | dict(
                    config=config, shape=shape, mode=args.modes[0], backend="*", status="error",
                    reason=f"{type(e).__name__}: {e}"))
                print(f"  error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    return meta, rows


# --emulate: what limits each library to one ISA (read when it loads, hence the restart). oneDNN serves torch.nn's
# LSTM/GRU/RNN, MKL torch's matmuls, ATen's capability its elementwise kernels, RNNLAB_ISA rnnlab's loops.
EMULATE = {
    "avx2": {"RNNLAB_ISA": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "ATEN_CPU_CAPABILITY": "avx2"},
    "portable": {"RNNLAB_ISA": "portable", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                 "ATEN_CPU_CAPABILITY": "default"},
}


def _emulated(args: argparse.Namespace) -> None:
    """Restart this benchmark with --emulate's environment unless it is already in place."""
    if args.emulate is None or os.environ.get("RNNLAB_EMULATE") == args.emulate:
        return
    env = {**os.environ, **EMULATE[args.emulate], "RNNLAB_EMULATE": args.emulate}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.layers", *args.argv], env)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _emulated(args)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        cuda_devices = [torch.device(args.device).index or 0] if args.device == "cuda" else []
        with warnings.catch_warnings(), torch.random.fork_rng(devices=cuda_devices):  # leave the caller's RNG be
            # torch.nn.LSTM(proj_size=P) on the CPU: torch's notice that oneDNN falls back by itself
            warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
            meta, rows = run(args)
    finally:
        torch.set_num_threads(threads_before)
    print(header(meta))
    print()
    print(table(rows, args.modes, args.device == "cuda"))
    print()
    print(auto_summary([r for r in rows if r.get("auto_reason") is not None]))
    if args.out:
        json_path, csv_path = write_outputs(Path(args.out), meta, rows)
        print(f"\nwrote {json_path} and {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
