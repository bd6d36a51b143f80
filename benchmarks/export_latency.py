"""Latency of the exported CharLM step against eager rnnlab, per generated character (issue 13, README "Deploy").

Generation feeds one character at a time with the state carried: each engine runs the same loop of N steps at
batch 1 from the same prime state, picking the most likely next character (temperature 0, so every engine
generates the same text and the time is the network's, not a sampler's):

    eager   CharLM(x (1, 1), state=..., return_state=True) under torch.no_grad, eval, backend "auto" (the way
            CharLM.generate and `rnnlab sample` step it)
    onnx    the file `rnnlab export RUN --format onnx` writes (rnnlab.export of cli.export.CharLMStep: ONNX's LSTM
            operator), in onnxruntime, state fed back as numpy arrays
    pt2     the file `--format pt2` writes (torch.export: rnnlab's fused operator), `.module()` under no_grad

The engines alternate within each repeat (eager, onnx, pt2, eager, ...), so a change of machine load hits them
alike; the result is the median over repeats of each engine's milliseconds per character, with the load average
before and after. Threads: torch.set_num_threads(N) and onnxruntime's intra_op_num_threads=N (inter-op 1).

    python -m benchmarks.export_latency                      # default CharLM (LSTM 1 x 256, embed 64, 222 chars)
    python -m benchmarks.export_latency --threads 1 --cell gru --repeats 9
    python -m benchmarks.export_latency --variants layer_norm    # ONNX: a Scan over the step (export_loop.py)
    python -m benchmarks.export_latency --quick              # seconds; numbers meaningless

Prints one table and writes JSON (--out). Needs onnx and onnxruntime (pip install 'rnnlab[onnx]').
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import rnnlab
from rnnlab.cli.export import CharLMStep
from rnnlab.models import CharLMConfig, RecurrentConfig

ENGINES = ("eager", "onnx", "pt2")


def cpu_name() -> str:
    """The CPU's model name and whether it has AVX-512 (what the numbers depend on)."""
    name, flags = platform.processor() or "?", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = line
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores" + (", AVX-512" if "avx512f" in flags else "")


def build(cell: str, hidden: int, layers: int, vocab: int, variants: tuple[str, ...] = ()) -> rnnlab.CharLM:
    torch.manual_seed(0)
    config = CharLMConfig(vocab_size=vocab, embed=64,
                          rnn=RecurrentConfig(cell=cell, hidden_size=hidden, num_layers=layers, init="orthogonal",
                                              **{v: True for v in variants}))
    return rnnlab.CharLM(config).eval()


def zero_state(model) -> list[torch.Tensor]:
    rnn = model.rnn
    sizes = [rnn.cell_config.state_size, rnn.hidden_size] if rnn.mode == "LSTM" else [rnn.hidden_size]
    return [torch.zeros(rnn.num_layers * rnn.num_directions, 1, n) for n in sizes]


def export_files(model, folder: Path) -> dict[str, Path]:
    """The two files `rnnlab export` writes for this model (same wrapper, dims and names as cli/export.py)."""
    state = zero_state(model)
    example = (torch.zeros(2, 8, dtype=torch.long), *[s.expand(-1, 2, -1).contiguous() for s in state])
    dims = [{0: "B", 1: "T"}] + [{1: "B"}] * len(state)
    names = ["logits", "h_n", "c_n"][: 1 + len(state)]
    files = {}
    for fmt in ("onnx", "pt2"):
        files[fmt] = folder / f"lm.{fmt}"
        rnnlab.export(CharLMStep(model), example, files[fmt], fmt, dims=dims, output_names=names)
    return files


def runners(model, files: dict[str, Path], threads: int) -> dict:
    """engine -> step(ids (1, 1) int64 numpy, state list of numpy) -> (logits (C,) numpy, new state)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(files["onnx"]), options, providers=["CPUExecutionProvider"])
    in_names = [i.name for i in session.get_inputs()]
    program = torch.export.load(str(files["pt2"])).module()

    def eager(ids, state):
        logits, _, new = model(ids, state=tuple(state) if len(state) == 2 else state[0], return_state=True)
        return logits[0, -1], list(new) if isinstance(new, tuple) else [new]

    def onnx(ids, state):
        logits, *new = session.run(None, dict(zip(in_names, [ids, *state])))
        return logits[0, -1], new

    def pt2(ids, state):
        logits, *new = program(ids, *state)
        return logits[0, -1], new

    return {"eager": (eager, torch.from_numpy, lambda t: t), "onnx": (onnx, lambda a: a, torch.from_numpy),
            "pt2": (pt2, torch.from_numpy, lambda t: t)}


def generate(engine, state0: list[torch.Tensor], first: int, steps: int) -> tuple[float, list[int]]:
    """Seconds for `steps` greedy steps from `first` and state0, and the ids generated."""
    step, to_engine, to_torch = engine
    state = [to_engine(s.numpy().copy()) for s in state0]
    nxt, out = first, []
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(steps):
            logits, state = step(to_engine(np.array([[nxt]], dtype=np.int64)), state)
            nxt = int(to_torch(logits).argmax())
            out.append(nxt)
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn_tanh"])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--variants", nargs="*", default=[], choices=["peephole", "coupled", "layer_norm"],
                   help="LSTM variants (ONNX then holds a Scan over the cell's step instead of ONNX's LSTM operator)")
    p.add_argument("--vocab", type=int, default=222, help="vocabulary size (222: the default corpus')")
    p.add_argument("--chars", type=int, default=400, help="characters generated per engine per repeat")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="a smoke run: 20 characters, 2 repeats")
    p.add_argument("--out", default="benchmarks/results/export_latency.json")
    args = p.parse_args(argv)
    if args.quick:
        args.chars, args.repeats = 20, 2
    torch.set_num_threads(args.threads)
    model = build(args.cell, args.hidden, args.layers, args.vocab, tuple(args.variants))
    with tempfile.TemporaryDirectory() as folder:
        engines = runners(model, export_files(model, Path(folder)), args.threads)
        state0 = zero_state(model)
        texts = {name: generate(e, state0, 1, 20)[1] for name, e in engines.items()}  # warm-up, and a check
        if len({tuple(t) for t in texts.values()}) != 1:
            raise RuntimeError(f"export_latency: the engines generated different text: {texts}")
        load_before = os.getloadavg()
        per_char = {name: [] for name in engines}
        for _ in range(args.repeats):
            for name, e in engines.items():
                seconds, _ = generate(e, state0, 1, args.chars)
                per_char[name].append(1e3 * seconds / args.chars)
        load_after = os.getloadavg()
    median = {name: statistics.median(v) for name, v in per_char.items()}
    result = {
        "model": f"CharLM {args.cell}{''.join('+' + v for v in args.variants)} {args.layers} x {args.hidden}, embed 64, "
                 f"vocabulary {args.vocab}",
        "backend_eager": model.rnn.backend_for(grad=False).name, "cpu": cpu_name(), "threads": args.threads,
        "torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__,
        "chars": args.chars, "repeats": args.repeats, "load_before": load_before, "load_after": load_after,
        "ms_per_char_median": median, "ms_per_char_all": per_char,
        "speedup_vs_eager": {n: median["eager"] / m for n, m in median.items()},
    }
    print(f"{result['model']}; {result['cpu']}; {args.threads} threads; eager backend {result['backend_eager']}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'engine':8} {'ms/char (median)':>17} {'min':>7} {'max':>7} {'x eager':>8}")
    for name in engines:
        v = per_char[name]
        print(f"{name:8} {median[name]:17.3f} {min(v):7.3f} {max(v):7.3f} {result['speedup_vs_eager'][name]:8.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
