"""Metrics and pictures for many-to-one tasks: classification scores and confusion matrices, forecast errors.

Computed with numpy (scikit-learn is only the tests' oracle); pictures need matplotlib and are skipped
with a note without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["classification_report", "confusion_matrix", "confusion_png", "confusion_table", "forecast_errors",
           "forecast_png"]


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def classification_report(y_true, y_pred, num_classes: int) -> dict:
    """accuracy, macro_f1, and per class precision / recall / f1 / support; a class never predicted has
    precision 0 (and never present, recall 0), as scikit-learn's zero_division=0."""
    m = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(m).astype(np.float64)
    predicted, support = m.sum(0), m.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"accuracy": float(tp.sum() / max(m.sum(), 1)), "macro_f1": float(f1.mean()),
            "precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
            "support": support.tolist(), "confusion": m.tolist()}


def confusion_table(report: dict, names: list[str]) -> str:
    """The per-class scores and the confusion matrix as a plain-text table."""
    width = max(8, *(len(n) for n in names))
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for i, n in enumerate(names):
        lines.append(f"{n:<{width}}  {report['precision'][i]:9.3f}  {report['recall'][i]:6.3f}  "
                     f"{report['f1'][i]:5.3f}  {report['support'][i]:7d}")
    lines.append("")
    lines.append("confusion matrix (rows: true class, columns: predicted)")
    cell = max(6, *(len(n) for n in names))
    lines.append(" " * width + "  " + " ".join(f"{n[:cell]:>{cell}}" for n in names))
    for i, n in enumerate(names):
        lines.append(f"{n:<{width}}  " + " ".join(f"{v:>{cell}d}" for v in report["confusion"][i]))
    return "\n".join(lines)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


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


def forecast_errors(actual: np.ndarray, forecast: np.ndarray, scale: float) -> dict[str, float]:
    """MAE, RMSE and MASE (MAE / scale, scale = the training part's in-sample seasonal-naive MAE)."""
    e = np.asarray(forecast, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    mae = float(np.abs(e).mean())
    return {"mae": mae, "rmse": float(np.sqrt((e ** 2).mean())), "mase": mae / scale}


def forecast_png(values: np.ndarray, test_start: int, forecasts: dict[str, np.ndarray], path: str | Path,
                 title: str = "", history: int | None = None) -> Path | None:
    """History, the held-out actual values and each forecast over them; None without matplotlib."""
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
    ax.axvline(test_start - 0.5, color="gray", ls=":", lw=0.8)
    ax.set_xlabel("step")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
