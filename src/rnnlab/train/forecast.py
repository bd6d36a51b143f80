"""The forecasting task: what `fit` needs, presets for the built-in series, loading a trained forecaster,
scoring it on the held-out tail, and forecasting past the end of the data. Many series in one long-format
table (an id column, or builtin:macro | builtin:grunfeld) train one global model instead: train/panel.py.

    series  [ training part ............ | validation | held-out tail ]
            scaler fitted here only        early stop   scored: MAE, RMSE, MASE, from rolling origins

Training windows (L values in, the next H out) come from the training part only. Validation and test
forecasts are made every H steps from the true history up to each origin (no value after the origin is
ever seen). MASE divides by the in-sample seasonal-naive MAE of everything before the held-out tail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ..data import DataError
from ..data.batching import SplitBatches
from ..data.sequences import LengthBuckets
from ..data.series import Scaler, Series, load_series, mase_scale, rolling_origins, split_series
from ..data.panel import PANEL_BUILTINS, panel_wanted
from ..models import Forecaster
from ..models.global_forecaster import GlobalForecasterConfig, build_forecaster
from .._fields import opt
from .config import RunConfig, TrainConfig, preset_config
from .device import resolve_device
from .forecast_select import (COMBINED, baseline_choice_scores, baseline_future, choice_origins, choose, choose_ets,
                              history_to_keep, interval_offsets, origin_mase, validation_forecasts)
from .metrics import forecast_errors
from .panel import LoadedPanel, PanelTask, read_panel_state
from .task import Loaded, StepLoss, Task, TaskKind

__all__ = [
    "FORECAST_PRESETS", "ForecastDataConfig", "ForecastRunConfig", "ForecastTask", "LoadedForecaster",
    "KIND", "forecast_at", "forecast_config", "forecast_origins", "is_panel", "prepare_series",
]

_BUILTINS = " | ".join(["builtin:co2", "builtin:sunspots", "builtin:airline",
                        *(f"builtin:{n}" for n in PANEL_BUILTINS)])


@dataclass(slots=True)
class ForecastDataConfig:
    data: str = opt("builtin:co2", f"{_BUILTINS} (many series), or a CSV (one series, or many in long format)",
                    metavar="PATH")
    column: str | None = opt(None, "CSV: the column to forecast (none: the only numeric one)", metavar="NAME")
    time_column: str | None = opt(None, "CSV: the time stamps (default: the one date column, found; none: row "
                                  "order); they order the rows and set the season", metavar="NAME")
    missing: str = opt("interpolate", "what to do with missing values", choices=("interpolate", "drop", "error"))
    season: int = opt(0, "seasonal period m (0: the data set's own; for a CSV from its time stamps' frequency, "
                         "1 without)", metavar="M")
    horizon: int = opt(12, "H, steps forecast from each origin", metavar="H")
    test_size: int = opt(0, "held-out tail (0: 2 seasons, at least H)", metavar="N")
    val_size: int = opt(0, "validation part before it (0: as the tail)", metavar="N")
    transform: str = opt("none", "log before scaling with the training part's mean and std", choices=("none", "log"))
    strategy: str = opt("direct", "direct: H outputs at once; recursive: one step, fed back",
                        choices=("direct", "recursive"))
    batch: int = opt(32, "B: windows per batch", metavar="B")
    encoding: str = opt("utf-8", "CSV text encoding")
    # many series (train/panel.py): one global model over a long-format table
    id_column: str | None = opt(None, "many series: the column naming each row's series (default: found when "
                                "unambiguous, the time stamps repeating; none: one series)", metavar="NAME")
    past_covariates: str | None = opt(None, "many series: numeric columns read over the lookback only (their future "
                                      "is unknown), comma-separated", metavar="A,B")
    scaling: str = opt("standard", "many series: each series scaled on its training part by its mean and std, or "
                       "divided by its mean absolute value (meanabs, DeepAR's)", choices=("standard", "meanabs"))


@dataclass(slots=True)
class ForecastRunConfig(RunConfig):
    task: ClassVar[str] = "forecast"
    data: ForecastDataConfig = opt(default_factory=ForecastDataConfig)
    # residual "auto": "seasonal" when the data has a season that fits in the lookback, else "last"
    # (GlobalForecasterConfig: ForecasterConfig plus the many-series fields, series = 0 for one series)
    model: GlobalForecasterConfig = opt(default_factory=lambda: GlobalForecasterConfig(residual="auto"))
    train: TrainConfig = opt(default_factory=lambda: TrainConfig(lr=3e-3, max_time=120.0, eval_every=50,
                                                                 patience=10, warmup_steps=30))


# Defaults per built-in series (measured: docs/TASKS.md); the user's options override them.
FORECAST_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # co2: 4 validation origins (val_size 208) pick the checkpoint more steadily than 2 (measured on 3 seeds)
    "builtin:co2": dict(data=dict(horizon=52, test_size=104, val_size=208),
                        model=dict(lookback=104, residual="seasonal", rnn=dict(hidden_size=32)),
                        train=dict(max_steps=1500, max_time=None, patience=None)),
    "builtin:airline": dict(data=dict(horizon=12, test_size=24, transform="log"),
                            model=dict(lookback=24, residual="seasonal", rnn=dict(hidden_size=32)),
                            train=dict(max_steps=1500, max_time=None)),
    "builtin:sunspots": dict(data=dict(horizon=11, test_size=22),
                             model=dict(lookback=33, residual="last", rnn=dict(hidden_size=32)),
                             train=dict(max_steps=1500, max_time=None)),
    # many series (train/panel.py): two years ahead of 12 quarterly US macro series; residual, scaling, level and
    # budget chosen on validation among 12 settings x 3 seeds (benchmarks/panel.py, docs/TASKS.md "Many series")
    "builtin:macro": dict(data=dict(horizon=8, test_size=8, val_size=8, scaling="meanabs"),
                          model=dict(lookback=16, residual="last", level="window", rnn=dict(hidden_size=32)),
                          train=dict(max_steps=2400, max_time=None, eval_every=50)),
    # 11 firms x 20 years: two years ahead, market value and capital as past covariates (setting chosen on
    # validation among 8; the network still loses to the naive forecast on the held-out years: docs/TASKS.md)
    "builtin:grunfeld": dict(data=dict(horizon=2, test_size=2, val_size=2, past_covariates="value,capital"),
                             model=dict(lookback=5, residual="last", rnn=dict(hidden_size=16)),
                             train=dict(max_steps=2400, max_time=None, eval_every=25)),
}


def forecast_config(data: str, overrides: dict[str, Any] | None = None) -> ForecastRunConfig:
    """A run config: the defaults, then the series' preset, then `overrides` ({"data.horizon": 4, ...})."""
    return preset_config(ForecastRunConfig, FORECAST_PRESETS, data, overrides)


@dataclass
class Prepared:
    series: Series
    val_start: int
    test_start: int
    scaler: Scaler
    scale: float                      # MASE denominator


def prepare_series(cfg: ForecastRunConfig, series: Series | None = None) -> Prepared:
    """Read the series, resolve the season and the split sizes into cfg (so config.json shows them), check
    every part's length, and fit the scaler on the training part only."""
    d, m = cfg.data, cfg.model
    if d.strategy not in ("direct", "recursive"):
        raise DataError(f"unknown strategy {d.strategy!r}; expected direct or recursive")
    if d.transform not in ("none", "log"):
        raise DataError(f"unknown transform {d.transform!r}; expected none or log")
    if d.past_covariates or d.scaling != "standard":  # options of the global model only: never silently ignored
        raise DataError(f"{d.data} is one series; --past-covariates and --scaling are for many series in long format "
                        f"(give --id-column NAME), drop them to forecast this one")
    if series is None:
        series = load_series(d.data, d.column, d.time_column, missing=d.missing, season=d.season or None,
                             encoding=d.encoding)
    d.season = d.season or series.season
    m.season = d.season
    d.test_size = d.test_size or max(d.horizon, 2 * d.season)
    d.val_size = d.val_size or d.test_size
    m.horizon = d.horizon if d.strategy == "direct" else 1
    if m.residual == "auto":
        m.residual = "seasonal" if 1 < d.season <= m.lookback else "last"
    val_start, test_start = split_series(len(series.values), d.test_size, d.val_size, m.lookback, m.horizon,
                                         series.source)
    scaler = Scaler.fit(series.values[:val_start], log=d.transform == "log", what=series.source)
    return Prepared(series, val_start, test_start, scaler, mase_scale(series.values[:test_start], d.season))


def forecast_origins(model: Forecaster, scaler: Scaler, values: np.ndarray, start: int, end: int,
                     horizon: int) -> np.ndarray:
    """Forecasts of values[start:end] (original units), each block of `horizon` from the true history
    before its origin."""
    L = model.config.lookback
    origins = rolling_origins(start, end, horizon)
    z = scaler.transform(values[:end])
    windows = torch.tensor(np.stack([z[o - L:o] for o, _ in origins]), dtype=torch.float32)
    device = next(model.parameters()).device
    f = model.forecast(windows.to(device), horizon).cpu().double().numpy()  # (origins, H) scaled
    return np.concatenate([scaler.inverse(f[i, :n]) for i, (_, n) in enumerate(origins)])


def forecast_at(model: Forecaster, scaler: Scaler, values: np.ndarray, origins: list[int],
                horizon: int) -> np.ndarray:
    """(len(origins), horizon) forecasts in original units, each from the true history before its origin."""
    L = model.config.lookback
    z = scaler.transform(values[:max(origins)])
    windows = torch.tensor(np.stack([z[o - L:o] for o in origins]), dtype=torch.float32)
    device = next(model.parameters()).device
    f = model.forecast(windows.to(device), horizon).cpu().double().numpy()  # (origins, H) scaled
    return np.stack([scaler.inverse(row) for row in f])


class ForecastTask(Task):
    """Windows of the training part in shuffled batches; validation MASE picks `best` and early-stops."""

    name = "forecast"
    unit = "window"
    metrics = ("loss", "mae", "rmse", "mase")
    monitor = "val_mase"
    plot = ("loss", "mean squared error (scaled)")

    def __init__(self, config: ForecastRunConfig, *, series: Series | None = None) -> None:
        self.config = config
        t = config.train
        self.device = resolve_device(t.device)
        self.prep = p = prepare_series(config, series)
        L, H = config.model.lookback, config.model.horizon
        z = p.scaler.transform(p.series.values[:p.val_start])
        origins = range(L, p.val_start - H + 1)
        self.x = torch.tensor(np.stack([z[o - L:o] for o in origins]), dtype=torch.float32)
        self.y = torch.tensor(np.stack([z[o:o + H] for o in origins]), dtype=torch.float32)
        # shuffled windows; under several processes each takes its part of every global batch
        self.batches = SplitBatches(lambda size: LengthBuckets([L] * len(self.x), size, seed=t.seed), config.data.batch)
        torch.manual_seed(t.seed)
        self.model = Forecaster(config.model).to(self.device)
        # the baselines' validation MASE and error quantiles, on the network's own validation origins, with
        # Holt-Winters' settings chosen there too (train/forecast_select.py); the network's come with each evaluation
        d = config.data
        actual = p.series.values[p.val_start:p.test_start]
        self.ets = choose_ets(p.series.values, p.val_start, p.test_start, d.horizon, d.season, d.data)[0]
        base = validation_forecasts(p.series.values, p.val_start, p.test_start, d.horizon, d.season, d.data, self.ets)
        self.val_baselines = {k: forecast_errors(actual, f, p.scale)["mase"] for k, f in base.items()}
        self.intervals = {k: interval_offsets(actual, f) for k, f in base.items()}
        self.val_hw = base.get("holt-winters")  # for the combined forecast's interval
        # the choice network / baselines / combined is scored at more origins than early stopping uses
        self.choice_origins = choice_origins(p.val_start, p.test_start, d.horizon)
        self.val_choice, self.choice_forecasts = baseline_choice_scores(
            p.series.values, self.choice_origins, p.test_start, d.horizon, d.season, p.scale, self.ets)

    def step_loss(self, batch, state) -> StepLoss:
        idx = torch.as_tensor(batch)
        _, loss = self.model(self.x[idx].to(self.device), self.y[idx].to(self.device))
        return StepLoss(loss, None, len(batch))

    def evaluate(self) -> dict[str, float]:
        p, H = self.prep, self.config.data.horizon
        actual = p.series.values[p.val_start:p.test_start]
        f = forecast_origins(self.model, p.scaler, p.series.values, p.val_start, p.test_start, H)
        loss = float(np.mean((p.scaler.transform(f) - p.scaler.transform(actual)) ** 2))
        if np.isfinite(f).all():  # this evaluation's error quantiles: saved with the checkpoint it picks
            self.intervals["network"] = interval_offsets(actual, f)
        v = p.series.values[:p.test_start]
        g = forecast_at(self.model, p.scaler, v, self.choice_origins, H)
        if np.isfinite(g).all():  # and its score at the choice origins, likewise, alone and with Holt-Winters
            self.val_choice["network"] = origin_mase(v, self.choice_origins, g, p.scale)
            hw = self.choice_forecasts.get("holt-winters")
            if hw is not None and self.val_hw is not None and np.isfinite(f).all():
                self.val_choice[COMBINED] = origin_mase(v, self.choice_origins, (g + hw) / 2, p.scale)
                self.intervals[COMBINED] = interval_offsets(actual, (f + self.val_hw) / 2)
        return {"loss": loss, **forecast_errors(actual, f, p.scale)}

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def summary(self) -> str:
        p, d, m = self.prep, self.config.data, self.config.model
        s = p.series
        handled = {"interpolate": "interpolated", "drop": "dropped"}.get(s.missing_policy, "")
        params = sum(q.numel() for q in self.model.parameters())
        return (f"{len(s.values):,} values of {s.name} ({s.index[0]} .. {s.index[-1]}), "
                f"{s.missing} missing{' (' + handled + ')' if s.missing else ''}; season {d.season}"
                f"{' (' + s.season_from + ')' if s.season_from else ''}; "
                f"train {p.val_start} / val {p.test_start - p.val_start} / held-out tail {len(s.values) - p.test_start}; "
                f"{len(self.x):,} training windows\n"
                f"model: lookback {m.lookback} -> {m.rnn.describe()} -> {m.horizon} output(s) ({d.strategy}, "
                f"residual {m.residual}, transform {d.transform}), {params / 1e3:.1f} k parameters\n"
                f"baselines on the same validation origins (MASE): "
                f"{', '.join(f'{k} {v:.3f}' for k, v in self.val_baselines.items())} (Holt-Winters: trend "
                f"{self.ets['trend']}, season {self.ets['seasonal']}, chosen there); `rnnlab forecast` uses the "
                f"network only if its MASE at {len(self.choice_origins)} validation origins is lower than theirs and "
                f"than its mean with Holt-Winters' (combined)")

    def extra_state(self) -> dict[str, Any]:
        s = self.prep.series
        # enough of the end of the series to forecast past it from the checkpoint alone
        keep = history_to_keep(len(s.values), self.config.model.lookback, self.config.data.season)
        return {"scaler": self.prep.scaler.to_json(), "mase_scale": self.prep.scale, "missing": s.missing,
                "val_baselines": self.val_baselines, "intervals": self.intervals, "ets": self.ets,
                "val_choice": self.val_choice,
                "tail_values": s.values[-keep:].tolist(), "tail_index": s.index[-keep:], "freq": s.freq,
                "series_name": s.name}


@dataclass
class LoadedForecaster(Loaded):
    scaler: Scaler  # model: Forecaster, config: ForecastRunConfig

    def choice(self, model: str = "auto") -> tuple[str, str]:
        """(the model `future` forecasts with, why): the network, or a baseline that beat it on validation
        (train/forecast_select.py); `model` forces one of auto | network | seasonal-naive | holt-winters."""
        return choose(self.checkpoint.state, model)

    def interval(self, model: str) -> list[float] | None:
        """[q10, q90]: the offsets of `model`'s 80 % prediction interval (from its validation errors), or None
        when the checkpoint has none (older runs; a network that never evaluated finite)."""
        return (self.checkpoint.state.get("intervals") or {}).get(model)

    def future(self, steps: int, history: np.ndarray | None = None, model: str = "network") -> np.ndarray:
        """`steps` values after the end of `history` (default: the end of the training data's series), by the
        network, a baseline, their mean (combined), or (model="auto") the one `choice` picks."""
        if steps < 1:
            raise DataError(f"steps must be >= 1, got {steps}")
        L = self.model.config.lookback
        h = np.asarray(self.checkpoint.state["tail_values"] if history is None else history, dtype=np.float64)
        name = self.choice(model)[0]
        if name in (COMBINED, "holt-winters", "seasonal-naive"):
            base = baseline_future("holt-winters" if name == COMBINED else name, h, steps, self.config.data.season,
                                   self.config.data.data, self.checkpoint.state.get("ets"))
            return base if name != COMBINED else (base + self.future(steps, h, "network")) / 2
        if len(h) < L:
            raise DataError(f"the history has {len(h)} values; this model reads {L}")
        w = torch.tensor(self.scaler.transform(h[-L:]), dtype=torch.float32)[None]
        device = next(self.model.parameters()).device
        return self.scaler.inverse(self.model.forecast(w.to(device), steps)[0].cpu().double().numpy())


def _read_state(state: dict, config: ForecastRunConfig) -> dict:
    # the series' end that `future` starts from: as many finite numbers as the model reads
    tail = state["tail_values"]
    if not isinstance(tail, list) or len(tail) < config.model.lookback or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in tail):
        raise ValueError(f"tail_values must be at least {config.model.lookback} finite numbers (the series' end)")
    if not isinstance(state.get("tail_index"), list) or not state["tail_index"]:
        raise ValueError("tail_index must be the time stamps of tail_values")
    base = state.get("val_baselines", {})  # absent in checkpoints of older runs: the network is used
    if not isinstance(base, dict) or not all(
            k in ("seasonal-naive", "holt-winters") and isinstance(v, (int, float)) and not isinstance(v, bool)
            and np.isfinite(v) for k, v in base.items()):
        raise ValueError("val_baselines must map seasonal-naive / holt-winters to finite validation MASE values")
    iv = state.get("intervals", {})
    if not isinstance(iv, dict) or not all(
            k in ("network", "seasonal-naive", "holt-winters", COMBINED) and isinstance(v, list) and len(v) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in v)
            and v[0] <= v[1] for k, v in iv.items()):
        raise ValueError("intervals must map network / seasonal-naive / holt-winters / combined to [q10, q90] finite "
                         "offsets")
    dense = state.get("val_choice", {})
    if not isinstance(dense, dict) or not all(
            k in ("network", "seasonal-naive", "holt-winters", COMBINED) and isinstance(v, (int, float))
            and not isinstance(v, bool) for k, v in dense.items()):
        raise ValueError("val_choice must map network / seasonal-naive / holt-winters / combined to validation MASE "
                         "values")
    ets = state.get("ets", {"trend": "add", "seasonal": "add"})
    if not isinstance(ets, dict) or set(ets) != {"trend", "seasonal"} or ets["trend"] not in ("add", None) or \
            ets["seasonal"] not in ("add", "mul", None):
        raise ValueError("ets must be Holt-Winters' settings: trend add or null, seasonal add, mul or null")
    return {"scaler": Scaler.from_json(state["scaler"])}


def is_panel(config: ForecastRunConfig) -> bool:
    """Whether a run is many series (one global model): a trained one knows (model.series); a new one asks its data
    (a built-in panel, --id-column, or a CSV whose id column is found, which is then set in the config)."""
    if config.model.series:
        return True
    d = config.data
    found = panel_wanted(d.data, d.id_column, d.time_column, d.encoding)
    if found is not None:
        d.id_column = found
    return found is not None


def _task(config: ForecastRunConfig, **restored) -> Task:
    return PanelTask(config, **restored) if is_panel(config) else ForecastTask(config, **restored)


def _loaded(**kw) -> Loaded:
    return LoadedPanel(**kw) if kw["config"].model.series else LoadedForecaster(**kw)


def _read_any_state(state: dict, config: ForecastRunConfig) -> dict:
    return read_panel_state(state, config) if config.model.series else _read_state(state, config)


KIND = TaskKind(
    "forecast", "a forecaster", "time-series forecasting (many-to-one)",
    "Train a forecaster (a window of past values -> recurrent layer -> the next H values) on a series, then score "
    "it on the held-out tail with MAE, RMSE and MASE. A long-format table of many series (an id column) trains one "
    "global model: each series scaled on its own training part, its id a learned embedding, calendar features "
    "known ahead, --past-covariates read over the lookback; scored per series and in aggregate.",
    ForecastRunConfig, _task, build_forecaster, _loaded, _read_any_state, presets=FORECAST_PRESETS)
