"""Result tables the command line prints, shared by the verbs that train and those that evaluate (so that no
verb imports another): a classifier's scores on a split, a forecaster's errors on the held-out tail."""

from __future__ import annotations

from pathlib import Path

from ..baselines import ETS_SETTINGS, ets_forecast, seasonal_naive_forecast
from ..train.classify import LoadedClassifier
from ..train.forecast import LoadedForecaster, Prepared, forecast_origins
from ..train.forecast_select import interval_scores
from ..train.metrics import classification_report, confusion_table, forecast_errors
from ..viz.plots import confusion_png, forecast_png

__all__ = ["print_report", "score_split", "score_tail"]


def score_split(loaded: LoadedClassifier, split, idx) -> dict:
    d = split.data
    probs = loaded.predict_proba([d.items[i] for i in idx])
    return classification_report(d.targets[idx], probs.argmax(1), len(loaded.labels))


def print_report(report: dict, names: list[str], png: Path | None) -> None:
    print(f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}")
    print(confusion_table(report, names))
    if png is not None:
        written = confusion_png(report, names, png)
        print(f"confusion matrix: {written}" if written else
              "note: confusion.png skipped, matplotlib is not installed (pip install matplotlib)")


def score_tail(loaded: LoadedForecaster, prep: Prepared, *, baselines: bool, png: Path | None) -> dict:
    d = loaded.config.data
    v, start = prep.series.values, prep.test_start
    actual = v[start:]
    cell = loaded.config.model.rnn.cell
    rows = {f"rnnlab {({'mingru': 'minGRU', 'minlstm': 'minLSTM'}).get(cell, cell.upper())} ({d.strategy})":
            forecast_origins(loaded.model, loaded.scaler, v, start, len(v), d.horizon)}
    chosen, why = loaded.choice("auto")  # what `rnnlab forecast` uses: chosen on validation, not on this tail
    if baselines or chosen == "seasonal-naive":
        rows["seasonal naive" + ("" if d.season > 1 else " (m=1: naive)")] = \
            seasonal_naive_forecast(v, start, len(v), d.horizon, d.season)
    if baselines or chosen in ("holt-winters", "combined"):
        ets = loaded.checkpoint.state.get("ets") or ETS_SETTINGS.get(d.data, dict(trend="add", seasonal="add"))
        rows[f"Holt-Winters (trend {ets['trend']}, seasonal {ets['seasonal']})"] = \
            ets_forecast(v, start, len(v), d.horizon, d.season, **ets)
    if chosen == "combined" or (baselines and "combined" in (loaded.checkpoint.state.get("val_choice") or {})):
        hw = next(f for k, f in rows.items() if k.startswith("Holt-Winters"))
        rows["combined (network + Holt-Winters) / 2"] = (next(iter(rows.values())) + hw) / 2
    print(f"{'model':<46} {'MAE':>10} {'RMSE':>10} {'MASE':>7}")
    results = {}
    for name, f in rows.items():
        e = results[name] = forecast_errors(actual, f, prep.scale)
        print(f"{name:<46} {e['mae']:10.4g} {e['rmse']:10.4g} {e['mase']:7.3f}")
    print(f"(forecasts every {d.horizon} steps from the true history before each origin; MASE scaled by the "
          f"in-sample seasonal-naive MAE, m={d.season}, of the {start} values before the tail: {prep.scale:.4g})")
    print(f"`rnnlab forecast` uses {chosen}: {why}")
    name = {"network": next(iter(rows)), "seasonal-naive": next((k for k in rows if k.startswith("seasonal naive")), None),
            "holt-winters": next((k for k in rows if k.startswith("Holt-Winters")), None),
            "combined": next((k for k in rows if k.startswith("combined")), None)}[chosen]
    offsets = loaded.interval(chosen)
    band = None
    if offsets is not None and name is not None:
        s = results["interval"] = interval_scores(actual, rows[name], offsets)
        band = (name, offsets)
        print(f"80 % prediction interval of {chosen} (its validation errors' 10 %/90 % quantiles, "
              f"{offsets[0]:+.4g} / {offsets[1]:+.4g}): covers {s['coverage']:.0%} of the tail; mean pinball "
              f"loss {s['pinball']:.4g}")
    if png is not None:
        written = forecast_png(v, start, rows, png, title=f"{prep.series.name}: held-out tail, horizon {d.horizon}",
                               band=band)
        print(f"plot: {written}" if written else
              "note: forecast.png skipped, matplotlib is not installed (pip install matplotlib)")
    return results
