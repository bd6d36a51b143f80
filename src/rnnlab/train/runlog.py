"""What a run leaves for people to read: metrics.csv, loss.png and (when installed) TensorBoard events.

The PNG needs matplotlib (`pip install rnnlab[plot]`); without it the run says once that it skipped the
plot. TensorBoard files are written when the `tensorboard` package is installed.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

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
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            if not self._warned_plot:
                self.notify("note: loss.png skipped, matplotlib is not installed (pip install matplotlib)")
                self._warned_plot = True
            return None
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        steps = [r["step"] for r in self.rows]
        for key, label in ((f"train_{self.plot_key}", "train"), (f"val_{self.plot_key}", "validation")):
            pts = [(s, r[key]) for s, r in zip(steps, self.rows) if key in r]
            if pts:
                ax.plot(*zip(*pts), marker="." if len(pts) < 30 else None, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel(self.plot_label)
        ax.set_title(self.run.name)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        tmp = self.run / "loss.tmp.png"
        fig.savefig(tmp)
        plt.close(fig)
        os.replace(tmp, self.run / "loss.png")
        return self.run / "loss.png"

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
