"""The held-out tails of many series in one picture: a small panel per series (the first `limit`), each with its
recent history, the actual values, the forecasts and the shaded 80 % interval of one of them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .plots import _pyplot

__all__ = ["panel_png"]


def panel_png(ids: list[str], values: list[np.ndarray], starts: list[int], forecasts: dict[str, list[np.ndarray]],
              path: str | Path, title: str = "", band: tuple[str, list[np.ndarray], list[np.ndarray]] | None = None,
              limit: int = 12) -> Path | None:
    """values[s][starts[s]:] is series s's held-out tail; forecasts[name][s] its forecast by `name`; band =
    (name, lo per series, hi per series). None (nothing written) without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    n = min(len(ids), limit)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), dpi=100, squeeze=False)
    colors = ["tab:red", "tab:blue", "tab:green", "tab:orange"]
    for s in range(rows * cols):
        ax = axes[s // cols][s % cols]
        if s >= n:
            ax.axis("off")
            continue
        y, start = values[s], starts[s]
        first = max(0, start - 3 * (len(y) - start))
        t = np.arange(len(y))
        ax.plot(t[first:start], y[first:start], color="black", lw=0.9)
        ax.plot(t[start:], y[start:], color="gray", lw=1.3, label="actual")
        for (name, fs), color in zip(forecasts.items(), colors):
            f = fs[s]
            ax.plot(t[start:start + len(f)], f, color=color, lw=1.1, label=name)
            if band is not None and band[0] == name:
                ax.fill_between(t[start:start + len(f)], band[1][s], band[2][s], color=color, alpha=0.15, lw=0)
        ax.axvline(start - 0.5, color="gray", ls=":", lw=0.7)
        ax.set_title(ids[s], fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6, loc="upper left")
    fig.suptitle(title + (f" (first {n} of {len(ids)} series)" if len(ids) > n else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
