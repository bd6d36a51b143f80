"""`rnnlab forecast RUN --steps H`: the values after the end of a forecast run's series, as CSV."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from ..data import DataError
from ..data.panel import future_times
from ..train import load_forecaster
from ..train.forecast_select import MODELS
from ..train.panel import LoadedPanel
from .common import run_parser
from .forecast_panel import write_panel_forecast

__all__ = ["add_parser"]

EXAMPLES = """
examples:
  rnnlab forecast runs/co2 --steps 52                      # writes runs/co2/forecast-52.csv and prints it
  rnnlab forecast runs/airline --steps 24 --out next_two_years.csv
  rnnlab forecast runs/airline --steps 12 --out -          # CSV on standard output only
  rnnlab forecast runs/sales --steps 14 --model network     # the network even where a baseline beat it
  rnnlab forecast runs/macro --steps 8                      # many series: one row per (series, step), long format
"""


def add_parser(commands) -> None:
    p = run_parser(
        commands, "forecast", help="forecast past the end of the data with a trained forecaster",
                            epilog=EXAMPLES, description="Forecast the next H values after the end of the run's "
                            "series (the checkpoint keeps its last values) and write them as CSV, with the 80 % "
                            "prediction interval (lo80, hi80) from the model's errors on the validation part.")
    p.add_argument("--steps", type=int, required=True, metavar="H", help="how many values to forecast")
    p.add_argument("--out", metavar="CSV", help="where to write (default RUN/forecast-H.csv; - for stdout only)")
    p.add_argument("--model", default="auto", choices=MODELS,
                   help="auto (default): the network, unless seasonal naive or Holt-Winters had a lower MASE on the "
                        "run's validation origins (many series: chosen per series); or force one")
    p.set_defaults(run=run)


# Past the model's horizon every step feeds its own forecasts back, one recurrent pass each: 100,000 steps take
# seconds, 10^8 took hours with nothing shown. A forecast that far out says nothing anyway.
MAX_STEPS = 100_000


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.steps <= MAX_STEPS:
        raise DataError(f"--steps must be between 1 and {MAX_STEPS:,}, got {args.steps:,} (beyond the model's "
                        f"horizon each step feeds its own forecasts back, so far-off values mean little)")
    loaded = load_forecaster(args.checkpoint, args.device)
    state = loaded.checkpoint.state
    model, why = loaded.choice(args.model)
    print(f"model: {model}: {why}", file=sys.stderr)
    if isinstance(loaded, LoadedPanel):
        write_panel_forecast(loaded, args.steps, model, args.out)
        return 0
    values = loaded.future(args.steps, model=model)
    index = future_times(str(state["tail_index"][-1]), state.get("freq"), args.steps)
    rows = [(k + 1, t, f"{v:.6g}") for k, (t, v) in enumerate(zip(index, values))]
    header = ("step", "time", state.get("series_name") or "value")
    offsets = loaded.interval(model)  # the 80 % interval from the model's validation errors
    if offsets is not None:
        rows = [(*r, f"{v + offsets[0]:.6g}", f"{v + offsets[1]:.6g}") for r, v in zip(rows, values)]
        header = (*header, "lo80", "hi80")
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    if args.out != "-":
        out = Path(args.out) if args.out else loaded.checkpoint.path.parent / f"forecast-{args.steps}.csv"
        with open(out, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows([header, *rows])
        print(f"written to {out}", file=sys.stderr)
    if offsets is None:
        print("note: no prediction interval in this checkpoint (trained by an older rnnlab)", file=sys.stderr)
    h = loaded.config.model.horizon
    if model == "network" and args.steps > h:
        print(f"note: the model outputs {h} step(s) at a time; steps past {h} feed its own forecasts back",
              file=sys.stderr)
    return 0
