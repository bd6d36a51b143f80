"""`rnnlab eval` of a forecast run: MAE, RMSE and MASE on the held-out tail (of the run's series, or of
--data read the same way), a PNG of history, forecast and actual values; --baselines adds seasonal naive
and Holt-Winters exponential smoothing on the same origins."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..baselines import ETS_SETTINGS, ets_forecast, seasonal_naive_forecast
from ..train.forecast import LoadedForecaster, Prepared, forecast_origins, load_forecaster, prepare_series
from ..train.metrics import forecast_errors
from ..viz.plots import forecast_png

__all__ = ["add_options", "run", "score_tail"]


def add_options(p) -> None:
    """Forecast runs share --baselines and --plot with classify runs (added there)."""


def score_tail(loaded: LoadedForecaster, prep: Prepared, *, baselines: bool, png: Path | None) -> dict:
    d = loaded.config.data
    v, start = prep.series.values, prep.test_start
    actual = v[start:]
    rows = {f"rnnlab {loaded.config.model.cell.upper()} ({d.strategy})":
            forecast_origins(loaded.model, loaded.scaler, v, start, len(v), d.horizon)}
    if baselines:
        rows["seasonal naive" + ("" if d.season > 1 else " (m=1: naive)")] = \
            seasonal_naive_forecast(v, start, len(v), d.horizon, d.season)
        ets = ETS_SETTINGS.get(d.data, dict(trend="add", seasonal="add"))
        rows[f"Holt-Winters (trend {ets['trend']}, seasonal {ets['seasonal']})"] = \
            ets_forecast(v, start, len(v), d.horizon, d.season, **ets)
    print(f"{'model':<46} {'MAE':>10} {'RMSE':>10} {'MASE':>7}")
    results = {}
    for name, f in rows.items():
        e = results[name] = forecast_errors(actual, f, prep.scale)
        print(f"{name:<46} {e['mae']:10.4g} {e['rmse']:10.4g} {e['mase']:7.3f}")
    print(f"(forecasts every {d.horizon} steps from the true history before each origin; MASE scaled by the "
          f"in-sample seasonal-naive MAE, m={d.season}, of the {start} values before the tail: {prep.scale:.4g})")
    if png is not None:
        written = forecast_png(v, start, rows, png, title=f"{prep.series.name}: held-out tail, horizon {d.horizon}")
        print(f"plot: {written}" if written else
              "note: forecast.png skipped, matplotlib is not installed (pip install matplotlib)")
    return results


def run(args: argparse.Namespace) -> int:
    loaded = load_forecaster(args.checkpoint, args.device)
    cfg = loaded.config
    if args.data is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data=args.data))
    prep = prepare_series(cfg)
    print(f"scoring the held-out tail of {cfg.data.data} ({len(prep.series.values) - prep.test_start} values; "
          f"{prep.series.missing} missing values, policy {cfg.data.missing}) with {loaded.checkpoint.path} "
          f"(step {loaded.checkpoint.state.get('step')}) ...", flush=True)
    # a series scored with the run's own scaling: the model only knows the training part's statistics
    prep = dataclasses.replace(prep, scaler=loaded.scaler)
    png = Path(args.plot) if args.plot else loaded.checkpoint.path.parent / "forecast-eval.png"
    score_tail(loaded, prep, baselines=args.baselines, png=png)
    return 0
