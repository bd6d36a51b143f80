"""The forecaster a user gets is the better one on validation (issue 18): the network, or seasonal naive /
Holt-Winters where they beat it on the network's own validation origins; `--model` forces one."""

from __future__ import annotations

import csv
import importlib.util
import json
import math

import numpy as np
import pytest

from rnnlab.data import DataError
from rnnlab.train.forecast_select import (baseline_future, choose, history_to_keep, interval_offsets, interval_scores,
                                          validation_scores)
from helpers import run_cli as run

TINY = ["--hidden", "8", "--embed", "4", "--max-steps", "3", "--eval-every", "3", "--warmup-steps", "1",
        "--quiet", "--threads", "1"]
pytestmark = pytest.mark.usefixtures("in_tmp")


def test_choose_takes_the_network_only_where_it_won_on_validation():
    state = {"best_metrics": {"val_mase": 0.9}, "val_baselines": {"seasonal-naive": 0.7, "holt-winters": 0.6}}
    model, why = choose(state)
    assert model == "holt-winters" and "0.600" in why and "0.900" in why and "--model network" in why
    state["best_metrics"]["val_mase"] = 0.5
    assert choose(state)[0] == "network"
    assert choose(state, "seasonal-naive") == ("seasonal-naive", "asked for with --model")
    assert choose({"best_metrics": {"val_mase": 0.5}})[0] == "network"  # an older checkpoint: no scores kept
    with pytest.raises(DataError, match="expected one of auto, network"):
        choose(state, "arima")


def test_baseline_futures():
    history = np.arange(30, dtype=float) % 6
    np.testing.assert_array_equal(baseline_future("seasonal-naive", history, 8, 6, "x.csv"),
                                  [0, 1, 2, 3, 4, 5, 0, 1])
    np.testing.assert_array_equal(baseline_future("seasonal-naive", history[:3], 2, 6, "x.csv"), [2, 2])
    if importlib.util.find_spec("statsmodels"):
        f = baseline_future("holt-winters", history + 0.01 * np.arange(30), 6, 6, "x.csv")
        assert f.shape == (6,) and np.abs(f - (np.arange(30, 36) % 6 + 0.01 * np.arange(30, 36))).max() < 0.2
    assert history_to_keep(5000, 24, 12) == 1000 and history_to_keep(100, 24, 12) == 100
    assert history_to_keep(10**6, 10, 52) == 1040


def test_interval_offsets_and_scores():
    actual = np.arange(100, dtype=float)
    forecast = actual - np.linspace(-1, 1, 100)  # errors spread evenly over [-1, 1]
    lo, hi = interval_offsets(actual, forecast)
    assert lo == pytest.approx(-0.8) and hi == pytest.approx(0.8)
    s = interval_scores(actual, forecast, [lo, hi])
    assert s["coverage"] == pytest.approx(0.8, abs=0.02)
    wide = interval_scores(actual, forecast, [-10.0, 10.0])
    assert wide["coverage"] == 1.0 and wide["pinball"] > s["pinball"]  # too wide costs pinball loss


def test_validation_scores_are_the_baselines_mase_on_those_origins():
    v = np.tile(np.arange(4, dtype=float), 10)  # exactly periodic: seasonal naive is perfect
    s = validation_scores(v, 24, 32, 4, 4, 1.0, "x.csv")
    assert s["seasonal-naive"] == 0.0


def _monthly(path, n=120):
    lines = ["month,sales"]
    for i in range(n):  # a strong yearly pattern and a little noise: repeating last year is hard to beat
        lines.append(f"{2000 + i // 12}-{i % 12 + 1:02d}-01,{100 + 30 * math.sin(2 * math.pi * i / 12) + (i * 7919 % 13) / 13:.3f}")
    path.write_text("\n".join(lines))
    return path


def test_a_network_that_lost_on_validation_is_not_what_forecast_uses(tmp_path, capsys):
    data = _monthly(tmp_path / "m.csv")
    # residual "last": the network starts from the last value, far from a yearly pattern after 3 steps
    code, out, err = run(capsys, "train", "forecast", "--data", data, "--horizon", "6", "--lookback", "12",
                         "--residual", "last", "--out", tmp_path / "r", *TINY)
    assert code == 0, err
    assert "season 12 (monthly" in out and "'month'" in out  # found the time column and the season
    state = json.loads((tmp_path / "r" / "best" / "state.json").read_text())
    assert set(state["val_baselines"]) >= {"seasonal-naive"}
    net, naive = state["best_metrics"]["val_mase"], state["val_baselines"]["seasonal-naive"]
    assert naive < net
    assert "`rnnlab forecast` uses " in out
    dense = state["val_choice"]  # the choice is scored at more origins (every step whose horizon fits)
    assert set(dense) >= {"network", "seasonal-naive"} and dense["seasonal-naive"] < dense["network"]
    chosen = min((k for k in dense if k != "network"), key=dense.get)
    assert f"80 % prediction interval of {chosen}" in out and "covers" in out

    code, out, err = run(capsys, "forecast", tmp_path / "r", "--steps", "12", "--out", tmp_path / "f.csv")
    assert code == 0, err
    assert f"model: {chosen}: it beat the network on validation" in err
    table = list(csv.reader(open(tmp_path / "f.csv")))
    assert table[0] == ["step", "time", "sales", "lo80", "hi80"]
    rows = table[1:]
    assert rows[0][1] == "2010-01-01" and len(rows) == 12
    lo, hi = state["intervals"][chosen]
    for r in rows:  # the chosen model's validation error quantiles around each value
        assert float(r[3]) == pytest.approx(float(r[2]) + lo, rel=1e-5) and float(r[4]) == pytest.approx(float(r[2]) + hi, rel=1e-5)

    if chosen == "seasonal-naive":
        last_year = [float(line.split(",")[1]) for line in data.read_text().splitlines()[-12:]]
        np.testing.assert_allclose([float(r[2]) for r in rows], last_year, rtol=1e-5)

    code, out, err2 = run(capsys, "forecast", tmp_path / "r", "--steps", "12", "--model", "network", "--out", "-")
    assert code == 0 and "model: network: asked for with --model" in err2
    network = [float(r.split(",")[2]) for r in out.strip().splitlines()[1:]]
    assert not np.allclose(network, [float(r[2]) for r in rows])


def test_an_ensemble_forecasts_the_median_of_its_members_and_trains_each():
    import torch

    from rnnlab.layers import RecurrentConfig
    from rnnlab.models import Forecaster, ForecasterConfig

    c = ForecasterConfig(lookback=8, horizon=3, season=4, residual="seasonal", embed=4, ensemble=3,
                         rnn=RecurrentConfig(hidden_size=5))
    torch.manual_seed(0)
    m = Forecaster(c)
    w, y = torch.randn(2, 8), torch.randn(2, 3)
    out, loss = m(w, y)
    members = [net(w, y) for net in m.members]
    torch.testing.assert_close(out, torch.stack([o for o, _ in members]).median(dim=0).values)
    torch.testing.assert_close(loss, torch.stack([l for _, l in members]).mean())
    assert not torch.equal(members[0][0], members[1][0])  # different initial weights
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.members[2].head.parameters())


def test_ensemble_from_the_command_line(tmp_path, capsys):
    data = _monthly(tmp_path / "m.csv", n=96)
    code, out, err = run(capsys, "train", "forecast", "--data", data, "--horizon", "6", "--lookback", "12",
                         "--ensemble", "3", "--out", tmp_path / "r", *TINY)
    assert code == 0, err
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["model"]["ensemble"] == 3
    code, out, err = run(capsys, "forecast", tmp_path / "r", "--steps", "4", "--model", "network", "--out", "-")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 5
