"""`rnnlab eval` of a forecast run: MAE, RMSE and MASE on the held-out tail (of the run's series, or of
--data read the same way), a PNG of history, forecast and actual values; --baselines adds seasonal naive
and Holt-Winters exponential smoothing on the same origins."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from ..train import load_forecaster
from ..train.forecast import prepare_series
from ..train.panel import LoadedPanel, prepare_panel
from .forecast_panel import score_panel
from .reports import score_tail

__all__ = ["add_options", "run"]


def add_options(p) -> None:
    """Forecast runs share --baselines and --plot with classify runs (added there)."""


def run(args: argparse.Namespace) -> int:
    loaded = load_forecaster(args.checkpoint, args.device)
    cfg = loaded.config
    if args.data is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data=args.data))
    if isinstance(loaded, LoadedPanel):
        return _eval_panel(args, loaded, cfg)
    prep = prepare_series(cfg)
    print(f"scoring the held-out tail of {cfg.data.data} ({len(prep.series.values) - prep.test_start} values; "
          f"{prep.series.missing} missing values, policy {cfg.data.missing}) with {loaded.checkpoint.path} "
          f"(step {loaded.checkpoint.state.get('step')}) ...", flush=True)
    # a series scored with the run's own scaling: the model only knows the training part's statistics
    prep = dataclasses.replace(prep, scaler=loaded.scaler)
    png = Path(args.plot) if args.plot else loaded.checkpoint.path.parent / "forecast-eval.png"
    score_tail(loaded, prep, baselines=args.baselines, png=png)
    return 0


def _eval_panel(args: argparse.Namespace, loaded: LoadedPanel, cfg) -> int:
    """Many series: each series' held-out tail, per series and in aggregate, with the run's own scaling."""
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model))  # prepare_panel resolves sizes into it
    prep = prepare_panel(cfg, ids=loaded.ids)
    state = loaded.panel
    scalers = loaded.prepared().scalers  # the model only knows each series' training-part statistics
    prep.scalers = [scalers[c] for c in prep.codes]
    prep.cov = [(np.asarray(state["cov_mean"][c]), np.asarray(state["cov_std"][c])) for c in prep.codes]
    print(f"scoring the held-out tails of {cfg.data.data} ({len(prep.panel.ids)} series x {cfg.data.test_size} "
          f"values; {prep.panel.missing} missing values, policy {cfg.data.missing}) with {loaded.checkpoint.path} "
          f"(step {loaded.checkpoint.state.get('step')}) ...", flush=True)
    if prep.left_out:
        print(f"left out, too short: {', '.join(prep.left_out)}")
    run_dir = loaded.checkpoint.path.parent
    png = Path(args.plot) if args.plot else run_dir / "forecast-eval.png"
    score_panel(loaded, prep, baselines=args.baselines, csv_path=run_dir / "panel-eval.csv", png=png)
    return 0
