"""The result plots (rnnlab.viz.plots) write PNG files from plain results, with no model or task."""

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the plots need matplotlib")

from rnnlab.train.metrics import classification_report  # noqa: E402
from rnnlab.viz.plots import confusion_png, forecast_png, memory_png  # noqa: E402

PNG = b"\x89PNG"


def test_confusion_and_forecast_png(tmp_path):
    report = classification_report([0, 1, 1, 2], [0, 1, 2, 2], 3)
    assert confusion_png(report, ["a", "b", "c"], tmp_path / "c.png").read_bytes()[:4] == PNG
    values = np.sin(np.arange(40) / 3)
    out = forecast_png(values, 30, {"model": values[30:] + 0.1}, tmp_path / "f.png", title="sine")
    assert out.read_bytes()[:4] == PNG


def test_memory_png_reads_a_result_record(tmp_path):
    cfg = {"cells": ["rnn", "lstm"], "alphabet": 8, "delays": [5, 10], "symbols": 3, "steps": 2, "grad_delay": 5}
    rows = [{"delay": d, "cell": c, "val_acc": 0.5} for d in (5, 10) for c in ("rnn", "lstm")]
    norms = {"rnn": {w: {"h": [0.1, 0.5, 1.0]} for w in ("init", "trained")},
             "lstm": {w: {"h": [0.4, 0.7, 1.0], "c": [0.5, 0.8, 1.0]} for w in ("init", "trained")}}
    result = SimpleNamespace(config=cfg, hidden={"rnn": 4, "lstm": 2}, params={"rnn": 60, "lstm": 64}, rows=rows,
                             grad_norms=norms)
    assert memory_png(result, tmp_path / "m.png").read_bytes()[:4] == PNG
