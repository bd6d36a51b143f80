"""Metrics for many-to-one tasks: classification scores and confusion matrices, forecast errors.

Computed with numpy (scikit-learn is only the tests' oracle). Their pictures are drawn by rnnlab.viz.plots.
"""

from __future__ import annotations

import numpy as np

__all__ = ["classification_report", "confusion_matrix", "confusion_table", "forecast_errors"]


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


def forecast_errors(actual: np.ndarray, forecast: np.ndarray, scale: float) -> dict[str, float]:
    """MAE, RMSE and MASE (MAE / scale, scale = the training part's in-sample seasonal-naive MAE)."""
    e = np.asarray(forecast, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    mae = float(np.abs(e).mean())
    return {"mae": mae, "rmse": float(np.sqrt((e ** 2).mean())), "mase": mae / scale}
