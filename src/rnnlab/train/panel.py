"""Forecasting many series with one global model (`rnnlab train forecast` on a long-format table).

    each series  [ training part ........ | validation | held-out tail ]   its own length, start and end
                   its scaler fitted here    early stop   scored per series and in aggregate

One GlobalForecaster (models/global_forecaster.py) learns from the windows of every series' training part,
drawn together in shuffled batches; the series id is a learned embedding. Each series is scaled on its own
training part only (standardised, or divided by its mean absolute value: --scaling), as are its past
covariates; the calendar features need no scaling. Validation and held-out forecasts come from rolling
origins every H steps inside each series, from its true history.

Metrics: per series MAE, RMSE and MASE (against the series' own in-sample seasonal naive); in aggregate the
mean of the per-series MASE (each series weighs the same, whatever its units), the mean of the per-series
MAE (mixed units: a rough number) and the pooled coverage of the 80 % intervals.

Intervals: split conformal per step ahead, pooled over the series. Validation alone (one or two origins per
series, often a calm stretch) gave quantiles far too narrow for the held-out tail (35-44 % coverage on macro),
so the errors come from rolling origins at every step over the whole history before the tail (the training
part's origins too: out of sample for the baselines; in sample for the network, whose errors on training
targets are therefore scaled up by its validation / training error ratio: network_offsets), each divided by
its series' MASE scale; the split-conformal 10 % / 90 % levels of the errors k steps ahead bound step k
(forecast_select.step_offsets), and a series' interval is its forecast + those offsets x its scale.
Holt-Winters is refitted at each origin, so it is calibrated at CALIBRATION_FITS origins per series, evenly
spaced and ending at the last.

Choice: `rnnlab forecast` (model auto) picks per series, by that series' own validation MASE, the network,
seasonal naive or Holt-Winters (forecast_select.choose on each series); `--model` forces one for all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..baselines import ets_forecast, seasonal_naive_forecast
from ..data import DataError
from ..data.batching import SplitBatches
from ..data.panel import Panel, calendar_features, future_times, load_panel
from ..data.sequences import LengthBuckets
from ..data.series import Scaler, mase_scale, rolling_origins
from ..models.global_forecaster import GlobalForecaster
from .device import resolve_device
from .forecast_select import (BASELINES, COMBINED, _has_statsmodels, baseline_future, choose, history_to_keep,
                              interval_bounds, interval_scores, step_offsets)
from .metrics import forecast_errors
from .task import Loaded, StepLoss, Task

__all__ = ["CALIBRATION_FITS", "LoadedPanel", "PanelTask", "PreparedPanel", "aggregate", "baselines_at",
           "calibration_errors", "calibration_origins", "network_at", "network_offsets", "panel_baselines",
           "panel_forecasts", "prepare_panel", "read_panel_state", "score_series"]

SCALINGS = ("standard", "meanabs")
CALIBRATION_FITS = 16  # Holt-Winters refits per series for its interval (about 0.1 s each on macro)


@dataclass
class PreparedPanel:
    panel: Panel
    splits: list[tuple[int, int]]     # per series (val_start, test_start)
    scalers: list[Scaler]             # per series, fitted on its training part
    cov: list[tuple[np.ndarray, np.ndarray]]  # per series (mean (P,), std (P,)) of its past covariates
    scales: list[float]               # per series MASE denominator (in-sample seasonal naive MAE)
    known: list[np.ndarray]           # per series (N_s + H, 2K) calendar features, H past its end
    codes: list[int]                  # per series its row of the model's id embedding
    left_out: list[str] = field(default_factory=list)


def _fit_scaler(train: np.ndarray, scaling: str, log: bool, what: str) -> Scaler:
    if scaling == "standard":
        return Scaler.fit(train, log=log, what=what)
    if log and (train <= 0).any():
        raise DataError(f"{what} has values <= 0; --transform log needs positive values, use --transform none")
    x = np.log(train) if log else train
    s = float(np.mean(np.abs(x)))
    return Scaler(0.0, s if s > 1e-12 else 1.0, log)


def _calendar(panel: Panel, s: int, extra: int) -> np.ndarray:
    """Series s's calendar features for its stamps and `extra` stamps after its end."""
    stamps = panel.index[s] + (future_times(panel.index[s][-1], panel.freq, extra) if extra else [])
    return calendar_features(stamps, panel.calendar) if panel.calendar else np.zeros((len(stamps), 0))


def prepare_panel(cfg, panel: Panel | None = None, ids: list[str] | None = None) -> PreparedPanel:
    """Read the panel, resolve the season and sizes into cfg (as prepare_series does), split every series, fit
    each one's scalers on its training part. ids: the series a trained model knows (from its checkpoint): the
    panel's series are mapped to their rows, and one it does not know is a DataError; without ids the model's
    series count is set from the data (a new run)."""
    d, m = cfg.data, cfg.model
    if d.strategy != "direct":
        raise DataError("many series forecast with --strategy direct (H values at once); drop --strategy recursive")
    if d.scaling not in SCALINGS:
        raise DataError(f"unknown scaling {d.scaling!r}; expected one of {', '.join(SCALINGS)}")
    if d.transform not in ("none", "log"):
        raise DataError(f"unknown transform {d.transform!r}; expected none or log")
    if m.ensemble > 1:
        raise DataError("--ensemble is for one series; many series train one global model (drop --ensemble)")
    if panel is None:
        panel = load_panel(d.data, d.column, d.time_column, d.id_column, d.past_covariates, missing=d.missing,
                           season=d.season or None, encoding=d.encoding)
    d.id_column = panel.id_column
    d.season = d.season or panel.season
    m.season = d.season
    d.test_size = d.test_size or max(d.horizon, 2 * d.season)
    d.val_size = d.val_size or d.test_size
    m.horizon, H, L = d.horizon, d.horizon, m.lookback
    if m.residual == "auto":
        m.residual = "seasonal" if 1 < d.season <= L else "last"
    if d.horizon > d.test_size or d.horizon > d.val_size:
        raise DataError(f"the horizon ({d.horizon}) is longer than the held-out tail ({d.test_size}) or the "
                        f"validation part ({d.val_size}); lower --horizon or raise --test-size / --val-size")
    need = L + H + d.val_size + d.test_size
    keep = [s for s in range(len(panel.ids)) if len(panel.values[s]) >= need]
    left_out = [panel.ids[s] for s in range(len(panel.ids)) if s not in keep]
    if not keep:
        longest = max(len(v) for v in panel.values)
        raise DataError(f"{panel.source}: every series is shorter than one training window plus validation and "
                        f"held-out parts (lookback {L} + horizon {H} + {d.val_size} + {d.test_size} = {need} values; "
                        f"the longest has {longest}); lower --lookback, --test-size or --val-size")
    if ids is None:
        codes = list(range(len(keep)))
        m.series = len(keep)
    else:
        known_ids = {name: k for k, name in enumerate(ids)}
        unknown = [panel.ids[s] for s in keep if panel.ids[s] not in known_ids]
        if unknown:
            raise DataError(f"{panel.source}: series {', '.join(map(repr, unknown[:5]))} not in the run (it was "
                            f"trained on {len(ids)} series: {', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''}); "
                            f"score only series it knows")
        codes = [known_ids[panel.ids[s]] for s in keep]
    m.known, m.past = 2 * len(panel.calendar), len(panel.past_names)
    sub = Panel([panel.ids[s] for s in keep], [panel.values[s] for s in keep], [panel.index[s] for s in keep],
                [panel.past[s] for s in keep], panel.past_names, panel.freq, panel.calendar, panel.season,
                panel.season_from, panel.name, panel.source, panel.id_column, panel.time_column, panel.missing,
                panel.missing_policy, panel.notes)
    splits, scalers, cov, scales, known = [], [], [], [], []
    for s, y in enumerate(sub.values):
        n = len(y)
        val_start, test_start = n - d.test_size - d.val_size, n - d.test_size
        what = f"series {sub.ids[s]!r} of {sub.source}"
        splits.append((val_start, test_start))
        scalers.append(_fit_scaler(y[:val_start], d.scaling, d.transform == "log", what))
        x = sub.past[s][:val_start]
        sd = x.std(0) if len(x) else np.ones(0)
        cov.append((x.mean(0), np.where(sd > 1e-12, sd, 1.0)))
        scales.append(mase_scale(y[:test_start], d.season))
        known.append(_calendar(sub, s, H))
    return PreparedPanel(sub, splits, scalers, cov, scales, known, codes, left_out)


def _inputs(prep: PreparedPanel, s: int, origins: list[int], L: int, H: int, history: np.ndarray | None = None,
            past: np.ndarray | None = None):
    """(window (n, L), ids (n,), past (n, L, P), known (n, L+H, K)) of series s at `origins` (scaled)."""
    y = prep.panel.values[s] if history is None else history
    x = prep.panel.past[s] if past is None else past
    z = prep.scalers[s].transform(y[:max(origins)])
    mu, sd = prep.cov[s]
    xz = (x[:max(origins)] - mu) / sd
    k = prep.known[s]
    w = np.stack([z[o - L:o] for o in origins])
    p = np.stack([xz[o - L:o] for o in origins])
    kn = np.stack([k[o - L:o + H] for o in origins])
    return w, np.full(len(origins), prep.codes[s]), p, kn


def _tensors(parts, device) -> list[torch.Tensor]:
    w, ids, p, k = (np.concatenate(a) for a in zip(*parts))
    return [torch.tensor(w, dtype=torch.float32, device=device), torch.tensor(ids, dtype=torch.long, device=device),
            torch.tensor(p, dtype=torch.float32, device=device), torch.tensor(k, dtype=torch.float32, device=device)]


def network_at(model: GlobalForecaster, prep: PreparedPanel, origins: list[list[int]]) -> list[np.ndarray]:
    """Per series, the network's H-step forecasts from each of its origins (original units, (n_s, H)), each from
    the true history before the origin: all series in one forward pass."""
    L, H = model.config.lookback, model.config.horizon
    parts = [_inputs(prep, s, o, L, H) for s, o in enumerate(origins)]
    device = next(model.parameters()).device
    f = model.forecast(*_tensors(parts, device)).cpu().double().numpy()  # (all origins, H) scaled
    out, row = [], 0
    for s, o in enumerate(origins):
        out.append(np.stack([prep.scalers[s].inverse(f[row + i]) for i in range(len(o))]))
        row += len(o)
    return out


def panel_forecasts(model: GlobalForecaster, prep: PreparedPanel, part: str) -> list[np.ndarray]:
    """Per series, forecasts of its validation part (part="val") or held-out tail ("test"), original units,
    every H steps from the true history before each origin."""
    H = model.config.horizon
    spans = [(v, t) if part == "val" else (t, len(prep.panel.values[s])) for s, (v, t) in enumerate(prep.splits)]
    blocks = [rolling_origins(a, b, H) for a, b in spans]
    f = network_at(model, prep, [[o for o, _ in b] for b in blocks])
    return [np.concatenate([f[s][i, :n] for i, (_, n) in enumerate(b)]) for s, b in enumerate(blocks)]


def calibration_origins(prep: PreparedPanel, L: int, most: int | None = None) -> list[list[int]]:
    """Per series, the origins whose errors calibrate the intervals: every step from the first with a full
    lookback to the last before the held-out tail, or `most` of them evenly spaced, ending at the last."""
    out = []
    for _, t in prep.splits:
        o = list(range(L, t))
        if most and len(o) > most:
            o = o[::-1][::-(-len(o) // most)][::-1]
        out.append(o)
    return out


def baselines_at(prep: PreparedPanel, origins: list[list[int]], season: int, H: int, name: str) -> list[np.ndarray]:
    """Per series, baseline `name`'s H-step forecasts from each of its origins ((n_s, H), original units)."""
    out = []
    for s, os_ in enumerate(origins):
        y = prep.panel.values[s]
        if name == "seasonal-naive":
            rows = [seasonal_naive_forecast(y, o, o + H, H, season if o >= season else 1) for o in os_]
        else:
            rows = [ets_forecast(y, o, o + H, H, season, trend="add", seasonal="add") for o in os_]
        out.append(np.stack(rows))
    return out


def calibration_errors(prep: PreparedPanel, origins: list[list[int]], forecasts: list[np.ndarray],
                       H: int, targets: str = "all") -> list[np.ndarray]:
    """Per step ahead k (0-based), the errors (actual - forecast) / the series' MASE scale of every series'
    forecasts from its origins, pooled; only targets before the held-out tail count ("all"), or only those in
    the training part ("train") or in the validation part ("val")."""
    errors: list[list[float]] = [[] for _ in range(H)]
    for s, (os_, f) in enumerate(zip(origins, forecasts)):
        y, (v, t), sc = prep.panel.values[s], prep.splits[s], prep.scales[s]
        a, b = {"all": (0, t), "train": (0, v), "val": (v, t)}[targets]
        for o, row in zip(os_, f):
            for k in range(H):
                if a <= o + k < b:
                    errors[k].append((y[o + k] - row[k]) / sc)
    return [np.asarray(e) for e in errors]


def network_offsets(prep: PreparedPanel, origins: list[list[int]], forecasts: list[np.ndarray],
                    H: int) -> tuple[list[list[float]], float]:
    """The network's per-step offsets and r. Its errors on training-part targets are in sample (it was fitted
    to them: on grunfeld, offsets from them alone covered 5-18 % of the validation part), so they are multiplied
    by r = its mean absolute error on validation targets / that on training targets, at least 1 (a ratio below
    1 says more about a calm validation stretch than about the network); validation targets count as they are."""
    fitted = calibration_errors(prep, origins, forecasts, H, "train")
    held = calibration_errors(prep, origins, forecasts, H, "val")
    a, b = np.abs(np.concatenate(fitted)), np.abs(np.concatenate(held))
    r = max(1.0, float(b.mean() / a.mean())) if len(a) and len(b) and a.mean() > 0 else 1.0
    return step_offsets([np.concatenate([e * r, g]) for e, g in zip(fitted, held)]), r


def panel_baselines(prep: PreparedPanel, part: str, season: int, H: int, which=("seasonal-naive", "holt-winters")
                    ) -> dict[str, list[np.ndarray]]:
    """Per baseline, per series forecasts of the validation part or the held-out tail from the same origins
    every H steps (Holt-Winters, additive trend and season, only with statsmodels)."""
    out: dict[str, list[np.ndarray]] = {}
    for name in which:
        if name == "holt-winters" and not _has_statsmodels():
            continue
        fs = []
        for s, (v, t) in enumerate(prep.splits):
            y = prep.panel.values[s]
            a, b = (v, t) if part == "val" else (t, len(y))
            if name == "seasonal-naive":
                fs.append(seasonal_naive_forecast(y, a, b, H, season if a >= season else 1))
            else:
                fs.append(ets_forecast(y, a, b, H, season, trend="add", seasonal="add"))
        out[name] = fs
    return out


def score_series(actual: list[np.ndarray], forecasts: list[np.ndarray], scales: list[float],
                 offsets=None, series_offsets: list | None = None) -> list[dict[str, float]]:
    """Per series MAE, RMSE, MASE, and with offsets (in MASE-scale units: [q10, q90], or one [lo, hi] per step
    ahead; series_offsets: one such per series) the 80 % interval's coverage and mean pinball loss (series
    units)."""
    rows = []
    for s, (a, f, sc) in enumerate(zip(actual, forecasts, scales)):
        r = forecast_errors(a, f, sc)
        o = series_offsets[s] if series_offsets is not None else offsets
        if o is not None:
            lo, hi = interval_bounds(f, o, sc)
            r["inside"] = int(np.sum((a >= lo) & (a <= hi)))
            r["n"] = len(a)
            r["coverage"] = r["inside"] / len(a)
            r["pinball"] = interval_scores(a, f, np.asarray(o, dtype=np.float64) * sc)["pinball"]
        rows.append(r)
    return rows


def aggregate(rows: list[dict[str, float]]) -> dict[str, float]:
    """The panel's numbers from per-series rows: mean MASE, median MASE, mean MAE (mixed units), and the pooled
    coverage of the intervals (all held-out values together) when the rows have it."""
    mase = [r["mase"] for r in rows]
    out = {"mase": float(np.mean(mase)), "median_mase": float(np.median(mase)),
           "mae": float(np.mean([r["mae"] for r in rows]))}
    if rows and "inside" in rows[0]:
        out["coverage"] = sum(r["inside"] for r in rows) / sum(r["n"] for r in rows)
    return out


class PanelTask(Task):
    """Windows of every series' training part in shuffled batches; mean validation MASE picks `best`."""

    name = "forecast"
    unit = "window"
    metrics = ("loss", "mae", "rmse", "mase")
    monitor = "val_mase"
    plot = ("loss", "mean squared error (scaled)")

    def __init__(self, config, *, panel: Panel | None = None) -> None:
        self.config = config
        t = config.train
        self.device = resolve_device(t.device)
        self.prep = p = prepare_panel(config, panel)
        L, H = config.model.lookback, config.model.horizon
        parts, ys = [], []
        for s, (val_start, _) in enumerate(p.splits):  # every window that ends inside the training part
            origins = list(range(L, val_start - H + 1))
            parts.append(_inputs(p, s, origins, L, H))
            z = p.scalers[s].transform(p.panel.values[s][:val_start])
            ys.append(np.stack([z[o:o + H] for o in origins]))
        self.x, self.ids, self.past, self.known = _tensors(parts, "cpu")
        self.y = torch.tensor(np.concatenate(ys), dtype=torch.float32)
        self.batches = SplitBatches(lambda size: LengthBuckets([L] * len(self.x), size, seed=t.seed), config.data.batch)
        torch.manual_seed(t.seed)
        self.model = GlobalForecaster(config.model).to(self.device)
        # the baselines' validation MASE on the network's validation origins, per series (the choice per series)
        # and their mean (the whole panel's); their intervals from the errors at the calibration origins
        actual = self._actual("val")
        base = panel_baselines(p, "val", config.data.season, H)
        rows = {k: score_series(actual, f, p.scales) for k, f in base.items()}
        self.val_series = {k: [r["mase"] for r in rs] for k, rs in rows.items()
                           if all(np.isfinite(r["mase"]) for r in rs)}
        self.val_baselines = {k: aggregate(rows[k])["mase"] for k in self.val_series}
        self.calibration = calibration_origins(p, L)
        self.error_ratio = 1.0  # the network's out-of-sample / in-sample error ratio (network_offsets)
        self.intervals = {}
        for k in self.val_series:
            origins = calibration_origins(p, L, CALIBRATION_FITS if k == "holt-winters" else None)
            f = baselines_at(p, origins, config.data.season, H, k)
            if all(np.isfinite(g).all() for g in f):
                self.intervals[k] = step_offsets(calibration_errors(p, origins, f, H))

    def _actual(self, part: str) -> list[np.ndarray]:
        p = self.prep
        return [y[v:t] if part == "val" else y[t:] for y, (v, t) in zip(p.panel.values, p.splits)]

    def step_loss(self, batch, state) -> StepLoss:
        idx = torch.as_tensor(batch)
        dev = self.device
        _, loss = self.model(self.x[idx].to(dev), self.ids[idx].to(dev), self.past[idx].to(dev),
                             self.known[idx].to(dev), self.y[idx].to(dev))
        return StepLoss(loss, None, len(batch))

    def evaluate(self) -> dict[str, float]:
        p = self.prep
        actual = self._actual("val")
        f = panel_forecasts(self.model, p, "val")
        rows = score_series(actual, f, p.scales)
        loss = float(np.mean(np.concatenate([(sc.transform(a) - sc.transform(g)) ** 2
                                             for a, g, sc in zip(actual, f, p.scalers)])))
        # this evaluation's per-series scores and intervals: saved with the checkpoint it picks
        self.val_series["network"] = [r["mase"] for r in rows]
        g = network_at(self.model, p, self.calibration)
        if all(np.isfinite(x).all() for x in g):
            self.intervals["network"], self.error_ratio = network_offsets(p, self.calibration, g,
                                                                          self.config.model.horizon)
        return {"loss": loss, "mae": float(np.mean([r["mae"] for r in rows])),
                "rmse": float(np.mean([r["rmse"] for r in rows])), "mase": aggregate(rows)["mase"]}

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def summary(self) -> str:
        p, d, m = self.prep, self.config.data, self.config.model
        q = p.panel
        lengths = [len(v) for v in q.values]
        cov = (f"past covariates {', '.join(q.past_names)}" if q.past_names else "no past covariates") + "; " + \
              (f"calendar features {', '.join(q.calendar)} (known ahead)" if q.calendar else "no calendar features")
        notes = "".join(f"; {n}" for n in q.notes)
        handled = {"interpolate": " (interpolated)", "drop": " (dropped)"}.get(q.missing_policy, "") if q.missing else ""
        out = (f"{len(q.ids)} series of {q.name} by {q.id_column!r} ({min(lengths)}-{max(lengths)} values each, "
               f"{sum(lengths):,} in all), {q.missing} missing inside them{handled}"
               f"{notes}; season {d.season} ({q.season_from}); per series: validation {d.val_size} / held-out tail "
               f"{d.test_size}; {len(self.x):,} training windows from all series; {cov}")
        if p.left_out:
            out += (f"\nleft out, shorter than lookback + horizon + validation + tail "
                    f"({m.lookback + d.horizon + d.val_size + d.test_size}): {len(p.left_out)} series "
                    f"({', '.join(p.left_out[:5])}{', ...' if len(p.left_out) > 5 else ''})")
        params = sum(t.numel() for t in self.model.parameters())
        out += (f"\nmodel: one global network, lookback {m.lookback} -> {m.rnn.describe()} -> {m.horizon} outputs, "
                f"series id embedding {m.series} x {m.id_embed}, residual {m.residual}, scaling {d.scaling} per "
                f"series (training part only), transform {d.transform}, {params / 1e3:.1f} k parameters\n"
                f"baselines on the same validation origins (mean MASE over series): "
                f"{', '.join(f'{k} {v:.3f}' for k, v in self.val_baselines.items())}; `rnnlab forecast` uses the "
                f"network only if its best validation MASE is lower")
        return out

    def extra_state(self) -> dict[str, Any]:
        p, d = self.prep, self.config.data
        q = p.panel
        keep = [history_to_keep(len(v), self.config.model.lookback, d.season) for v in q.values]
        return {"val_baselines": self.val_baselines, "val_series": self.val_series, "intervals": self.intervals,
                "interval_error_ratio": self.error_ratio, "missing": q.missing,
                "panel": {"ids": q.ids, "scalers": [s.to_json() for s in p.scalers],
                          "cov_mean": [c[0].tolist() for c in p.cov], "cov_std": [c[1].tolist() for c in p.cov],
                          "mase_scales": p.scales, "tail_values": [v[-k:].tolist() for v, k in zip(q.values, keep)],
                          "tail_past": [x[-k:].tolist() for x, k in zip(q.past, keep)],
                          "tail_index": [ix[-k:] for ix, k in zip(q.index, keep)], "freq": q.freq,
                          "calendar": list(q.calendar), "past_names": q.past_names, "series_name": q.name,
                          "id_column": q.id_column}}


@dataclass
class LoadedPanel(Loaded):
    """A trained global forecaster (model: GlobalForecaster, config: ForecastRunConfig) and its series."""

    panel: dict  # state.json's "panel": ids, scalers, tails, calendar

    @property
    def ids(self) -> list[str]:
        return self.panel["ids"]

    def choices(self, model: str = "auto") -> list[tuple[str, str]]:
        """Per series (in `ids` order), (the model `future` forecasts it with, why): `model` itself unless "auto";
        "auto" applies forecast_select.choose to each series' own validation MASE (checkpoints of an older
        rnnlab, without per-series scores: one choice for all, by the mean)."""
        if model == COMBINED:
            raise DataError("--model combined (the network and Holt-Winters averaged) is for one series; many series "
                            "take network, seasonal-naive, holt-winters or auto")
        state = self.checkpoint.state
        per = state.get("val_series") or {}
        if model != "auto" or "network" not in per:
            return [choose(state, model)] * len(self.ids)
        return [choose({"best_metrics": {"val_mase": per["network"][s]},
                        "val_baselines": {k: v[s] for k, v in per.items() if k in BASELINES}})
                for s in range(len(self.ids))]

    def choice(self, model: str = "auto") -> tuple[str, str]:
        """(what `future` uses, why) in one line: one model, or "auto" with how many series each model serves."""
        chosen = self.choices(model)
        if model != "auto" or "network" not in (self.checkpoint.state.get("val_series") or {}):
            return chosen[0]
        picks = [c[0] for c in chosen]
        if len(set(picks)) == 1:
            return picks[0], f"it had the lowest validation MASE on each of the {len(picks)} series"
        counts = ", ".join(f"{k} for {picks.count(k)}" for k in dict.fromkeys(picks))
        return "auto", (f"per series, the model with the lowest validation MASE on that series: {counts} of "
                        f"{len(picks)} series; --model forces one for all")

    def interval(self, model: str) -> list | None:
        """The offsets of `model`'s 80 % interval in MASE-scale units (multiply by a series' scale): one [lo, hi]
        per step ahead ([q10, q90] in runs of an older rnnlab), or None."""
        return (self.checkpoint.state.get("intervals") or {}).get(model)

    def prepared(self) -> PreparedPanel:
        """The series' ends kept in the checkpoint, as a PreparedPanel whose every series ends where the data did."""
        q, d = self.panel, self.config.data
        H = self.config.model.horizon
        values = [np.asarray(v, dtype=np.float64) for v in q["tail_values"]]
        past = [np.asarray(x, dtype=np.float64).reshape(len(v), len(q["past_names"])) for x, v in
                zip(q["tail_past"], values)]
        panel = Panel(q["ids"], values, q["tail_index"], past, q["past_names"], q["freq"], tuple(q["calendar"]),
                      d.season, "", q["series_name"], d.data, q["id_column"], d.time_column, 0)
        known = [_calendar(panel, s, H) for s in range(len(values))]
        return PreparedPanel(panel, [(len(v), len(v)) for v in values],
                             [Scaler.from_json(s) for s in q["scalers"]],
                             [(np.asarray(a), np.asarray(b)) for a, b in zip(q["cov_mean"], q["cov_std"])],
                             q["mase_scales"], known, list(range(len(values))))

    def future(self, steps: int, model: str = "network") -> list[np.ndarray]:
        """Per series (in `ids` order), `steps` values after the end of its data, by the network, a baseline, or
        (model="auto") the one `choices` picks for that series. The network forecasts H at a time; past H each
        block is appended to the history for the next (its calendar features continue with the dates), which a
        model with past covariates cannot do: their future is unknown, so it forecasts at most H."""
        if steps < 1:
            raise DataError(f"steps must be >= 1, got {steps}")
        picks = [c[0] for c in self.choices(model)]
        prep = self.prepared()
        net = self._network_future(prep, steps) if "network" in picks else None
        return [net[s] if name == "network" else
                baseline_future(name, prep.panel.values[s], steps, self.config.data.season, self.config.data.data)
                for s, name in enumerate(picks)]

    def future_intervals(self, forecasts: list[np.ndarray], model: str = "network"
                         ) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per series, the 80 % interval (lo, hi) around its `future` forecast by the model `choices` picks for it
        (step k ahead gets step k's offsets; past the horizon the last step's), or None without offsets."""
        scales = self.panel["mase_scales"]
        out = []
        for s, ((name, _), f) in enumerate(zip(self.choices(model), forecasts)):
            o = self.interval(name)
            out.append(None if o is None else interval_bounds(f, o, scales[s], steps=np.arange(len(f))))
        return out

    def _network_future(self, prep: PreparedPanel, steps: int) -> list[np.ndarray]:
        H, P = self.config.model.horizon, self.config.model.past
        if steps > H and P:
            raise DataError(f"--steps {steps}: this model reads past covariates, whose future is unknown, and "
                            f"forecasts {H} steps at once; ask for at most {H}, or train with --horizon {steps}")
        L, q = self.config.model.lookback, prep.panel
        device = next(self.model.parameters()).device
        values, index = [v.copy() for v in q.values], [list(ix) for ix in q.index]
        out = [[] for _ in values]
        while len(out[0]) * H < steps:  # blocks of H, each from the history and the blocks before it
            parts = []
            for s in range(len(values)):
                past = q.past[s] if len(out[0]) == 0 else np.zeros((len(values[s]), 0))  # P = 0 past one block
                block = Panel([q.ids[s]], [values[s]], [index[s]], [past], q.past_names, q.freq, q.calendar,
                              q.season, "", q.name, q.source, q.id_column, q.time_column, 0)
                one = PreparedPanel(block, [(len(values[s]),) * 2], [prep.scalers[s]], [prep.cov[s]], [1.0],
                                    [_calendar(block, 0, H)], [prep.codes[s]])
                parts.append(_inputs(one, 0, [len(values[s])], L, H))
            f = self.model.forecast(*_tensors(parts, device)).cpu().double().numpy()  # (S, H) scaled
            for s in range(len(values)):
                y = prep.scalers[s].inverse(f[s])
                out[s].append(y)
                values[s] = np.concatenate([values[s], y])
                index[s] = index[s] + future_times(index[s][-1], q.freq, H)
        return [np.concatenate(o)[:steps] for o in out]


def read_panel_state(state: dict, config) -> dict:
    """LoadedPanel's extras from a checkpoint's state.json, every list checked against the series count."""
    q = state["panel"]
    S, L = config.model.series, config.model.lookback
    P = config.model.past
    if not isinstance(q, dict) or not isinstance(q.get("ids"), list) or len(q["ids"]) != S or \
            not all(isinstance(i, str) for i in q["ids"]):
        raise ValueError(f"panel.ids must be the {S} series names the model was trained on")
    for key in ("scalers", "cov_mean", "cov_std", "mase_scales", "tail_values", "tail_past", "tail_index"):
        if not isinstance(q.get(key), list) or len(q[key]) != S:
            raise ValueError(f"panel.{key} must hold one entry per series ({S})")
    for s in range(S):
        Scaler.from_json(q["scalers"][s])
        tail = q["tail_values"][s]
        if not isinstance(tail, list) or len(tail) < L or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in tail):
            raise ValueError(f"panel.tail_values[{s}] must be at least {L} finite numbers (the series' end)")
        past = np.asarray(q["tail_past"][s], dtype=np.float64)
        if len(q["tail_index"][s]) != len(tail) or past.size != len(tail) * P:
            raise ValueError(f"panel.tail_index[{s}] and tail_past[{s}] must match tail_values[{s}]")
        if len(q["cov_mean"][s]) != P or len(q["cov_std"][s]) != P:
            raise ValueError(f"panel.cov_mean[{s}] and cov_std[{s}] must hold {P} numbers")
        if not (isinstance(q["mase_scales"][s], (int, float)) and q["mase_scales"][s] > 0):
            raise ValueError(f"panel.mase_scales[{s}] must be a number > 0")
    per = state.get("val_series", {})  # absent in checkpoints of older runs: one choice for all series
    if not isinstance(per, dict) or not all(k in ("network", *BASELINES) and isinstance(v, list) and len(v) == S
                                            for k, v in per.items()):
        raise ValueError(f"val_series must map network / seasonal-naive / holt-winters to {S} validation MASE values")
    for k, o in (state.get("intervals") or {}).items():
        a = np.asarray(o, dtype=np.float64) if isinstance(o, list) else np.zeros(0)
        if k not in ("network", *BASELINES) or a.size < 2 or a.size % 2 or not np.isfinite(a).all() or \
                (a.reshape(-1, 2)[:, 0] > a.reshape(-1, 2)[:, 1]).any():
            raise ValueError("intervals must map network / seasonal-naive / holt-winters to [lo, hi] finite offsets "
                             "(one pair, or one per step ahead)")
    if len(q.get("calendar", [])) * 2 != config.model.known or len(q.get("past_names", [])) != P:
        raise ValueError("panel.calendar and panel.past_names must match the model's known and past covariates")
    return {"panel": q}
