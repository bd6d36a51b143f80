"""`rnnlab eval` of a forecast run: MAE, RMSE and MASE on the held-out tail (of the run's series, or of
--data read the same way), a PNG of history, forecast and actual values; --baselines adds seasonal naive
and Holt-Winters exponential smoothing on the same origins."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..train import load_forecaster
from ..train.forecast import prepare_series
from .reports import score_tail

__all__ = ["add_options", "run"]


def add_options(p) -> None:
    """Forecast runs share --baselines and --plot with classify runs (added there)."""


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
