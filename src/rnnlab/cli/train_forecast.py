"""`rnnlab train forecast`: train a forecaster on a series, then score it on the held-out tail."""

from __future__ import annotations

import argparse
import dataclasses

from ..models import ForecasterConfig
from ..models.forecaster import RESIDUALS
from ..train.forecast import ForecastRunConfig, ForecastTask, forecast_config, load_forecaster
from .eval_forecast import score_tail
from .runopts import (
    MODEL_OPTS, add_model_options, add_run_options, add_train_options, given, resolve_run, run_fit, set_threads,
)

__all__ = ["EXAMPLES", "add_task_parser"]

D = ForecastRunConfig()

EXAMPLES = """
examples:
  rnnlab train forecast --data builtin:co2                 # weekly CO2, 52 weeks ahead, 2 years held out
  rnnlab train forecast --data builtin:airline             # monthly passengers, log scale, 12 months ahead
  rnnlab train forecast --data sales.csv --column units --time-column date --season 7 --horizon 14 --lookback 56
  rnnlab train forecast --data builtin:co2 --strategy recursive --missing drop
  rnnlab forecast runs/forecast-20250101-120000 --steps 52  # values after the end of the data, as CSV

Built-in series take tuned defaults (rnnlab.train.forecast.FORECAST_PRESETS); options given here override
them. The run folder holds config.json, metrics.csv, loss.png, forecast.png and the checkpoints.
"""

DATA_OPTS = ["column", "time_column", "missing", "season", "horizon", "test_size", "val_size", "transform",
             "strategy", "batch", "encoding"]


def add_task_parser(tasks) -> None:
    p = tasks.add_parser(
        "forecast", help="time-series forecasting (many-to-one)", epilog=EXAMPLES,
        description="Train a forecaster (a window of past values -> recurrent layer -> the next H values) on a "
                    "series, then score it on the held-out tail with MAE, RMSE and MASE.",
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="PATH", help="builtin:co2 | builtin:sunspots | builtin:airline, or a CSV "
                   f"(default {D.data.data})")
    g.add_argument("--column", metavar="NAME", help="CSV: the column to forecast (default: the only numeric one)")
    g.add_argument("--time-column", metavar="NAME", help="CSV: time stamps, used for dates in forecasts")
    g.add_argument("--missing", choices=["interpolate", "drop", "error"],
                   help=f"what to do with missing values (default {D.data.missing})")
    g.add_argument("--season", type=int, metavar="M", help="seasonal period (default: the data set's; 1 for a CSV)")
    g.add_argument("--horizon", type=int, metavar="H", help="steps forecast from each origin (default: preset, "
                   f"else {D.data.horizon})")
    g.add_argument("--lookback", type=int, metavar="L", help="past values the model reads (default: preset, "
                   f"else {D.model.lookback})")
    g.add_argument("--test-size", type=int, metavar="N", help="held-out tail (default: preset, else 2 seasons)")
    g.add_argument("--val-size", type=int, metavar="N", help="validation part before it (default: as the tail)")
    g.add_argument("--transform", choices=["none", "log"], help="log before scaling (default: preset, else none)")
    g.add_argument("--strategy", choices=["direct", "recursive"],
                   help="direct: H outputs at once; recursive: one step fed back (default direct)")
    g.add_argument("--residual", choices=list(RESIDUALS), help="the network corrects the seasonal naive (seasonal) "
                   "or naive (last) forecast, or predicts outright (none) (default: seasonal when the season fits in "
                   "the lookback, else last)")
    g.add_argument("--batch", type=int, metavar="B", help=f"windows per batch (default {D.data.batch})")
    g.add_argument("--encoding", help=f"CSV text encoding (default {D.data.encoding})")
    add_model_options(p, ForecasterConfig())
    add_train_options(p, D.train)
    add_run_options(p, "forecast")
    p.set_defaults(run=run)


def _fresh(args: argparse.Namespace, train_opts: dict) -> ForecastRunConfig:
    cfg = forecast_config(args.data or D.data.data, data_opts=given(args, DATA_OPTS),
                          model_opts=given(args, [*MODEL_OPTS, "lookback", "residual"]), train_opts=train_opts)
    # fail on model options before reading the data (the season comes from it)
    dataclasses.replace(cfg.model, season=1, residual="none").check()
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg, run_dir, resume = resolve_run(args, "forecast", ForecastRunConfig.from_dict, lambda t: _fresh(args, t),
                                       [*DATA_OPTS, "data"])
    set_threads(args)
    print(f"reading {cfg.data.data} ...", flush=True)
    task = ForecastTask(cfg)
    p, d, m = task.prep, cfg.data, cfg.model
    s = p.series
    handled = {"interpolate": "interpolated", "drop": "dropped"}.get(s.missing_policy, "")
    print(f"{len(s.values):,} values of {s.name} ({s.index[0]} .. {s.index[-1]}), "
          f"{s.missing} missing{' (' + handled + ')' if s.missing else ''}; season {d.season}; "
          f"train {p.val_start} / val {p.test_start - p.val_start} / held-out tail {len(s.values) - p.test_start}; "
          f"{len(task.x):,} training windows", flush=True)
    params = sum(q.numel() for q in task.model.parameters())
    print(f"model: lookback {m.lookback} -> {m.cell.upper()} {m.hidden} -> {m.horizon} output(s) ({d.strategy}, "
          f"residual {m.residual}, transform {d.transform}), {params / 1e3:.1f} k parameters; run folder {run_dir}"
          + (f"; resuming from {resume}" if resume else ""), flush=True)
    code, result = run_fit(task, cfg, run_dir, resume, args, "forecast")
    if code is not None:
        return code
    loaded = load_forecaster(run_dir)
    print(f"--- held-out tail ({len(s.values) - p.test_start} values never trained on), horizon {d.horizon}, "
          f"checkpoint {loaded.checkpoint.path} ---")
    score_tail(loaded, task.prep, baselines=False, png=run_dir / "forecast.png")
    print(f"compare with the baselines: rnnlab eval {run_dir} --baselines")
    return 0
