"""Smoke test of the layer benchmark harness (benchmarks/layers.py): it runs and writes what it promises.

No timing is asserted: this only checks that the harness runs in-process with --quick and that its JSON/CSV
carry the expected fields, including a backend that refuses a configuration (skipped, with the reason).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ lives beside src/, not inside the installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import gemm, layers  # noqa: E402


def test_quick_run_writes_expected_fields(tmp_path, capsys):
    out = tmp_path / "bench"
    rc = layers.main([
        "--quick", "--configs", "rnn,gru-ln", "--shapes", "S4", "--backends", "reference,native",
        "--mode", "train,infer", "--rounds", "2", "--threads", "1", "--out", str(out),
    ])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "torch" in printed and "threads 1" in printed and "auto's choice" in printed

    data = json.loads((tmp_path / "bench.json").read_text())
    meta, rows = data["meta"], data["rows"]
    for key in ("torch", "threads", "mkldnn_available", "mkl_available", "date", "backends", "auto_order"):
        assert key in meta
    assert meta["threads"] == 1 and meta["quick"] is True

    by = {(r["config"], r["mode"], r["backend"]): r for r in rows}
    expected = {(c, m, b) for c in ("rnn", "gru-ln") for m in ("train", "infer") for b in ("reference", "native")}
    assert set(by) == expected
    for r in rows:
        for field in layers.FIELDS:
            assert field in r
        assert r["shape"] == "S4" and r["T"] == layers.QUICK_T and r["auto_backend"] and r["auto_reason"]

    for mode in ("train", "infer"):
        ok = by["rnn", mode, "reference"]
        assert ok["status"] == "ok" and ok["baseline"] == "torch.nn.RNN"
        assert ok["ms"] > 0 and ok["baseline_ms"] > 0 and ok["ratio"] > 0
        assert len(ok["round_ms"]) == len(ok["round_ratios"]) == 2
        assert ok["ran_backend"] == "reference"
        skipped = by["gru-ln", mode, "native"]
        assert skipped["status"] == "skipped" and "layer_norm" in skipped["reason"] and skipped["ms"] is None
    train = by["rnn", "train", "reference"]
    assert train["saved_mib"] > 0 and train["baseline_saved_mib"] > 0 and train["saved_ratio"] > 0
    assert by["rnn", "infer", "reference"]["saved_mib"] is None

    with (tmp_path / "bench.csv").open() as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == len(rows) and list(csv_rows[0]) == layers.FIELDS


def test_picks_up_any_registered_backend(tmp_path, monkeypatch):
    """A backend registered later (as "fused" will be) is benchmarked without naming it; refusals are skipped."""
    from rnnlab.kernels import registry
    from rnnlab.kernels.reference import run_reference

    def supports(options, device):
        ok = options.cell.family == "rnn_tanh"
        return ok, "serves the tanh RNN" if ok else "only the tanh RNN in this test"

    monkeypatch.setitem(registry._BACKENDS, "extra", registry.Backend("extra", run_reference, supports, "test"))
    assert "extra" in registry.backend_names()
    rc = layers.main([
        "--quick", "--configs", "rnn,gru", "--shapes", "S4", "--mode", "infer", "--rounds", "1",
        "--threads", "1", "--out", str(tmp_path / "b.json"),
    ])
    assert rc == 0
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    by = {(r["config"], r["backend"]): r for r in rows}
    assert {b for _, b in by} == set(registry.backend_names())
    assert by["rnn", "extra"]["status"] == "ok" and by["rnn", "extra"]["ran_backend"] == "extra"
    assert by["gru", "extra"]["status"] == "skipped" and "only the tanh RNN" in by["gru", "extra"]["reason"]


def test_gemm_benchmark_runs(capsys):
    gemm.main(["--shapes", "S4", "--rounds", "1", "--threads", "1"])
    printed = capsys.readouterr().out
    assert "compiled loops" in printed
    if "built as" in printed:  # the table, when the loops are built here
        assert "input projection" in printed and "dx = dZ W_ih" in printed


def test_minrnn_benchmark_quick_run(tmp_path, capsys):
    """benchmarks/minrnn.py --quick: every model times, the ratio column is against torch.nn.GRU, the CPU's ISA is
    printed, and the memory subprocess reports for one model (the others are skipped to keep this fast)."""
    from benchmarks import minrnn

    out = tmp_path / "m.json"
    assert minrnn.main(["--quick", "--threads", "1", "--no-memory", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ISA" in printed and "threads 1" in printed
    data = json.loads(out.read_text())
    assert data["meta"]["isa"] and data["meta"]["quick"] is True
    rows = data["rows"]
    assert {r["model"] for r in rows} == set(minrnn.MODELS) and {r["T"] for r in rows} == {50, 400}
    for r in rows:
        assert r["error"] is None and r["ms"] > 0 and r["ratio_vs_torch_gru"] > 0
        assert list(r) == minrnn.FIELDS
    assert all(r["ratio_vs_torch_gru"] == 1.0 for r in rows if r["model"] == minrnn.BASELINE)
    mem = minrnn.measure_memory("mingru", 16, 50, 4, 1)
    assert mem["peak_mib"] >= 0 and mem["saved_mib"] > 0
