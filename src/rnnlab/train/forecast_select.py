"""Which forecaster to trust: the network, or a baseline that beat it on validation.

A recurrent forecaster trained on one short series can lose to repeating last season (issue 18: MASE 0.94 for
the LSTM against 0.70 for seasonal naive and 0.58 for Holt-Winters on a user's monthly CSV). Users of
forecasting tools expect to be told, and to get the better forecast. So a forecast run scores, once, on the
same validation origins the network is early-stopped on:

    seasonal-naive   y_{t+k} = y_{t+k-m}: the last season repeated (m = 1: the last value)
    holt-winters     exponential smoothing (statsmodels; additive trend, additive or multiplicative season),
                     refitted on the history before each origin

and keeps their validation MASE in the checkpoint (state.json "val_baselines"). `rnnlab forecast` (and
LoadedForecaster.future with model="auto") then uses the network only where its best validation MASE is at
most the best baseline's, and says which model it used and why; `--model` forces one. The held-out tail is
never looked at for the choice. The network's validation score is that of the checkpoint chosen on the same
origins, so the comparison leans slightly toward the network; the baselines have nothing to choose.

Prediction intervals (split conformal, from the same validation origins): the errors actual - forecast of
each model on the validation part give their 10 % and 90 % quantiles, and a forecast's 80 % interval is
[forecast + q10, forecast + q90], the same offsets at every step ahead (pooled over the steps: a run has
few validation origins). Model-free, so the baselines get intervals too; the coverage on the held-out tail is
what `eval` reports (with the mean pinball loss of the two quantiles), since a short validation part gives
rough quantiles.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ..baselines import ETS_SETTINGS, ets_forecast, seasonal_naive_forecast
from ..data import DataError
from .metrics import forecast_errors

__all__ = ["BASELINES", "INTERVAL", "MODELS", "baseline_future", "choose", "history_to_keep", "interval_offsets",
           "interval_scores", "validation_forecasts", "validation_scores"]

BASELINES = ("seasonal-naive", "holt-winters")
INTERVAL = (0.1, 0.9)  # the quantiles of the errors that bound the 80 % prediction interval
MODELS = ("auto", "network", *BASELINES)


def ets_settings(data: str) -> dict:
    """Holt-Winters' trend and season kinds for a data set: the built-ins' own, else additive both."""
    return ETS_SETTINGS.get(data, dict(trend="add", seasonal="add"))


def _has_statsmodels() -> bool:
    return importlib.util.find_spec("statsmodels") is not None


def validation_forecasts(values: np.ndarray, start: int, end: int, horizon: int, season: int,
                         data: str) -> dict[str, np.ndarray]:
    """Each baseline's forecasts of values[start:end] from the same rolling origins as the network (every
    `horizon` steps, from the true history). Holt-Winters only when statsmodels is installed (and finite)."""
    m = season if start >= season else 1
    out = {"seasonal-naive": seasonal_naive_forecast(values, start, end, horizon, m)}
    if _has_statsmodels():
        f = ets_forecast(values, start, end, horizon, season, **ets_settings(data))
        if np.isfinite(f).all():
            out["holt-winters"] = f
    return out


def validation_scores(values: np.ndarray, start: int, end: int, horizon: int, season: int, scale: float,
                      data: str) -> dict[str, float]:
    """Validation MASE of each baseline (validation_forecasts)."""
    actual = values[start:end]
    return {k: forecast_errors(actual, f, scale)["mase"]
            for k, f in validation_forecasts(values, start, end, horizon, season, data).items()}


def interval_offsets(actual: np.ndarray, forecast: np.ndarray) -> list[float]:
    """[q10, q90] of the errors actual - forecast: the 80 % interval is [forecast + q10, forecast + q90]."""
    e = np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    return [float(q) for q in np.quantile(e, INTERVAL)]


def interval_scores(actual: np.ndarray, forecast: np.ndarray, offsets: list[float]) -> dict[str, float]:
    """Coverage of the 80 % interval (share of actual values inside it) and the mean pinball loss of its two
    quantile forecasts (forecast + q10 at level 0.1, forecast + q90 at 0.9), in the series' units."""
    actual, forecast = np.asarray(actual, dtype=np.float64), np.asarray(forecast, dtype=np.float64)
    lo, hi = forecast + offsets[0], forecast + offsets[1]
    pinball = [np.mean(np.maximum(tau * (actual - q), (tau - 1) * (actual - q))) for tau, q in zip(INTERVAL, (lo, hi))]
    return {"coverage": float(np.mean((actual >= lo) & (actual <= hi))), "pinball": float(np.mean(pinball))}


def choose(state: dict, model: str = "auto") -> tuple[str, str]:
    """(the model to forecast with, why) from a checkpoint's state: `model` itself unless "auto"; "auto" takes
    the network unless a baseline's validation MASE was lower than the network's best."""
    if model not in MODELS:
        raise DataError(f"unknown forecast model {model!r}; expected one of {', '.join(MODELS)}")
    base = {k: float(v) for k, v in (state.get("val_baselines") or {}).items()}
    net = (state.get("best_metrics") or {}).get("val_mase")
    if model != "auto":
        if model != "network" and model not in base and not (model == "holt-winters" and _has_statsmodels()):
            raise DataError(f"--model {model} needs statsmodels (pip install statsmodels)")
        return model, "asked for with --model"
    if not base or net is None or not np.isfinite(net):
        return "network", "no validation scores of the baselines in this checkpoint (trained by an older rnnlab)"
    best = min(base, key=base.get)
    scores = ", ".join(f"{k} {v:.3f}" for k, v in base.items())
    if net <= base[best]:
        return "network", f"validation MASE {net:.3f}, baselines: {scores}"
    return best, (f"it beat the network on validation, MASE {base[best]:.3f} against the network's {net:.3f} "
                  f"(baselines: {scores}); --model network forces the network")


def history_to_keep(n: int, lookback: int, season: int) -> int:
    """How many of the series' last values a checkpoint keeps so that every model can forecast past the end
    from it alone: the network's lookback, and for Holt-Winters enough seasons to fit on (at most 20 seasons or
    1,000 values, whichever is more; the validation fit saw the whole history, this one sees its end)."""
    return min(n, max(lookback, 1, 20 * season, 1000))


def baseline_future(name: str, history: np.ndarray, steps: int, season: int, data: str) -> np.ndarray:
    """`steps` values after the end of `history` by the baseline `name`."""
    history = np.asarray(history, dtype=np.float64)
    if name == "seasonal-naive":
        m = season if len(history) >= season else 1
        last = history[len(history) - m:]
        return np.array([last[k % m] for k in range(steps)])
    if name == "holt-winters":
        n = len(history)
        return ets_forecast(np.concatenate([history, np.zeros(steps)]), n, n + steps, steps, season,
                            **ets_settings(data))
    raise DataError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
