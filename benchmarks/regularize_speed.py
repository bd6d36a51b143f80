"""What recurrent regularization costs in training: each regularizer and all four against the same layer without.

    python -m benchmarks.regularize_speed                     # lstm, gru, lstm-ln at S1-S4 (a few minutes)
    python -m benchmarks.regularize_speed --quick             # a smoke run (seconds)

Per (config, shape), these modules are timed interleaved in the same process (benchmarks.layers'
measure_interleaved: warm-up, then --rounds rounds in a shuffled order; training = forward + backward of the
output into dx and every parameter gradient), all in training mode so every forward draws its masks:
    fused                 the rnnlab layer, backend="fused", no regularizer (the reference of the ratios)
    +input, +recurrent, +zoneout, +weight, +all4    the same layer with input_dropout=0.25,
                          recurrent_dropout=0.25, zoneout=0.1 (LSTM: c and h), weight_drop=0.5, or all four
    torch.nn              torch.nn.LSTM / GRU of the same size (oneDNN for the LSTM)
    torch.nn+WeightDrop   (LSTM, GRU) what users write today: AWD-LSTM's WeightDrop, a torch.nn layer whose
                          W_hh is replaced by dropout(W_hh_raw) before each forward (torch.func.functional_call)
Reported: the median over rounds of each module's time divided by the plain fused layer's in the same round
("x fused"), and by torch.nn's ("x torch.nn"). Differences under ~15 % are noise on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import rnnlab
from benchmarks.layers import SHAPES, _make_step, measure_interleaved
from rnnlab.kernels.fused import compiled

CONFIGS = {"lstm": ("lstm", {}), "gru": ("gru", {}), "lstm-ln": ("lstm", {"layer_norm": True})}
REGULARIZERS = {
    "+input": dict(input_dropout=0.25),
    "+recurrent": dict(recurrent_dropout=0.25),
    "+zoneout": dict(zoneout=0.1),
    "+weight": dict(weight_drop=0.5),
    "+all4": dict(input_dropout=0.25, recurrent_dropout=0.25, zoneout=0.1, weight_drop=0.5),
}
_RNNLAB = {"lstm": rnnlab.LSTM, "gru": rnnlab.GRU}
_TORCH = {"lstm": nn.LSTM, "gru": nn.GRU}


class WeightDrop(nn.Module):
    """AWD-LSTM's WeightDrop as users write it on torch.nn today: DropConnect on weight_hh_l0 per forward."""

    def __init__(self, rnn: nn.Module, p: float) -> None:
        super().__init__()
        self.rnn, self.p = rnn, p
        self.weight_hh_raw = nn.Parameter(rnn.weight_hh_l0.detach().clone())
        rnn.weight_hh_l0.requires_grad_(False)

    def forward(self, x):
        w = F.dropout(self.weight_hh_raw, self.p, self.training)
        return torch.func.functional_call(self.rnn, {"weight_hh_l0": w}, (x,))


def modules(family: str, opts: dict, H: int) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    out = {"fused": _RNNLAB[family](H, H, backend="fused", **opts)}
    for name, reg in REGULARIZERS.items():
        out[name] = _RNNLAB[family](H, H, backend="fused", **opts, **reg)
        out[name].load_state_dict(out["fused"].state_dict())
    if not opts:
        out["torch.nn"] = _TORCH[family](H, H)
        out["torch.nn+WeightDrop"] = WeightDrop(_TORCH[family](H, H), 0.5)
    return out


def bench(config: str, shape: str, args, rng) -> list[dict]:
    T, B, H = args.dims[shape]
    family, opts = CONFIGS[config]
    mods = modules(family, opts, H)
    g = torch.Generator().manual_seed(1)
    x, dy = torch.randn(T, B, H, generator=g), torch.randn(T, B, H, generator=g)
    steps = {name: _make_step(m, x, dy, "train") for name, m in mods.items()}
    times, reps = measure_interleaved(steps, args.rounds, args.warmup, args.min_time_ms, rng, lambda: None)
    rows = []
    for name in mods:
        vs_fused = [a / b for a, b in zip(times[name], times["fused"])]
        row = dict(config=config, shape=shape, T=T, B=B, H=H, module=name, ms=statistics.median(times[name]),
                   x_fused=statistics.median(vs_fused), reps=reps, rounds=args.rounds)
        if "torch.nn" in times:
            row["x_torch"] = statistics.median(a / b for a, b in zip(times[name], times["torch.nn"]))
        rows.append(row)
        print(f"{config:8s} {shape} {name:20s} {row['ms']:8.2f} ms  x fused {row['x_fused']:.2f}"
              + (f"  x torch.nn {row['x_torch']:.2f}" if "x_torch" in row else ""), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    names = ["+input", "+recurrent", "+zoneout", "+weight", "+all4", "torch.nn", "torch.nn+WeightDrop"]
    lines = ["| config | shape | fused ms | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for config in CONFIGS:
        for shape in SHAPES:
            rs = {r["module"]: r for r in rows if r["config"] == config and r["shape"] == shape}
            if not rs:
                continue
            cells = [f"{rs[n]['x_fused']:.2f}" if n in rs else "" for n in names]
            lines.append(f"| {config} | {shape} | {rs['fused']['ms']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--shapes", default="S1,S2,S3,S4")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min-time-ms", type=float, default=150.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="benchmarks/results/regularize_speed.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.dims = dict(SHAPES)
    if args.quick:
        args.dims = {k: (8, b, min(h, 32)) for k, (t, b, h) in SHAPES.items()}
        args.rounds, args.warmup, args.min_time_ms = 2, 1, 1.0
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"compiled loops: {compiled.status()[1]}", file=sys.stderr)
    rng = random.Random(0)
    rows = []
    for config in args.configs.split(","):
        for shape in args.shapes.split(","):
            rows += bench(config, shape, args, rng)
    print(table(rows))
    if not args.quick:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
