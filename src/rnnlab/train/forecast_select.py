"""Which forecaster to trust: the network, or a baseline that beat it on validation.

A recurrent forecaster trained on one short series can lose to repeating last season (issue 18: MASE 0.94 for
the LSTM against 0.70 for seasonal naive and 0.58 for Holt-Winters on a user's monthly CSV). Users of
forecasting tools expect to be told, and to get the better forecast. So a forecast run scores, once, on the
same validation origins the network is early-stopped on:

    seasonal-naive   y_{t+k} = y_{t+k-m}: the last season repeated (m = 1: the last value)
    holt-winters     exponential smoothing (statsmodels; additive trend, additive or multiplicative season),
                     refitted on the history before each origin

and keeps their validation MASE in the checkpoint (state.json "val_baselines"). Holt-Winters' own settings
(trend, season kind) are chosen on the same origins (choose_ets), and the choice itself is scored at up to
CHOICE_ORIGINS origins, every step whose horizon fits in the validation part (state.json "val_choice"): a
short series' validation part has only one or two of the origins every H steps that early-stop the network.
One more candidate there: "combined", the mean of the network's and Holt-Winters' forecasts (Bates & Granger
1969; combinations were among the most accurate methods of the M4 competition), chosen like the others only
where it had the lowest MASE at those origins. `rnnlab forecast` (and
LoadedForecaster.future with model="auto") then uses the network only where its best validation MASE is at
most the best baseline's, and says which model it used and why; `--model` forces one. The held-out tail is
never looked at for the choice. The network's validation score is that of the checkpoint chosen on the same
origins, so the comparison leans slightly toward the network; the baselines have nothing to choose.

Prediction intervals (split conformal, from the same validation origins): the errors actual - forecast of
each model on the validation part give their 10 % and 90 % quantiles, and a forecast's 80 % interval is
[forecast + q10, forecast + q90], the same offsets at every step ahead (pooled over the steps: a run has
few validation origins). Model-free, so the baselines get intervals too; the coverage on the held-out tail is
what `eval` reports (with the mean pinball loss of the two quantiles), since a short validation part gives
rough quantiles. Many series (train/panel.py) have more errors to draw on, so their intervals are per step
ahead: step_offsets gives one [lo, hi] per step, from errors at rolling origins over the whole history before
the tail (interval_bounds reads either form).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ..baselines import ETS_SETTINGS, ets_forecast, seasonal_naive_forecast
from ..data import DataError
from .metrics import forecast_errors

__all__ = ["BASELINES", "CHOICE_ORIGINS", "COMBINED", "ETS_CANDIDATES", "INTERVAL", "MODELS", "baseline_choice_scores",
           "baseline_future", "choice_origins", "choose", "choose_ets", "ets_candidates", "history_to_keep",
           "interval_bounds", "interval_offsets", "interval_scores", "origin_mase", "step_offsets",
           "validation_forecasts", "validation_scores"]

BASELINES = ("seasonal-naive", "holt-winters")
INTERVAL = (0.1, 0.9)  # the quantiles of the errors that bound the 80 % prediction interval
COMBINED = "combined"  # one series: the mean of the network's and Holt-Winters' forecasts
MODELS = ("auto", "network", *BASELINES, COMBINED)


def ets_settings(data: str) -> dict:
    """Holt-Winters' trend and season kinds for a data set: the built-ins' own, else additive both."""
    return ETS_SETTINGS.get(data, dict(trend="add", seasonal="add"))


# Holt-Winters' settings tried on validation (one series): trend additive or none x season additive or
# multiplicative; the data set's own (ets_settings) first, so it wins ties
ETS_CANDIDATES = tuple(dict(trend=t, seasonal=k) for t in ("add", None) for k in ("add", "mul"))
CHOICE_ORIGINS = 12  # at most this many origins score the choice (Holt-Winters refits at each)


def _has_statsmodels() -> bool:
    return importlib.util.find_spec("statsmodels") is not None


def ets_candidates(values: np.ndarray, season: int, data: str) -> list[dict]:
    """The Holt-Winters settings worth trying: the data set's own first, multiplicative seasons only for positive
    values, and no season kind at all without a season."""
    out = [ets_settings(data)]
    for c in ETS_CANDIDATES:
        if season <= 1:
            c = dict(trend=c["trend"], seasonal=None)
        if c["seasonal"] == "mul" and (np.asarray(values) <= 0).any():
            continue
        if c not in out:
            out.append(c)
    return out


def choose_ets(values: np.ndarray, start: int, end: int, horizon: int, season: int, data: str
               ) -> tuple[dict, np.ndarray | None]:
    """(the Holt-Winters settings with the lowest MAE on values[start:end] from origins every `horizon` steps,
    their forecasts): Holt-Winters' own settings chosen on validation, as the network's are. (ets_settings(data),
    None) when none gives finite forecasts or statsmodels is missing."""
    best, best_f, best_mae = ets_settings(data), None, np.inf
    if not _has_statsmodels():
        return best, None
    for c in ets_candidates(values[:end], season, data):
        f = ets_forecast(values, start, end, horizon, season, **c)
        mae = float(np.mean(np.abs(f - values[start:end]))) if np.isfinite(f).all() else np.inf
        if mae < best_mae:
            best, best_f, best_mae = c, f, mae
    return best, best_f


def validation_forecasts(values: np.ndarray, start: int, end: int, horizon: int, season: int,
                         data: str, ets: dict | None = None) -> dict[str, np.ndarray]:
    """Each baseline's forecasts of values[start:end] from the same rolling origins as the network (every
    `horizon` steps, from the true history). Holt-Winters (settings `ets`, default the data set's) only when
    statsmodels is installed (and finite)."""
    m = season if start >= season else 1
    out = {"seasonal-naive": seasonal_naive_forecast(values, start, end, horizon, m)}
    if _has_statsmodels():
        f = ets_forecast(values, start, end, horizon, season, **(ets or ets_settings(data)))
        if np.isfinite(f).all():
            out["holt-winters"] = f
    return out


def validation_scores(values: np.ndarray, start: int, end: int, horizon: int, season: int, scale: float,
                      data: str) -> dict[str, float]:
    """Validation MASE of each baseline (validation_forecasts)."""
    actual = values[start:end]
    return {k: forecast_errors(actual, f, scale)["mase"]
            for k, f in validation_forecasts(values, start, end, horizon, season, data).items()}


def choice_origins(start: int, end: int, horizon: int, most: int = CHOICE_ORIGINS) -> list[int]:
    """The origins that score the choice between the network and the baselines: every step whose whole horizon
    lies in [start, end) (more than the len / horizon origins that early-stop the network: a short validation
    part has one or two of those), at most `most`, evenly spaced and ending at the last."""
    o = list(range(start, end - horizon + 1)) or [start]
    return [o[i] for i in np.unique(np.round(np.linspace(0, len(o) - 1, most)).astype(int))] if len(o) > most else o


def origin_mase(values: np.ndarray, origins: list[int], forecasts: np.ndarray, scale: float) -> float:
    """MASE of forecasts[i] (H values from origins[i]) against the values they forecast, pooled (steps past
    the end of `values` are left out)."""
    e = [abs(values[o + k] - f[k]) for o, f in zip(origins, forecasts) for k in range(len(f)) if o + k < len(values)]
    return float(np.mean(e) / scale)


def baseline_choice_scores(values: np.ndarray, origins: list[int], end: int, horizon: int, season: int,
                           scale: float, ets: dict) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The baselines' MASE at the choice origins (each forecasting `horizon` steps, none past `end`), and their
    forecasts there ((origins, horizon) each)."""
    v = values[:end]
    f = {"seasonal-naive": np.stack([seasonal_naive_forecast(v, o, o + horizon, horizon, season if o >= season else 1)
                                     for o in origins])}
    if _has_statsmodels():
        hw = np.stack([ets_forecast(v, o, o + horizon, horizon, season, **ets) for o in origins])
        if np.isfinite(hw).all():
            f["holt-winters"] = hw
    return {k: origin_mase(v, origins, g, scale) for k, g in f.items()}, f


def interval_offsets(actual: np.ndarray, forecast: np.ndarray) -> list[float]:
    """[q10, q90] of the errors actual - forecast: the 80 % interval is [forecast + q10, forecast + q90]."""
    e = np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    return [float(q) for q in np.quantile(e, INTERVAL)]


def step_offsets(errors: list[np.ndarray]) -> list[list[float]]:
    """Split-conformal [lo, hi] for each step ahead from errors[k], the errors actual - forecast k + 1 steps after
    their origins: of the n errors sorted, the floor((n + 1) 0.1)-th and the ceil((n + 1) 0.9)-th (the levels
    that give at least 80 % coverage for exchangeable errors; the smallest and largest when n < 9)."""
    out = []
    for k, e in enumerate(errors):
        e = np.sort(np.asarray(e, dtype=np.float64))
        n = len(e)
        if n == 0 or not np.isfinite(e).all():
            raise ValueError(f"step {k + 1}: no finite errors to take the interval from")
        lo = min(max(int(np.floor((n + 1) * INTERVAL[0])), 1), n)
        hi = max(min(int(np.ceil((n + 1) * INTERVAL[1])), n), 1)
        out.append([float(e[lo - 1]), float(e[hi - 1])])
    return out


def interval_bounds(forecast: np.ndarray, offsets, scale: float = 1.0, steps: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The 80 % interval (lo, hi) around `forecast`: offsets is [q10, q90] (every step alike) or one [lo, hi] per
    step ahead (step_offsets), times `scale`. steps: each value's step ahead, 0-based (default: blocks from
    origins every H = len(offsets) values, as the held-out tail is forecast); past the last step the last one's."""
    f = np.asarray(forecast, dtype=np.float64)
    o = np.asarray(offsets, dtype=np.float64).reshape(-1, 2)  # (H, 2), or (1, 2) for one pair
    k = np.arange(len(f)) % len(o) if steps is None else np.minimum(np.asarray(steps), len(o) - 1)
    return f + o[k, 0] * scale, f + o[k, 1] * scale


def interval_scores(actual: np.ndarray, forecast: np.ndarray, offsets) -> dict[str, float]:
    """Coverage of the 80 % interval (share of actual values inside it) and the mean pinball loss of its two
    quantile forecasts (the lower bound at level 0.1, the upper at 0.9), in the series' units; offsets as
    interval_bounds takes them."""
    actual = np.asarray(actual, dtype=np.float64)
    lo, hi = interval_bounds(forecast, offsets)
    pinball = [np.mean(np.maximum(tau * (actual - q), (tau - 1) * (actual - q))) for tau, q in zip(INTERVAL, (lo, hi))]
    return {"coverage": float(np.mean((actual >= lo) & (actual <= hi))), "pinball": float(np.mean(pinball))}


def choose(state: dict, model: str = "auto") -> tuple[str, str]:
    """(the model to forecast with, why) from a checkpoint's state: `model` itself unless "auto"; "auto" takes
    the network unless a baseline's validation MASE was lower than the network's: at the choice origins
    (state "val_choice") where the run kept those, else at the early-stopping origins."""
    if model not in MODELS:
        raise DataError(f"unknown forecast model {model!r}; expected one of {', '.join(MODELS)}")
    dense = state.get("val_choice") or {}  # scores at more origins (choice_origins), where the run kept them
    if "network" in dense:
        base = {k: float(v) for k, v in dense.items() if k != "network"}
        net = dense["network"]
    else:
        base = {k: float(v) for k, v in (state.get("val_baselines") or {}).items()}
        net = (state.get("best_metrics") or {}).get("val_mase")
    if model != "auto":
        needs_hw = model in ("holt-winters", COMBINED)
        if model != "network" and model not in base and not (needs_hw and _has_statsmodels()):
            raise DataError(f"--model {model} needs statsmodels (pip install statsmodels)")
        return model, "asked for with --model"
    if not base or net is None or not np.isfinite(net):
        return "network", "no validation scores of the baselines in this checkpoint (trained by an older rnnlab)"
    best = min(base, key=base.get)
    scores = ", ".join(f"{k} {v:.3f}" for k, v in base.items())
    if net <= base[best]:
        return "network", f"validation MASE {net:.3f}, the alternatives: {scores}"
    return best, (f"it beat the network on validation, MASE {base[best]:.3f} against the network's {net:.3f} "
                  f"(the alternatives: {scores}); --model network forces the network")


def history_to_keep(n: int, lookback: int, season: int) -> int:
    """How many of the series' last values a checkpoint keeps so that every model can forecast past the end
    from it alone: the network's lookback, and for Holt-Winters enough seasons to fit on (at most 20 seasons or
    1,000 values, whichever is more; the validation fit saw the whole history, this one sees its end)."""
    return min(n, max(lookback, 1, 20 * season, 1000))


def baseline_future(name: str, history: np.ndarray, steps: int, season: int, data: str,
                    ets: dict | None = None) -> np.ndarray:
    """`steps` values after the end of `history` by the baseline `name` (Holt-Winters with the settings `ets`,
    default the data set's)."""
    history = np.asarray(history, dtype=np.float64)
    if name == "seasonal-naive":
        m = season if len(history) >= season else 1
        last = history[len(history) - m:]
        return np.array([last[k % m] for k in range(steps)])
    if name == "holt-winters":
        n = len(history)
        return ets_forecast(np.concatenate([history, np.zeros(steps)]), n, n + steps, steps, season,
                            **(ets or ets_settings(data)))
    raise DataError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
