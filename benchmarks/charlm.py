"""rnnlab's CharLM + fit vs a plain torch.nn.LSTM character model trained the usual way (not a test).

Same corpus (builtin:pystdlib, same split, same 100k validation characters), same model size, same
optimizer (AdamW, same lr, betas, weight decay, warm-up and cosine decay over the budget), same
gradient clipping, same batch and BPTT length, same wall-clock budget. The baseline is written like the
PyTorch word-language-model example (examples/word_language_model: batchify, get_batch,
repackage_hidden, time-major nn.LSTM, log_softmax + NLLLoss), with its SGD swapped for AdamW.

Reported: validation bits per character at the end of the budget and training characters per second
(evaluation time excluded), for each round; the two are interleaved (order alternates per round).

    PYTHONPATH=src python benchmarks/charlm.py --seconds 90 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time

import torch
import torch.nn as nn

from rnnlab.data import CharVocab, read_corpus, split_ids
from rnnlab.models import CharLMConfig
from rnnlab.train import CharLMRunConfig, CharLMTask, TextDataConfig, TrainConfig, fit, learning_rate, make_optimizer

LN2 = math.log(2.0)


# ----- the baseline, as the PyTorch example writes it ------------------------------------------------------
class RNNModel(nn.Module):
    def __init__(self, ntoken: int, ninp: int, nhid: int, nlayers: int) -> None:
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid, self.nlayers = nhid, nlayers
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.encoder(input)
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(output).view(-1, self.decoder.out_features)
        return torch.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)


def baseline(train_ids, val_ids, ntoken, cfg: CharLMRunConfig, seconds: float) -> dict:
    torch.manual_seed(cfg.train.seed)
    m, d, t = cfg.model, cfg.data, cfg.train
    model = RNNModel(ntoken, m.embed, m.hidden, m.layers)
    optimizer = make_optimizer(model, t)  # the same AdamW (decay on matrices only) as rnnlab's loop
    criterion = nn.NLLLoss()
    train_data, val_data = batchify(train_ids, d.batch), batchify(val_ids, d.batch)
    step, chars, train_time, start = 0, 0, 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.train()
        hidden = model.init_hidden(d.batch)
        for i in range(0, train_data.size(0) - 1, d.seq_len):
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
            t0 = time.perf_counter()
            for g in optimizer.param_groups:
                g["lr"] = learning_rate(t, step, elapsed)
            data, targets = get_batch(train_data, i, d.seq_len)
            hidden = repackage_hidden(hidden)
            model.zero_grad()
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip)
            optimizer.step()
            train_time += time.perf_counter() - t0
            step, chars = step + 1, chars + targets.numel()
    # evaluate(), as in the example
    model.eval()
    total, count = 0.0, 0
    hidden = model.init_hidden(d.batch)
    with torch.no_grad():
        for i in range(0, val_data.size(0) - 1, d.seq_len):
            data, targets = get_batch(val_data, i, d.seq_len)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total += len(targets) * criterion(output, targets).item()
            count += len(targets)
    return {"val_bpc": total / count / LN2, "chars_per_s": chars / train_time, "steps": step}


def rnnlab_run(text, vocab, cfg: CharLMRunConfig, seconds: float) -> dict:
    cfg.train.max_time = seconds
    r = fit(CharLMTask(cfg, text=text, vocab=vocab), cfg.train, None, progress=False, log=lambda s: None)
    return {"val_bpc": r.last["val_bpc"], "chars_per_s": r.units_per_s, "steps": r.step}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=90, help="wall-clock budget per model and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 is steadier on a shared machine)")
    ap.add_argument("--json", default="runs/charlm-benchmark.json", help="where the numbers go (runs/ is git-ignored)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, oneDNN "
          f"{torch.backends.mkldnn.is_available()}, python {platform.python_version()}")

    def config() -> CharLMRunConfig:  # the quick start's defaults; no mid-run evaluations for either model
        cfg = CharLMRunConfig()
        cfg.train.eval_every, cfg.train.patience = 10**9, None
        return cfg

    cfg = config()
    text = read_corpus(cfg.data.data)
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = split_ids(vocab.encode(text), cfg.data.val_fraction)
    val_ids = val_ids[: cfg.data.eval_chars + 1]
    print(f"{cfg.data.data}: {len(text):,} characters; model {cfg.model.rnn.describe()}, "
          f"batch {cfg.data.batch}, BPTT {cfg.data.seq_len}, lr {cfg.train.lr}, {args.seconds:.0f} s each")
    results: dict[str, list[dict]] = {"rnnlab": [], "torch.nn": []}
    for r in range(args.rounds):
        order = ["rnnlab", "torch.nn"] if r % 2 == 0 else ["torch.nn", "rnnlab"]
        for name in order:
            if name == "rnnlab":
                res = rnnlab_run(text, vocab, config(), args.seconds)
            else:
                res = baseline(train_ids, val_ids, len(vocab), config(), args.seconds)
            results[name].append(res)
            print(f"round {r + 1}  {name:9s} val bpc {res['val_bpc']:.3f}  {res['chars_per_s']:8.0f} chars/s  "
                  f"{res['steps']} steps", flush=True)
    med = {n: {k: statistics.median(x[k] for x in v) for k in ("val_bpc", "chars_per_s")} for n, v in results.items()}
    ratio = med["rnnlab"]["chars_per_s"] / med["torch.nn"]["chars_per_s"]
    print("\n| model | val bits/char | chars/s |\n|---|---|---|")
    for n in ("rnnlab", "torch.nn"):
        print(f"| {n} | {med[n]['val_bpc']:.3f} | {med[n]['chars_per_s']:,.0f} |")
    print(f"\nchars/s ratio rnnlab / torch.nn = {ratio:.2f} (target >= 1.0); "
          f"bpc difference = {med['rnnlab']['val_bpc'] - med['torch.nn']['val_bpc']:+.3f} (target <= +0.02)")
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"seconds": args.seconds, "rounds": results, "median": med, "ratio": ratio}, f, indent=1)


if __name__ == "__main__":
    main()
