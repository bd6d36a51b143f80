"""Plots of a task's results, as PNG files: a run's loss curves, a classifier's confusion matrix, a forecast
over the held-out tail, the memory experiment's accuracy and gradient norms.

Each needs matplotlib (`pip install rnnlab[plot]`), imported when a picture is drawn; without it a function
writes nothing and returns None, and the caller says so. They read results, never a model or a task.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = ["confusion_png", "forecast_png", "loss_png", "memory_png"]


class MemoryRecord(Protocol):
    config: dict                     # the MemoryConfig as a dict
    hidden: dict[str, int]           # cell -> H
    params: dict[str, int]           # cell -> recurrent parameters
    rows: list[dict]                 # one per (delay, cell): "delay", "cell", "val_acc", ...
    grad_norms: dict[str, dict]      # cell -> {"init": {"h": [...], "c": [...]}, "trained": {...}}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def loss_png(rows: list[dict], key: str, label: str, path: str | Path, title: str = "") -> Path | None:
    """The train and validation curves of metric `key` over the evaluation rows (metrics.csv's rows), written
    atomically (a reader never sees half a PNG); None (nothing written) without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    steps = [r["step"] for r in rows]
    for column, name in ((f"train_{key}", "train"), (f"val_{key}", "validation")):
        pts = [(s, r[column]) for s, r in zip(steps, rows) if column in r]
        if pts:
            ax.plot(*zip(*pts), marker="." if len(pts) < 30 else None, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def confusion_png(report: dict, names: list[str], path: str | Path, title: str = "") -> Path | None:
    """Write the confusion matrix as a PNG heat map with counts; None (nothing written) without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    m = np.asarray(report["confusion"])
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * n, 1.0 + 0.55 * n), dpi=110)
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(m[i, j]), ha="center", va="center",
                    color="white" if m[i, j] > m.max() / 2 else "black", fontsize=8)
    ax.set_title(title or f"accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def forecast_png(values: np.ndarray, test_start: int, forecasts: dict[str, np.ndarray], path: str | Path,
                 title: str = "", history: int | None = None,
                 band: tuple[str, list[float]] | None = None) -> Path | None:
    """History, the held-out actual values and each forecast over them; band = (name of a forecast, [q10, q90])
    shades that forecast's 80 % prediction interval. None without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    n = len(values)
    first = max(0, test_start - (history if history is not None else 3 * (n - test_start)))
    t = np.arange(n)
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    ax.plot(t[first:test_start], values[first:test_start], color="black", lw=1, label="history")
    ax.plot(t[test_start:], values[test_start:], color="gray", lw=1.5, label="actual")
    for (name, f), color in zip(forecasts.items(), ["tab:red", "tab:blue", "tab:green", "tab:orange"]):
        ax.plot(t[test_start:test_start + len(f)], f, color=color, lw=1.2, label=name)
        if band is not None and band[0] == name:
            ax.fill_between(t[test_start:test_start + len(f)], f + band[1][0], f + band[1][1], color=color,
                            alpha=0.15, lw=0, label=f"{name}: 80 % interval")
    ax.axvline(test_start - 0.5, color="gray", ls=":", lw=0.8)
    ax.set_xlabel("step")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def memory_png(result: MemoryRecord, path: str | Path) -> Path | None:
    """The memory experiment (rnnlab.train.memory.MemoryResult). Left: accuracy on the recalled symbols
    against the delay T. Right: ||dL/dh_t|| against t. None (nothing written) without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    colors = {"rnn": "tab:red", "gru": "tab:green", "lstm": "tab:blue", "mingru": "tab:olive",
              "minlstm": "tab:purple"}
    cfg = result.config
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for cell in cfg["cells"]:
        rows = [r for r in result.rows if r["cell"] == cell]
        label = f"{cell.upper() if cell != 'rnn' else 'RNN (tanh)'} H={result.hidden[cell]}, {result.params[cell]:,} params"
        a.plot([r["delay"] for r in rows], [r["val_acc"] for r in rows], "o-", color=colors[cell], label=label)
    a.axhline(1 / cfg["alphabet"], color="gray", ls=":", label=f"chance 1/{cfg['alphabet']}")
    a.set_xscale("log")
    a.minorticks_off()
    a.set_xticks(cfg["delays"], [str(d) for d in cfg["delays"]])
    a.set_ylim(0, 1.02)
    a.set_xlabel("delay T (steps between seeing a symbol and recalling it: T + n)")
    a.set_ylabel("accuracy on recalled symbols")
    a.set_title(f"copy memory, n={cfg['symbols']} of K={cfg['alphabet']} symbols, {cfg['steps']} steps each")
    a.legend(fontsize=8)
    for cell, g in result.grad_norms.items():
        # relative to the recall step, where the loss's gradient enters: how much of it reaches step t
        for when, style in (("init", "--"), ("trained", "-")):
            h = g[when]["h"]
            b.plot([v / h[-1] for v in h], color=colors[cell], ls=style, alpha=0.6 if when == "init" else 1.0,
                   label=f"{cell}: ||dL/dh_t||, {'at init' if when == 'init' else 'trained'}")
        if "c" in g["init"]:
            c = g["init"]["c"]
            b.plot([v / c[-1] for v in c], color=colors[cell], ls=":", label=f"{cell}: ||dL/dc_t||, at init")
    b.set_yscale("log")
    b.set_xlabel(f"step t (T={cfg['grad_delay']}; recall at the last {cfg['symbols']} steps)")
    b.set_ylabel("||dL/dh_t|| / ||dL/dh_recall||")
    b.set_title("how much of the recall loss's gradient reaches step t")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
