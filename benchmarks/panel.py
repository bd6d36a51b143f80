"""Many series, one global model: does it beat each series' own seasonal naive? Issue 18's multi-series target.

    python -m benchmarks.panel                                   # builtin:macro: select on validation, then test
    python -m benchmarks.panel --data builtin:grunfeld
    python -m benchmarks.panel --data my.csv --set data.id_column=store data.horizon=14 \
        --candidates last/standard/600 last/meanabs/2400/window
    python -m benchmarks.panel --report                          # the tables from the results already written

Two phases, so that the held-out tails are touched once, at the end:
1. Selection (validation only): every candidate setting x seeds 0, 1, 2, each trained with a step budget (the
   machine's load changes only the seconds); the candidate with the lowest mean best validation MASE (mean over
   the series, then over the seeds) is chosen. No held-out value is read.
2. Test: the chosen candidate's three checkpoints scored on every series' held-out tail: aggregate MASE (mean of
   the per-series MASE), against per-series seasonal naive, naive (m = 1) and Holt-Winters on the same origins,
   the coverage of each model's 80 % intervals (per step ahead, from errors at every origin before the tail:
   train/panel.py) and what `rnnlab forecast` (model auto: per series, by its validation MASE) uses; beside
   them a check that never reads the tails, the intervals calibrated before the validation part covering it.

Each run's result is a JSON file in --out (default benchmarks/results/panel/<data>/); a run whose file exists is
not run again. CPU seconds (process time, both threads) are recorded beside the wall seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.forecast_select import _parse_set  # KEY=JSON overrides, one parser for both studies
from rnnlab.train import fit, forecast_config, load_forecaster
from rnnlab.train.forecast_select import choose, step_offsets
from rnnlab.train.panel import (CALIBRATION_FITS, PanelTask, aggregate, baselines_at, calibration_errors,
                                calibration_origins, network_at, panel_baselines, panel_forecasts, score_series)

# name -> overrides: residual x per-series scaling x step budget (the preset's own setting is one of them)
CANDIDATES = {f"{r}/{s}/{n}": {"model.residual": r, "data.scaling": s, "train.max_steps": n, "train.max_time": None}
              for r in ("last", "seasonal") for s in ("standard", "meanabs") for n in (600, 2400)}
CANDIDATES.update({f"last/{s}/{n}/window": {"model.residual": "last", "data.scaling": s, "model.level": "window",
                                            "train.max_steps": n, "train.max_time": None}
                   for s in ("standard", "meanabs") for n in (600, 2400)})




def train_one(data: str, overrides: dict, seed: int, path: Path, test: bool) -> dict:
    cfg = forecast_config(data, {**overrides, "train.seed": seed})
    torch.set_num_threads(1)
    task = PanelTask(cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as run:
        result = fit(task, cfg.train, run, progress=False, log=lambda s: None)
        loaded = load_forecaster(run)
        out = {"data": data, "seed": seed, "overrides": overrides, "steps": result.step,
               "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(time.process_time() - c0, 1),
               "val_mase": loaded.checkpoint.state["best_metrics"]["val_mase"],
               "val_baselines": loaded.checkpoint.state["val_baselines"],
               "chosen": loaded.choice("auto")[0]}
        if test:  # the held-out tails: only for the candidate chosen on validation
            p, d = task.prep, cfg.data
            actual = [y[t:] for y, (_, t) in zip(p.panel.values, p.splits)]
            models = {"network": panel_forecasts(loaded.model, p, "test"),
                      **panel_baselines(p, "test", d.season, d.horizon)}
            naive = panel_baselines(p, "test", 1, d.horizon, ("seasonal-naive",))["seasonal-naive"]
            models["naive"] = naive
            rows = {m: score_series(actual, f, p.scales, loaded.interval(m) if m != "naive" else None)
                    for m, f in models.items()}
            # what `rnnlab forecast` uses: per series, the model that won that series' validation
            picks = [c[0] for c in loaded.choices("auto")]
            rows["auto"] = score_series(actual, [models[m][s] for s, m in enumerate(picks)], p.scales,
                                        series_offsets=[loaded.interval(m) for m in picks])
            out["test"] = {m: aggregate(r) for m, r in rows.items()}
            out["test_per_series"] = {m: {i: r["mase"] for i, r in zip(p.panel.ids, rs)} for m, rs in rows.items()}
            out["picks"] = dict(zip(p.panel.ids, picks))
            out["panel_choice"] = choose(loaded.checkpoint.state)[0]  # one model for all, by the mean (before)
            out["test_used"] = out["test"]["auto"]
            out["val_check"] = validation_check(loaded, p)
            out["interval_error_ratio"] = loaded.checkpoint.state.get("interval_error_ratio")
    path.write_text(json.dumps(out, indent=1))
    return out


def validation_check(loaded, p) -> dict[str, float]:
    """The intervals' method checked without the tails: each model's offsets from the errors at the origins
    whose targets lie before the validation part only, their coverage of the validation part (per model). For
    the network these are its in-sample errors as they are (no validation / training ratio: that needs the
    validation part), which is what the check shows about them."""
    before = dataclasses.replace(p, splits=[(v, v) for v, _ in p.splits])
    L, H, season = loaded.config.model.lookback, loaded.config.model.horizon, loaded.config.data.season
    actual = [y[v:t] for y, (v, t) in zip(p.panel.values, p.splits)]
    out = {}
    for m in ("network", "seasonal-naive", "holt-winters"):
        if m not in loaded.checkpoint.state.get("intervals", {}):
            continue
        origins = calibration_origins(before, L, CALIBRATION_FITS if m == "holt-winters" else None)
        f = network_at(loaded.model, before, origins) if m == "network" else baselines_at(before, origins, season,
                                                                                           H, m)
        offsets = step_offsets(calibration_errors(before, origins, f, H))
        val = panel_forecasts(loaded.model, p, "val") if m == "network" else panel_baselines(p, "val", season, H,
                                                                                              (m,))[m]
        out[m] = aggregate(score_series(actual, val, p.scales, offsets))["coverage"]
    return out


def _spread(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})" if len(xs) > 1 \
        else f"{xs[0]:.3f}"


def report(out: Path, candidates: dict) -> str | None:
    lines, best = [], None
    sel = {}
    for name in candidates:
        runs = [json.loads(p.read_text()) for p in sorted(out.glob(f"val-{name.replace('/', '_')}-seed*.json"))]
        if runs:
            sel[name] = runs
    if not sel:
        return None
    lines.append("selection on validation (mean best validation MASE over series; seeds):")
    for name, runs in sel.items():
        v = [r["val_mase"] for r in runs]
        lines.append(f"  {name:<20} {_spread(v)}  seeds {[r['seed'] for r in runs]}  steps {runs[0]['steps']}  "
                     f"cpu {statistics.mean(r['cpu_s'] for r in runs):.0f} s/run")
    best = min(sel, key=lambda n: statistics.mean(r["val_mase"] for r in sel[n]))
    base = sel[best][0]["val_baselines"]
    lines.append(f"  baselines on validation: {', '.join(f'{k} {v:.3f}' for k, v in base.items())}")
    lines.append(f"chosen: {best}")
    tests = [json.loads(p.read_text()) for p in sorted(out.glob("test-seed*.json"))]
    if tests:
        lines.append(f"held-out tails, {tests[0]['data']}, chosen {tests[0]['overrides']}, seeds "
                     f"{[r['seed'] for r in tests]}, {tests[0]['steps']} steps, cpu "
                     f"{statistics.mean(r['cpu_s'] for r in tests):.0f} s/run:")
        for m in tests[0]["test"]:
            xs = [r["test"][m]["mase"] for r in tests]
            cov = [r["test"][m].get("coverage") for r in tests]
            median = statistics.mean(r["test"][m]["median_mase"] for r in tests)
            lines.append(f"  {m:<16} mean MASE {_spread(xs)}  median {median:.3f}"
                         + (f"  coverage {', '.join(f'{c:.0%}' for c in cov)} (pooled {statistics.mean(cov):.1%})"
                            if cov[0] is not None else ""))
        used = [r["test_used"]["mase"] for r in tests]
        lines.append(f"  what `rnnlab forecast` uses (auto, per series): mean MASE {_spread(used)}; picks per seed: "
                     + "; ".join(", ".join(f"{k} {list(r['picks'].values()).count(k)}" for k in
                                           dict.fromkeys(r["picks"].values())) for r in tests))
        lines.append(f"  one choice for the whole panel (by the mean) would be: {[r['panel_choice'] for r in tests]}")
        lines.append(f"  the network's validation / training error ratio r (its in-sample errors x max(1, r)): "
                     f"{[round(r.get('interval_error_ratio') or float('nan'), 2) for r in tests]}")
        if "val_check" in tests[0]:
            for m in tests[0]["val_check"]:
                lines.append(f"  validation check, {m}: offsets from before the validation part cover "
                             f"{', '.join(format(r['val_check'][m], '.0%') for r in tests)} of it")
        wins = [sum(r["test_per_series"]["network"][i] < r["test_per_series"]["seasonal-naive"][i]
                    for i in r["test_per_series"]["network"]) for r in tests]
        lines.append(f"  series where the network beats seasonal naive, per seed: {wins} of "
                     f"{len(tests[0]['test_per_series']['network'])}")
    print("\n".join(lines))
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="builtin:macro")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every run")
    ap.add_argument("--candidates", nargs="*", default=list(CANDIDATES), help=f"of {', '.join(CANDIDATES)}")
    ap.add_argument("--scale-steps", type=float, default=1.0, help="multiply every candidate's step budget (a grid "
                    "for a data set of another size)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args(argv)
    out = args.out or Path("benchmarks/results/panel") / args.data.replace("builtin:", "").replace("/", "_")
    out.mkdir(parents=True, exist_ok=True)
    cands = {n: {**CANDIDATES[n], "train.max_steps": int(CANDIDATES[n]["train.max_steps"] * args.scale_steps)}
             for n in args.candidates}
    common = _parse_set(args.set)
    if args.report:
        report(out, cands)
        return 0
    for seed in args.seeds:  # every candidate at one seed before the next: a study cut short stays even
        for name, ov in cands.items():
            path = out / f"val-{name.replace('/', '_')}-seed{seed}.json"
            if not path.exists():
                r = train_one(args.data, {**common, **ov}, seed, path, test=False)
                print(f"{name} seed {seed}: val MASE {r['val_mase']:.3f} ({r['steps']} steps, {r['cpu_s']} cpu s)",
                      flush=True)
    best = report(out, cands)
    for seed in args.seeds:  # the held-out tails, once, for the chosen candidate only
        path = out / f"test-seed{seed}.json"
        if not path.exists():
            train_one(args.data, {**common, **cands[best]}, seed, path, test=True)
    report(out, cands)
    return 0


if __name__ == "__main__":
    sys.exit(main())
