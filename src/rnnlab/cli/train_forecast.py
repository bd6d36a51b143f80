"""`rnnlab train forecast`: train a forecaster on a series, then score it on the held-out tail."""

from __future__ import annotations

from ..train import load_forecaster
from ..train.panel import PanelTask
from .forecast_panel import score_panel
from .reports import score_tail

__all__ = ["EXAMPLES", "TASK", "report"]

TASK = "forecast"
EXAMPLES = """
examples:
  rnnlab train forecast --data builtin:co2                 # weekly CO2, 52 weeks ahead, 2 years held out
  rnnlab train forecast --data builtin:airline             # monthly passengers, log scale, 12 months ahead
  rnnlab train forecast --data sales.csv --column units --time-column date --season 7 --horizon 14 --lookback 56
  rnnlab train forecast --data builtin:co2 --strategy recursive --missing drop
  rnnlab forecast runs/forecast-20250101-120000 --steps 52  # values after the end of the data, as CSV
  rnnlab train forecast --data builtin:macro               # 12 quarterly US macro series, one global model
  rnnlab train forecast --data stores.csv --id-column store --time-column date --column sales --past-covariates promo

Built-in series take tuned defaults (rnnlab.train.forecast.FORECAST_PRESETS); options given here override
them. The run folder holds config.json, metrics.csv, loss.png, forecast.png and the checkpoints.
"""


def report(task, cfg, run_dir, result, args) -> int:
    p, d = task.prep, cfg.data
    loaded = load_forecaster(run_dir)
    if isinstance(task, PanelTask):
        print(f"--- held-out tails ({d.test_size} values of each of {len(p.panel.ids)} series, never trained on), "
              f"horizon {d.horizon}, checkpoint {loaded.checkpoint.path} ---")
        score_panel(loaded, p, baselines=True, csv_path=run_dir / "panel-scores.csv", png=run_dir / "forecast.png")
        return 0
    print(f"--- held-out tail ({len(p.series.values) - p.test_start} values never trained on), horizon {d.horizon}, "
          f"checkpoint {loaded.checkpoint.path} ---")
    score_tail(loaded, p, baselines=False, png=run_dir / "forecast.png")
    print(f"compare with the baselines: rnnlab eval {run_dir} --baselines")
    return 0
