"""rnnlab's many-to-one models against the simple baselines, on the exact same splits (docs/TASKS.md).

    python benchmarks/tasks.py                       # every built-in data set, the presets' budgets
    python benchmarks/tasks.py vowels airline        # some of them
    python benchmarks/tasks.py --out runs/tasks      # keep the run folders (default: a temporary folder)

Each data set is trained exactly as `rnnlab train classify|forecast --data builtin:NAME --threads 1` would
(the preset, seed 0), the best checkpoint is scored on the held-out test split / tail, and the baselines
are fitted on the same training split and scored on the same items:
    text         TF-IDF (words + word pairs) + logistic regression, C chosen on the validation split
    vowels       logistic regression on per-feature mean/std/min/max/first/last + length
    mnist-rows   logistic regression on the 784 flattened pixels
    forecasting  seasonal naive, and Holt-Winters (statsmodels ExponentialSmoothing) refitted at each origin
Prints a markdown table and writes it with the raw numbers to OUT/tasks.json. Never run in CI.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnlab.baselines import ETS_SETTINGS, classify_baseline, ets_forecast, seasonal_naive_forecast  # noqa: E402
from rnnlab.train import fit, load_classifier, load_forecaster  # noqa: E402
from rnnlab.train.classify import ClassifyTask, classify_config  # noqa: E402
from rnnlab.train.forecast import ForecastTask, forecast_config, forecast_origins  # noqa: E402
from rnnlab.train.metrics import classification_report, forecast_errors  # noqa: E402

CLASSIFY = ["sentiment", "sentiment-movies", "vowels", "mnist-rows"]
FORECAST = ["co2", "airline", "sunspots"]


def classify(name: str, out: Path) -> list[dict]:
    cfg = classify_config(f"builtin:{name}")
    task = ClassifyTask(cfg)
    t0 = time.perf_counter()
    result = fit(task, cfg.train, out / name, progress=False, log=lambda s: None)
    seconds = time.perf_counter() - t0
    s, d = task.split, task.split.data
    test_items = [d.items[i] for i in s.test]
    y = d.targets[s.test]
    model = load_classifier(out / name)
    r = classification_report(y, model.predict_proba(test_items).argmax(1), len(d.label_names))
    pred, what = classify_baseline(d, s.train, s.val, test_items)
    b = classification_report(y, pred, len(d.label_names))
    m = cfg.model
    tokens = f", {cfg.data.tokens} tokens" if d.kind == "text" else ""
    model_name = f"rnnlab {m.rnn.describe()}{tokens}, {m.pooling} pooling"
    common = {"data": name, "test": len(y), "metric": "accuracy / macro-F1"}
    return [{**common, "model": model_name, "accuracy": r["accuracy"], "macro_f1": r["macro_f1"],
             "steps": result.step, "seconds": round(seconds), "stopped": result.stopped},
            {**common, "model": what, "accuracy": b["accuracy"], "macro_f1": b["macro_f1"]}]


def forecast(name: str, out: Path) -> list[dict]:
    cfg = forecast_config(f"builtin:{name}")
    task = ForecastTask(cfg)
    t0 = time.perf_counter()
    result = fit(task, cfg.train, out / name, progress=False, log=lambda s: None)
    seconds = time.perf_counter() - t0
    p, d = task.prep, cfg.data
    v, start = p.series.values, p.test_start
    model = load_forecaster(out / name)
    rows = {f"rnnlab {cfg.model.rnn.cell.upper()} {cfg.model.rnn.hidden_size} ({d.strategy}, residual {cfg.model.residual}"
            f"{', log' if d.transform == 'log' else ''})":
            forecast_origins(model.model, model.scaler, v, start, len(v), d.horizon),
            "seasonal naive": seasonal_naive_forecast(v, start, len(v), d.horizon, d.season)}
    ets = ETS_SETTINGS[f"builtin:{name}"]
    rows[f"Holt-Winters (trend {ets['trend']}, seasonal {ets['seasonal']})"] = \
        ets_forecast(v, start, len(v), d.horizon, d.season, **ets)
    common = {"data": name, "test": len(v) - start, "horizon": d.horizon, "metric": "MASE"}
    table = []
    for i, (model_name, f) in enumerate(rows.items()):
        row = {**common, "model": model_name, **forecast_errors(v[start:], f, p.scale)}
        if i == 0:
            row.update(steps=result.step, seconds=round(seconds), stopped=result.stopped)
        table.append(row)
    return table


def markdown(rows: list[dict]) -> str:
    lines = ["| data | test items | model | accuracy | macro-F1 | MAE | RMSE | MASE | steps (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{r['accuracy']:.4f}" if "accuracy" in r else ""
        f1 = f"{r['macro_f1']:.4f}" if "macro_f1" in r else ""
        mae = f"{r['mae']:.4g}" if "mae" in r else ""
        rmse = f"{r['rmse']:.4g}" if "rmse" in r else ""
        mase = f"{r['mase']:.3f}" if "mase" in r else ""
        steps = f"{r['steps']} ({r['seconds']})" if "steps" in r else ""
        lines.append(f"| {r['data']} | {r['test']} | {r['model']} | {acc} | {f1} | {mae} | {rmse} | {mase} | {steps} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"data sets (default all: {', '.join(CLASSIFY + FORECAST)})")
    parser.add_argument("--out", help="folder for the run folders and tasks.json (default: temporary)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # steadier on a shared machine; the numbers below do not depend on the clock
    names = args.names or CLASSIFY + FORECAST
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="rnnlab-tasks-"))
    rows = []
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        rows += classify(name, out) if name in CLASSIFY else forecast(name, out)
        print(markdown(rows[-3:] if name in FORECAST else rows[-2:]), file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tasks.json").write_text(json.dumps(rows, indent=1))
    print(markdown(rows))


if __name__ == "__main__":
    main()
