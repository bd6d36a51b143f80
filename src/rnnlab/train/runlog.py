"""What a run leaves for people to read: metrics.csv, loss.png and (when installed) TensorBoard events.

The PNG is drawn by rnnlab.viz.plots.loss_png and needs matplotlib (`pip install rnnlab[plot]`); without it
the run says once that it skipped the plot. TensorBoard files are written when the `tensorboard` package is installed.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ..viz.plots import loss_png

__all__ = ["MetricsLog"]

class MetricsLog:
    """One CSV row per evaluation. On resume, rows past the resumed step are dropped (they were written
    after the checkpoint and will be written again)."""

    def __init__(
        self,
        run: Path,
        columns: list[str],
        plot: tuple[str, str] = ("loss", "loss"),
        resume_step: int | None = None,
        notify=print,
    ) -> None:
        self.run, self.columns, self.notify = run, columns, notify
        self.plot_key, self.plot_label = plot  # metric drawn as train_<key> and val_<key>
        self.csv = run / "metrics.csv"
        self.rows: list[dict[str, float]] = []
        if resume_step is not None and self.csv.exists():
            with open(self.csv, newline="") as f:
                self.rows = [
                    {k: int(float(v)) if k == "step" else float(v) for k, v in r.items() if v not in ("", None)}
                    for r in csv.DictReader(f) if float(r["step"]) <= resume_step
                ]
        self._rewrite()
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            self._tb = SummaryWriter(str(run / "tensorboard"))
        except ImportError:
            pass
        self._warned_plot = False

    def _rewrite(self) -> None:
        tmp = self.csv.with_name(self.csv.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, self.columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.csv)

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        with open(self.csv, "a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(row)
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, float) and math.isfinite(v):
                    self._tb.add_scalar(k, v, int(row["step"]))
            self._tb.flush()

    def plot(self) -> Path | None:
        """Write loss.png (the train and validation curves of the plotted metric); None if skipped."""
        if not self.rows:
            return None
        written = loss_png(self.rows, self.plot_key, self.plot_label, self.run / "loss.png", title=self.run.name)
        if written is None and not self._warned_plot:
            self.notify("note: loss.png skipped, matplotlib is not installed (pip install matplotlib)")
            self._warned_plot = True
        return written

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
