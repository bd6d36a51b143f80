"""Smoke tests of the regularization and backward-time benchmarks: they run and print their tables (no timing
or quality is asserted; the numbers are in benchmarks/README.md and docs/REGULARIZE.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ lives beside src/, not inside the installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import backward_vs_t, regularize, regularize_speed  # noqa: E402


def test_regularize_speed_quick_prints_each_regularizer_against_the_plain_layer(capsys, one_thread):
    assert regularize_speed.main(["--quick", "--configs", "lstm", "--shapes", "S4", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "+all4" in out and "torch.nn+WeightDrop" in out and "| lstm | S4 |" in out


def test_regularize_quality_quick_selects_on_validation_and_reports_test(tmp_path, capsys, one_thread):
    out = tmp_path / "reg"
    assert regularize.main(["--quick", "--settings", "none,zoneout", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| none |" in table and "| zoneout |" in table
    rows = [json.loads(p.read_text()) for p in (tmp_path / "reg-quick").glob("*.json")]
    assert len(rows) == 3 + 4  # none: seeds 0, 1, 2; zoneout: 2 candidates at seed 0, the chosen at seeds 1, 2
    assert all(r["test_bpc"] > 0 for r in rows)


def test_backward_vs_t_quick(capsys, one_thread):
    assert backward_vs_t.main(["--quick", "--threads", "1"]) == 0
    assert "| gru | native | yes |" in capsys.readouterr().out
