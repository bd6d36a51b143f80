"""What the command line prints and writes for a many-series forecast run: the held-out tail of every series
scored per series and in aggregate (train and eval), and the forecast past the end in long format."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from ..data.panel import future_times
from ..train.forecast_select import interval_bounds
from ..train.panel import LoadedPanel, PreparedPanel, aggregate, panel_baselines, panel_forecasts, score_series
from ..viz.panel_plot import panel_png

__all__ = ["score_panel", "write_panel_forecast"]


def score_panel(loaded: LoadedPanel, prep: PreparedPanel, *, baselines: bool, csv_path: Path | None,
                png: Path | None = None) -> dict:
    """Score every series' held-out tail: the network, seasonal naive, Holt-Winters with `baselines` (or where
    `rnnlab forecast` would use it), and "auto" (each series by the model chosen for it on validation) when the
    choice differs between series; a table per series, the aggregate, per-series rows in `csv_path`, and the
    tails with the forecasts in `png`."""
    d, H = loaded.config.data, loaded.config.model.horizon
    q = prep.panel
    actual = [y[t:] for y, (_, t) in zip(q.values, prep.splits)]
    chosen, why = loaded.choice("auto")
    picks = [loaded.choices("auto")[c][0] for c in prep.codes]  # per series of this table, by its row in the run
    models = {"network": panel_forecasts(loaded.model, prep, "test")}
    wanted = ("seasonal-naive", "holt-winters") if baselines else \
        tuple(m for m in dict.fromkeys(picks) if m != "network")
    models.update(panel_baselines(prep, "test", d.season, H, wanted))
    if "seasonal-naive" not in models:  # every table shows the bar the network must clear
        models.update(panel_baselines(prep, "test", d.season, H, ("seasonal-naive",)))
    rows = {m: score_series(actual, f, prep.scales, loaded.interval(m)) for m, f in models.items()}
    if chosen == "auto":
        models["auto"] = [models[m][s] for s, m in enumerate(picks)]
        rows["auto"] = score_series(actual, models["auto"], prep.scales,
                                    series_offsets=[loaded.interval(m) for m in picks])
    results = {m: aggregate(r) for m, r in rows.items()}
    names = list(models)
    covered = "coverage" in rows[chosen][0]
    width = max(12, *(len(i) for i in q.ids)) + 1
    print(f"{q.id_column:<{width}} {'MAE':>10} " + " ".join(f"{'MASE ' + m:>20}" for m in names) +
          (f" {'chosen':>15}" if chosen == "auto" else "") + (f" {'cover ' + chosen:>18}" if covered else ""))
    for s, name in enumerate(q.ids):
        print(f"{name:<{width}} {rows['network'][s]['mae']:10.4g} " +
              " ".join(f"{rows[m][s]['mase']:20.3f}" for m in names) + (f" {picks[s]:>15}" if chosen == "auto" else "")
              + (f" {rows[chosen][s]['coverage']:18.0%}" if covered else ""))
    print(f"{'mean MASE':<{width}} {'':>10} " + " ".join(f"{results[m]['mase']:20.3f}" for m in names))
    print(f"{'median MASE':<{width}} {'':>10} " + " ".join(f"{results[m]['median_mase']:20.3f}" for m in names))
    wins = sum(rows["network"][s]["mase"] < rows["seasonal-naive"][s]["mase"] for s in range(len(q.ids)))
    print(f"({len(q.ids)} series, each its last {d.test_size} values never trained on, forecast every {H} steps from "
          f"its true history; MASE against each series' own in-sample seasonal naive, m={d.season}; the network "
          f"beats seasonal naive on {wins} of {len(q.ids)} series)")
    print(f"`rnnlab forecast` uses {chosen}: {why}")
    if covered:
        print(f"80 % prediction intervals of {chosen} (per step ahead: the split-conformal 10 %/90 % levels of the "
              f"errors at every origin before the tail, x each series' MASE scale): cover "
              f"{results[chosen]['coverage']:.0%} of the held-out values")
    if csv_path is not None:
        header = [q.id_column, "model", "mae", "rmse", "mase", "coverage", "pinball"]
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            for m in names:
                for name, r in zip(q.ids, rows[m]):
                    w.writerow([name, m, *(f"{r[k]:.6g}" if k in r else "" for k in header[2:])])
        print(f"per-series scores: {csv_path}")
    if png is not None:
        offsets = [loaded.interval(m) for m in picks] if chosen == "auto" else [loaded.interval(chosen)] * len(picks)
        band = None
        if None not in offsets:
            bounds = [interval_bounds(f, o, sc) for f, o, sc in zip(models[chosen], offsets, prep.scales)]
            band = (chosen, [b[0] for b in bounds], [b[1] for b in bounds])
        written = panel_png(q.ids, q.values, [t for _, t in prep.splits], models, png,
                            title=f"{q.source}: held-out tails, horizon {H}", band=band)
        print(f"plot: {written}" if written else
              "note: the plot was skipped, matplotlib is not installed (pip install matplotlib)")
    results["per_series"] = rows
    return results


def write_panel_forecast(loaded: LoadedPanel, steps: int, model: str, out: str | None) -> None:
    """`rnnlab forecast` of a many-series run: long format, one row per (series, step), on stdout and in `out`;
    the model column says which model forecast each series (model "auto" picks per series)."""
    q = loaded.panel
    values = loaded.future(steps, model=model)
    bands = loaded.future_intervals(values, model=model)
    picks = [c[0] for c in loaded.choices(model)]
    has_band = all(b is not None for b in bands)
    header = [q["id_column"], "step", "time", q.get("series_name") or "value", *(["lo80", "hi80"] if has_band else []),
              "model"]
    rows = []
    for s, (name, v) in enumerate(zip(q["ids"], values)):
        times = future_times(str(q["tail_index"][s][-1]), q.get("freq"), steps)
        for k, (t, x) in enumerate(zip(times, v)):
            rows.append([name, k + 1, t, f"{x:.6g}"] +
                        ([f"{bands[s][0][k]:.6g}", f"{bands[s][1][k]:.6g}"] if has_band else []) + [picks[s]])
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    if out != "-":
        path = Path(out) if out else loaded.checkpoint.path.parent / f"forecast-{steps}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows([header, *rows])
        print(f"written to {path} ({len(q['ids'])} series x {steps} steps, long format)", file=sys.stderr)
    if not np.all([np.isfinite(v).all() for v in values]):
        print("note: some forecasts are not finite", file=sys.stderr)
    h = loaded.config.model.horizon
    if "network" in picks and steps > h:
        print(f"note: the model outputs {h} steps at a time; steps past {h} feed its own forecasts back (their "
              f"interval: step {h}'s, too narrow)", file=sys.stderr)
