"""Does the forecast a user gets hold up? The model chosen on validation and its 80 % interval, three seeds.

    python -m benchmarks.forecast_select                         # built-in series x seeds 0, 1, 2
    python -m benchmarks.forecast_select --data my.csv --seeds 0 1 2 --set data.horizon=24
    python -m benchmarks.forecast_select --report                # the table from the results already written
    python -m benchmarks.forecast_select --write-elnino elnino240.csv   # the user-data check of docs/TASKS.md:
    python -m benchmarks.forecast_select --data elnino240.csv --set data.horizon=24 train.max_steps=1500 \
        train.max_time=null --out benchmarks/results/forecast_select_elnino

For each series and seed: `rnnlab train forecast` with its defaults (the data set's preset; a step budget, so
the machine's load changes only the seconds), then on the held-out tail (never used for any choice): the
network's MASE, seasonal naive's and Holt-Winters', the MASE of the model `rnnlab forecast` uses (chosen on
validation: train/forecast_select.py), and the coverage of its 80 % interval. Issue 18's targets: the chosen
model's mean MASE at most the better of seasonal naive and Holt-Winters + 5 %, never worse than seasonal naive
on a seed; coverage 70-90 % pooled over every tail.

Each run's result is a JSON file in --out (default benchmarks/results/forecast_select/); a run whose file exists
is not run again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnnlab.baselines import ets_forecast, seasonal_naive_forecast
from rnnlab.train import ForecastTask, fit, forecast_config, load_forecaster
from rnnlab.train.forecast import forecast_origins, prepare_series
from rnnlab.train.forecast_select import ets_settings, interval_scores
from rnnlab.train.metrics import forecast_errors

BUILTINS = ("builtin:co2", "builtin:airline", "builtin:sunspots")


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run_one(data: str, seed: int, overrides: dict, out: Path) -> dict:
    name = f"{Path(data).stem if not data.startswith('builtin:') else data[8:]}-seed{seed}"
    result_file = out / f"{name}.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    cfg = forecast_config(data, {**overrides, "train.seed": seed})
    run = out / "runs" / name
    t0, c0 = time.perf_counter(), time.process_time()
    fit(ForecastTask(cfg), cfg.train, run, progress=False, log=lambda line: None)
    loaded = load_forecaster(run / "best")
    prep = prepare_series(loaded.config)
    d = loaded.config.data
    v, start = prep.series.values, prep.test_start
    actual = v[start:]
    forecasts = {"network": forecast_origins(loaded.model, loaded.scaler, v, start, len(v), d.horizon),
                 "seasonal-naive": seasonal_naive_forecast(v, start, len(v), d.horizon, d.season)}
    ets = loaded.checkpoint.state.get("ets") or ets_settings(d.data)  # chosen on validation (newer runs)
    forecasts["holt-winters"] = ets_forecast(v, start, len(v), d.horizon, d.season, **ets)
    # the bar of the targets: Holt-Winters with the data set's own settings, as before they were chosen
    forecasts["holt-winters-preset"] = ets_forecast(v, start, len(v), d.horizon, d.season, **ets_settings(d.data)) \
        if ets != ets_settings(d.data) else forecasts["holt-winters"]
    forecasts["combined"] = (forecasts["network"] + forecasts["holt-winters"]) / 2
    chosen, why = loaded.choice("auto")
    offsets = loaded.interval(chosen)
    result = {"data": data, "seed": seed, "chosen": chosen, "why": why, "seconds": time.perf_counter() - t0,
              "cpu_s": time.process_time() - c0, "steps": loaded.checkpoint.state.get("step"), "ets": ets,
              "val_choice": loaded.checkpoint.state.get("val_choice"), "tail": len(actual),
              "mase": {k: forecast_errors(actual, f, prep.scale)["mase"] for k, f in forecasts.items()},
              "interval": interval_scores(actual, forecasts[chosen], offsets) if offsets else None}
    result["mase"]["chosen"] = result["mase"][chosen]
    out.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(result, indent=1))
    return result


def report(results: list[dict]) -> str:
    lines = ["| series | seeds | network MASE | seasonal naive | Holt-Winters preset / chosen on validation (its "
             "trend/season) | chosen on validation | chosen MASE | "
             "target (min baseline + 5 %) | worse than seasonal naive | 80 % coverage |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    pooled_in, pooled_n = 0.0, 0
    for data in dict.fromkeys(r["data"] for r in results):
        rs = [r for r in results if r["data"] == data]

        def mean(key):
            vals = [r["mase"][key] for r in rs]
            return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)

        net, sn, hw, ch = mean("network"), mean("seasonal-naive"), mean("holt-winters"), mean("chosen")
        hw_bar = mean("holt-winters-preset") if all("holt-winters-preset" in r["mase"] for r in rs) else hw
        target = 1.05 * min(sn[0], hw_bar[0])
        worse = sum(r["mase"]["chosen"] > r["mase"]["seasonal-naive"] + 1e-12 for r in rs)
        cov = [r["interval"]["coverage"] for r in rs if r["interval"]]
        for r in rs:
            if r["interval"]:
                pooled_in += r["interval"]["coverage"] * r["tail"]
                pooled_n += r["tail"]
        picks = ", ".join(f"{k} x{sum(r['chosen'] == k for r in rs)}" for k in dict.fromkeys(r["chosen"] for r in rs))
        ets = "; ".join(dict.fromkeys(f"{r['ets']['trend']}/{r['ets']['seasonal']}" for r in rs if r.get("ets")))
        each = {k: ", ".join(format(r["mase"][k], ".3f") for r in rs) for k in ("network", "chosen")}
        lines.append(f"| {data} | {len(rs)} | {each['network']} ({net[0]:.3f} ± {net[1]:.3f}) | {sn[0]:.3f} | "
                     f"{hw_bar[0]:.3f} / {hw[0]:.3f} ({ets}) | {picks} | {each['chosen']} ({ch[0]:.3f} ± {ch[1]:.3f}) | "
                     f"{target:.3f} ({'met' if ch[0] <= target else 'missed'}) | "
                     f"{worse} of {len(rs)} | {', '.join(f'{c:.0%}' for c in cov)} |")
    if pooled_n:
        lines.append(f"\npooled 80 % interval coverage over every tail: {pooled_in / pooled_n:.1%} "
                     f"({pooled_n} values; target 70-90 %)")
    return "\n".join(lines)


def write_elnino(path: str, months: int = 240) -> None:
    """A user's CSV rnnlab was not tuned on: the last `months` of statsmodels' El Nino sea-surface temperatures
    (monthly, 1950-2010), as date,value."""
    import pandas as pd
    import statsmodels.api as sm

    d = sm.datasets.elnino.load_pandas().data
    names = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    rows = [(f"{int(r['YEAR'])}-{k + 1:02d}-01", r[m]) for _, r in d.iterrows() for k, m in enumerate(names)]
    pd.DataFrame(rows, columns=["date", "value"]).tail(months).to_csv(path, index=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=list(BUILTINS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="run config overrides, e.g. data.horizon=24")
    p.add_argument("--out", default="benchmarks/results/forecast_select")
    p.add_argument("--report", action="store_true")
    p.add_argument("--write-elnino", metavar="CSV", help="write the El Nino user-data CSV and stop")
    args = p.parse_args(argv)
    if args.write_elnino:
        write_elnino(args.write_elnino)
        return 0
    out = Path(args.out)
    torch.set_num_threads(1)
    if args.report:
        results = [json.loads(f.read_text()) for f in sorted(out.glob("*.json"))]
    else:
        results = []
        for data in args.data:
            for seed in args.seeds:
                r = run_one(data, seed, _parse_set(args.set), out)
                print(f"{data} seed {seed}: network {r['mase']['network']:.3f}, seasonal naive "
                      f"{r['mase']['seasonal-naive']:.3f}, Holt-Winters {r['mase']['holt-winters']:.3f}; chosen "
                      f"{r['chosen']} {r['mase']['chosen']:.3f}; coverage "
                      f"{r['interval']['coverage'] if r['interval'] else float('nan'):.0%} ({r['seconds']:.0f} s)",
                      flush=True)
                results.append(r)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
