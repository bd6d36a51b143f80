"""Many series, one global model (issue 18): reading a long-format table (ids, unequal lengths and starts, gaps,
missing values, bad or ambiguous id columns), per-series scaling fitted on each training part only, the model's
embedding and covariate shapes, a tiny run end to end (train, eval, forecast of every series in long format),
the aggregate metrics against a hand computation, and an interrupted run resumed exactly."""

from __future__ import annotations

import csv
import json
import math
import os
import signal

import numpy as np
import pytest
import torch

pytest.importorskip("pandas", reason="long-format tables are read with pandas")

from rnnlab.data import DataError
from rnnlab.data.panel import calendar_features, calendar_fields, find_id_column, load_panel, panel_wanted
from rnnlab.layers import RecurrentConfig
from rnnlab.models.global_forecaster import GlobalForecaster, GlobalForecasterConfig, build_forecaster
from rnnlab.models import Forecaster
from rnnlab.train import fit, forecast_config
from rnnlab.train.panel import PanelTask, aggregate, score_series
from helpers import run_cli as run

pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")
TINY = ["--hidden", "8", "--embed", "4", "--id-embed", "3", "--max-steps", "6", "--eval-every", "3",
        "--warmup-steps", "1", "--quiet", "--threads", "1"]


def _long_csv(path, lengths=(60, 48, 40), starts=(0, 6, 12), missing=None, gap=None, shuffle=True):
    """Monthly series a, b, c in long format: a yearly cycle on levels 10, 100, 1000; their own lengths and
    starts (months after 2000-01). missing: (series, step) left empty; gap: (series, step) row dropped."""
    rows = []
    for k, (name, n, start) in enumerate(zip("abc", lengths, starts)):
        for i in range(n):
            if gap == (name, i):
                continue
            month = start + i
            v = 10 ** (k + 1) * (1 + 0.2 * math.sin(2 * math.pi * month / 12)) + (month * 7919 % 13) / 13
            value = "" if missing == (name, i) else f"{v:.4f}"
            rows.append((f"{2000 + month // 12}-{month % 12 + 1:02d}-01", name, value, f"{(month % 5) / 5:.2f}"))
    if shuffle:  # an export need not be in any order
        rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    path.write_text("date,store,sales,promo\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return path


def test_long_csv_ids_lengths_starts_gaps_and_missing_values(tmp_path):
    data = _long_csv(tmp_path / "p.csv", missing=("b", 10), gap=("c", 20))
    p = load_panel(str(data), "sales", past_covariates="promo")
    assert p.ids == ["a", "b", "c"] and p.id_column == "store" and p.time_column == "date"
    assert [len(v) for v in p.values] == [60, 48, 40]  # c's dropped row is a missing month, filled
    assert p.index[1][0] == "2000-07-01" and p.index[2][-1] == "2004-04-01"
    assert p.freq == "MS" and p.season == 12 and p.calendar == ("month",) and p.missing == 2
    assert not any(np.isnan(v).any() for v in p.values)
    b = p.values[1]
    assert b[10] == pytest.approx((b[9] + b[11]) / 2)  # interpolated inside the series
    assert p.past_names == ["promo"] and p.past[0].shape == (60, 1)
    with pytest.raises(DataError, match="series 'b' has 1 missing value"):
        load_panel(str(_long_csv(tmp_path / "m.csv", missing=("b", 10))), "sales", missing="error")
    dropped = load_panel(str(data), "sales", missing="drop")
    assert [len(v) for v in dropped.values] == [60, 47, 39]


def test_the_ends_of_a_series_are_trimmed_not_filled(tmp_path):
    data = _long_csv(tmp_path / "p.csv", missing=("a", 0), shuffle=False)
    p = load_panel(str(data), "sales")
    assert len(p.values[0]) == 59 and p.index[0][0] == "2000-02-01" and p.missing == 0


def test_the_id_column_is_found_only_when_unambiguous(tmp_path):
    import pandas as pd

    df = pd.read_csv(_long_csv(tmp_path / "p.csv"))
    assert find_id_column(df)[0] == "store"
    assert panel_wanted(str(tmp_path / "p.csv"), None) == "store"
    df["region"] = df["store"].map({"a": "north", "b": "south", "c": "west"})
    df.to_csv(tmp_path / "two.csv", index=False)
    found, candidates = find_id_column(df)
    assert found is None and candidates == ["store", "region"]
    with pytest.raises(DataError, match="could name them \\(store, region\\); say which with --id-column NAME"):
        panel_wanted(str(tmp_path / "two.csv"), None)
    assert panel_wanted(str(tmp_path / "two.csv"), "region") == "region"
    # one series (no repeated time) stays on the single-series path, whatever text columns it has
    single = tmp_path / "one.csv"
    single.write_text("date,value,note\n2000-01-01,1,x\n2000-02-01,2,y\n2000-03-01,3,z\n")
    assert panel_wanted(str(single), None) is None
    assert panel_wanted(str(single), "none") is None and panel_wanted("builtin:co2", None) is None


def test_bad_tables_are_one_line_errors_naming_the_fix(tmp_path, capsys):
    data = _long_csv(tmp_path / "p.csv")
    with pytest.raises(DataError, match="no id column 'shop' .* --id-column NAME"):
        load_panel(str(data), "sales", id_column="shop")
    with pytest.raises(DataError, match="2 numeric columns \\(sales, promo\\) .* --column NAME"):
        load_panel(str(data))
    with pytest.raises(DataError, match="no past covariate column 'price'"):
        load_panel(str(data), "sales", past_covariates="price")
    twice = tmp_path / "twice.csv"
    twice.write_text(data.read_text() + "2000-01-01,a,5,0\n")
    with pytest.raises(DataError, match="series 'a' repeats the time '2000-01-01' on lines"):
        load_panel(str(twice), "sales")
    code, out, err = run(capsys, "train", "forecast", "--data", data, "--column", "sales", "--id-column", "shop",
                         "--horizon", "3", "--lookback", "6", *TINY)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "no id column 'shop'" in err and "--id-column NAME" in err


def test_calendar_features_follow_the_frequency():
    assert calendar_fields("QE-DEC") == ("quarter",) and calendar_fields("D") == ("dayofweek", "month")
    assert calendar_fields("h") == ("hour", "dayofweek") and calendar_fields(None) == ()
    f = calendar_features(["2000-03-31", "2000-06-30", "2000-09-30", "2000-12-31"], ("quarter",))
    np.testing.assert_allclose(f, [[0, 1], [1, 0], [0, -1], [-1, 0]], atol=1e-12)  # sin, cos of quarter 1..4


def _config(data, **data_over):
    return forecast_config(str(data), {"data": dict(column="sales", horizon=3, test_size=6, val_size=6, batch=8,
                                                    **data_over),
                                       "model": dict(lookback=12, embed=4, id_embed=3, rnn=dict(hidden_size=6)),
                                       "train": dict(max_steps=8, max_time=None, eval_every=4, warmup_steps=1)})


@pytest.fixture
def no_holt_winters(monkeypatch):
    """Holt-Winters' validation fits (statsmodels) are most of a tiny PanelTask's cost; these tests skip them."""
    monkeypatch.setattr("rnnlab.train.panel._has_statsmodels", lambda: False)


def test_scaling_is_fitted_on_each_series_training_part_only(tmp_path, no_holt_winters):
    data = _long_csv(tmp_path / "p.csv", shuffle=False)
    task = PanelTask(_config(data, past_covariates="promo"))
    p = task.prep
    assert p.splits == [(48, 54), (36, 42), (28, 34)]
    for s, (v, _) in enumerate(p.splits):
        y = p.panel.values[s]
        assert p.scalers[s].mean == pytest.approx(y[:v].mean()) and p.scalers[s].std == pytest.approx(y[:v].std())
        assert p.cov[s][0] == pytest.approx(p.panel.past[s][:v].mean(0))
    # validation and held-out values of every series multiplied by 50: nothing the model trains on may move
    text = data.read_text().splitlines()
    n_seen = {"a": 0, "b": 0, "c": 0}
    out = [text[0]]
    for line in text[1:]:
        date, name, value, promo = line.split(",")
        keep = {"a": 48, "b": 36, "c": 28}[name]
        if n_seen[name] >= keep:
            value, promo = f"{float(value) * 50:.4f}", "9"
        n_seen[name] += 1
        out.append(",".join((date, name, value, promo)))
    changed = tmp_path / "changed.csv"
    changed.write_text("\n".join(out) + "\n")
    other = PanelTask(_config(changed, past_covariates="promo"))
    assert other.prep.scalers == p.scalers
    for a, b in zip(other.prep.cov, p.cov):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    for name in ("x", "ids", "past", "known", "y"):
        assert torch.equal(getattr(other, name), getattr(task, name)), name
    # windows from every series, each ending inside its own training part
    assert len(task.x) == sum(v - 12 - 3 + 1 for v, _ in p.splits)
    assert sorted(set(task.ids.tolist())) == [0, 1, 2]
    z = p.scalers[2].transform(p.panel.values[2])
    np.testing.assert_allclose(task.y[-1].numpy(), z[25:28], rtol=1e-5)  # c's last target ends at its validation


def test_global_forecaster_embedding_and_covariate_shapes():
    c = GlobalForecasterConfig(lookback=8, horizon=3, season=4, residual="seasonal", embed=5, series=4, id_embed=3,
                               known=2, past=1, rnn=RecurrentConfig(hidden_size=6))
    torch.manual_seed(0)
    m = build_forecaster(c)
    assert isinstance(m, GlobalForecaster)
    assert m.id_embedding.weight.shape == (4, 3)
    assert m.inp.weight.shape == (5, 1 + 1 + 2 + 3)             # value, past, known, id embedding per step
    assert m.head.weight.shape == (3, 6 + 3 + 3 * 2)            # state, id embedding, known of the H steps ahead
    w, ids, past, known = torch.randn(2, 8), torch.tensor([0, 3]), torch.randn(2, 8, 1), torch.randn(2, 11, 2)
    out, loss = m(w, ids, past, known, torch.zeros(2, 3))
    assert out.shape == (2, 3) and loss.shape == ()
    with torch.no_grad():
        m.head.weight.zero_()
    torch.testing.assert_close(m(w, ids, past, known)[0], w[:, [4, 5, 6]])  # a zero correction: seasonal naive
    with pytest.raises(ValueError, match="known \\(B, L\\+H=11, K=2\\)"):
        m(w, ids, past, known[:, :8])
    assert isinstance(build_forecaster(GlobalForecasterConfig(lookback=8)), Forecaster)  # series 0: one series


def test_level_window_reads_each_window_relative_to_its_last_value():
    c = GlobalForecasterConfig(lookback=8, horizon=3, residual="last", embed=4, series=2, id_embed=2,
                               level="window", rnn=RecurrentConfig(hidden_size=5))
    torch.manual_seed(0)
    m = GlobalForecaster(c)
    w, ids, past, known = torch.randn(2, 8), torch.tensor([0, 1]), torch.zeros(2, 8, 0), torch.zeros(2, 11, 0)
    torch.testing.assert_close(m(w + 7.0, ids, past, known)[0], m(w, ids, past, known)[0] + 7.0)  # level-free
    with pytest.raises(ValueError, match="series or window"):
        GlobalForecasterConfig(lookback=8, level="global").check()


def test_a_global_model_trains_and_forecasts_every_series(tmp_path, capsys):
    data = _long_csv(tmp_path / "p.csv")
    code, out, err = run(capsys, "train", "forecast", "--data", data, "--column", "sales", "--past-covariates",
                         "promo", "--horizon", "3", "--lookback", "12", "--test-size", "6", "--out", tmp_path / "r",
                         *TINY)
    assert code == 0, err
    assert "3 series of sales by 'store'" in out and "past covariates promo" in out and "calendar features month" in out
    assert "mean MASE" in out and "seasonal-naive" in out
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["data"]["id_column"] == "store" and config["model"]["series"] == 3
    assert config["model"]["known"] == 2 and config["model"]["past"] == 1
    code, out, err = run(capsys, "eval", tmp_path / "r", "--baselines")
    assert code == 0, err
    assert "holt-winters" in out.splitlines()[1] and "median MASE" in out
    scores = list(csv.DictReader(open(tmp_path / "r" / "panel-eval.csv")))
    assert {r["store"] for r in scores} == {"a", "b", "c"}
    assert {r["model"] for r in scores} >= {"network", "seasonal-naive"}
    code, out, err = run(capsys, "forecast", tmp_path / "r", "--steps", "3", "--model", "network",
                         "--out", tmp_path / "f.csv")
    assert code == 0, err
    table = list(csv.reader(open(tmp_path / "f.csv")))
    assert table[0] == ["store", "step", "time", "sales", "lo80", "hi80", "model"]
    assert [(r[0], r[1]) for r in table[1:]] == [(s, str(k)) for s in "abc" for k in (1, 2, 3)]
    assert table[1][2] == "2005-01-01" and table[4][2] == "2004-07-01"  # each series after its own end
    assert all(math.isfinite(float(x)) for r in table[1:] for x in r[3:6]) and {r[6] for r in table[1:]} == {"network"}
    assert all(float(r[4]) <= float(r[5]) for r in table[1:])
    # model auto: each series by the model that won its own validation, as the state's per-series scores say
    code, out, err = run(capsys, "forecast", tmp_path / "r", "--steps", "2", "--out", tmp_path / "auto.csv")
    assert code == 0, err
    per = json.loads((tmp_path / "r" / "best" / "state.json").read_text())["val_series"]
    want = [min(per, key=lambda k: (per[k][s], k != "network")) for s in range(3)]
    assert [r[6] for r in list(csv.reader(open(tmp_path / "auto.csv")))[1::2]] == want
    code, _, err = run(capsys, "forecast", tmp_path / "r", "--steps", "4", "--model", "network", "--out", "-")
    assert code == 2 and "past covariates, whose future is unknown" in err
    code, out, err = run(capsys, "forecast", tmp_path / "r", "--steps", "5", "--model", "seasonal-naive", "--out", "-")
    assert code == 0 and len(out.strip().splitlines()) == 1 + 3 * 5
    code, _, err = run(capsys, "export", tmp_path / "r", "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert code == 2 and "many-series forecaster" in err and "Traceback" not in err  # not exported yet: said so


def test_aggregate_metrics_against_a_hand_computation():
    actual = [np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0])]
    forecast = [np.array([2.0, 2.0, 1.0]), np.array([10.0, 30.0])]
    scales = [0.5, 5.0]
    rows = score_series(actual, forecast, scales, offsets=[-1.0, 1.0])
    # series 1: errors 1, 0, 2 -> MAE 1, MASE 2; interval forecast -+ 0.5: [1.5, 2.5], [1.5, 2.5], [0.5, 1.5]
    assert rows[0]["mae"] == pytest.approx(1.0) and rows[0]["mase"] == pytest.approx(2.0)
    assert rows[0]["inside"] == 1 and rows[0]["rmse"] == pytest.approx(math.sqrt(5 / 3))
    # series 2: errors 0, 10 -> MAE 5, MASE 1; interval -+ 5: [5, 15] holds 10, [25, 35] misses 20
    assert rows[1]["mae"] == pytest.approx(5.0) and rows[1]["mase"] == pytest.approx(1.0) and rows[1]["inside"] == 1
    agg = aggregate(rows)
    assert agg["mase"] == pytest.approx(1.5) and agg["median_mase"] == pytest.approx(1.5)
    assert agg["mae"] == pytest.approx(3.0) and agg["coverage"] == pytest.approx(2 / 5)  # pooled: 2 of 5 values
    # pinball of series 1 by hand: quantile 0.1 at f - 0.5, 0.9 at f + 0.5
    lo, hi = forecast[0] - 0.5, forecast[0] + 0.5
    a = actual[0]
    hand = (np.mean(np.maximum(0.1 * (a - lo), -0.9 * (a - lo)))
            + np.mean(np.maximum(0.9 * (a - hi), -0.1 * (a - hi)))) / 2
    assert rows[0]["pinball"] == pytest.approx(hand)


def test_an_interrupted_run_resumes_exactly(tmp_path, no_holt_winters):
    data = _long_csv(tmp_path / "p.csv")

    def go(run, **kw):
        cfg = _config(data, past_covariates="promo")
        cfg.train.max_steps, cfg.train.eval_every = 12, 4
        return fit(PanelTask(cfg), cfg.train, run, progress=False, log=lambda s: None, **kw)

    full = go(tmp_path / "full")

    def interrupt(step, loss):
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    first = go(tmp_path / "cut", on_step=interrupt)
    assert first.stopped == "interrupted" and first.step == 5
    second = go(tmp_path / "cut", resume=tmp_path / "cut")
    assert second.step == 12 and first.losses + second.losses == full.losses


def test_builtin_panels():
    pytest.importorskip("statsmodels", reason="builtin:macro and builtin:grunfeld come from statsmodels")
    macro = load_panel("builtin:macro")
    assert len(macro.ids) == 12 and {len(v) for v in macro.values} == {203} and macro.season == 4
    assert macro.calendar == ("quarter",) and macro.index[0][0] == "1959-03-31" and "realgdp" in macro.ids
    grunfeld = load_panel("builtin:grunfeld")
    assert len(grunfeld.ids) == 11 and grunfeld.past_names == ["value", "capital"] and grunfeld.season == 1
    assert panel_wanted("builtin:macro", None) == "series"


def test_past_the_horizon_each_block_is_fed_back(tmp_path, no_holt_winters):
    """Without past covariates the network forecasts any steps: blocks of H, each appended to the history."""
    from rnnlab.train import load_forecaster

    data = _long_csv(tmp_path / "p.csv")
    cfg = _config(data)
    fit(PanelTask(cfg), cfg.train, tmp_path / "r", progress=False, log=lambda s: None)
    loaded = load_forecaster(tmp_path / "r")
    seven = loaded.future(7, model="network")
    three = loaded.future(3, model="network")
    assert [len(f) for f in seven] == [7, 7, 7]
    for a, b in zip(seven, three):
        np.testing.assert_allclose(a[:3], b)  # the first block is the direct forecast
    # the second block is the forecast from the history with the first block appended
    prep = loaded.prepared()
    s = 1
    extended = np.concatenate([prep.panel.values[s], three[s]])
    L = cfg.model.lookback
    z = prep.scalers[s].transform(extended[-L:])
    from rnnlab.data.panel import calendar_features, future_times

    stamps = prep.panel.index[s] + future_times(prep.panel.index[s][-1], "MS", 6)
    known = calendar_features(stamps[-(L + 3):], ("month",))
    f = loaded.model.forecast(torch.tensor(z[None], dtype=torch.float32), torch.tensor([prep.codes[s]]),
                              torch.zeros(1, L, 0), torch.tensor(known[None], dtype=torch.float32))
    np.testing.assert_allclose(seven[s][3:6], prep.scalers[s].inverse(f[0].double().numpy()), rtol=1e-5)
