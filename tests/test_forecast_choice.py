"""One series (issue 18): Holt-Winters' own settings chosen on validation, and the choice network / baselines
scored at more origins than early stopping uses (every step whose horizon fits in the validation part)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rnnlab.baselines import ets_forecast
from rnnlab.train import ForecastTask, forecast_config
from rnnlab.train.forecast import _read_state, forecast_at
from rnnlab.train.forecast_select import (baseline_choice_scores, choice_origins, choose, choose_ets, ets_candidates,
                                          origin_mase)

pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")
needs_statsmodels = pytest.mark.skipif(importlib.util.find_spec("statsmodels") is None,
                                       reason="Holt-Winters is statsmodels'")


def test_choice_origins_every_step_whose_horizon_fits():
    assert choice_origins(10, 32, 11) == list(range(10, 22))  # sunspots-like: 12 origins where 2 early-stop
    assert choice_origins(0, 5, 6) == [0]  # a horizon longer than the part: its first origin only
    spread = choice_origins(0, 208, 52, most=5)
    assert spread == [0, 39, 78, 117, 156] and len(choice_origins(0, 24, 12)) == 12


def test_origin_mase_by_hand():
    v = np.array([0.0, 1, 2, 3, 4, 5])
    f = np.array([[1.0, 2.0], [4.0, 4.0], [9.0, 9.0]])
    # origin 1: errors 0, 0; origin 3: 1, 0; origin 5: 4 (step 2 is past the end) -> 5 / 5 values / scale 2
    assert origin_mase(v, [1, 3, 5], f, 2.0) == pytest.approx(0.5)


def test_choose_uses_the_scores_at_the_choice_origins_where_kept():
    state = {"best_metrics": {"val_mase": 0.5}, "val_baselines": {"seasonal-naive": 0.7},
             "val_choice": {"network": 0.9, "seasonal-naive": 0.8}}
    model, why = choose(state)
    assert model == "seasonal-naive" and "0.800" in why and "0.900" in why
    del state["val_choice"]
    assert choose(state)[0] == "network"


def test_ets_candidates():
    positive = np.arange(1.0, 50.0)
    assert ets_candidates(positive, 12, "builtin:sunspots")[0] == dict(trend=None, seasonal="add")  # its own first
    assert len(ets_candidates(positive, 12, "x.csv")) == 4
    assert all(c["seasonal"] != "mul" for c in ets_candidates(positive - 10, 12, "x.csv"))
    assert ets_candidates(positive, 1, "x.csv") == [dict(trend="add", seasonal="add"), dict(trend="add", seasonal=None),
                                                    dict(trend=None, seasonal=None)]


@needs_statsmodels
def test_holt_winters_settings_are_the_lowest_validation_mae_and_scores_by_hand():
    t = np.arange(72, dtype=float)
    v = 50 + 10 * np.sin(2 * np.pi * t / 12) * (1 + t / 72)  # a season growing with time, no trend
    best, f = choose_ets(v, 60, 72, 6, 12, "x.csv")
    maes = {(c["trend"], c["seasonal"]): np.mean(np.abs(ets_forecast(v, 60, 72, 6, 12, **c) - v[60:72]))
            for c in ets_candidates(v[:72], 12, "x.csv")}
    assert (best["trend"], best["seasonal"]) == min(maes, key=maes.get)
    assert np.mean(np.abs(f - v[60:72])) == pytest.approx(min(maes.values()))
    origins = choice_origins(60, 72, 6)
    s, f = baseline_choice_scores(v, origins, 72, 6, 12, 2.0, best)
    assert f["holt-winters"].shape == (len(origins), 6)
    sn = np.concatenate([v[o - 12:o - 6] for o in origins])  # seasonal naive: the same steps a season earlier
    assert s["seasonal-naive"] == pytest.approx(np.mean(np.abs(np.concatenate([v[o:o + 6] for o in origins]) - sn)) / 2)
    hw = [ets_forecast(v, o, o + 6, 6, 12, **best) for o in origins]
    assert s["holt-winters"] == pytest.approx(origin_mase(v, origins, hw, 2.0))


def test_the_task_keeps_its_choice_scores_and_settings(tmp_path):
    t = np.arange(96)
    path = tmp_path / "s.csv"
    path.write_text("value\n" + "\n".join(f"{5 + np.sin(2 * np.pi * i / 12) + 0.01 * i:.4f}" for i in t) + "\n")
    cfg = forecast_config(str(path), {"data.season": 12, "data.horizon": 6, "model.lookback": 12,
                                      "model.rnn.hidden_size": 4, "train.max_steps": 2, "train.max_time": None})
    task = ForecastTask(cfg)
    p = task.prep
    assert p.test_start - p.val_start == 24  # 19 origins whose 6 steps fit, 12 of them kept, first and last too
    assert len(task.choice_origins) == 12 and task.choice_origins[0] == p.val_start
    assert task.choice_origins[-1] == p.test_start - 6
    task.evaluate()
    g = forecast_at(task.model, p.scaler, p.series.values, task.choice_origins, 6)
    assert task.val_choice["network"] == pytest.approx(origin_mase(p.series.values, task.choice_origins, g, p.scale))
    if "holt-winters" in task.val_choice:  # the combined forecast: the mean of the network's and Holt-Winters'
        combined = (g + task.choice_forecasts["holt-winters"]) / 2
        assert task.val_choice["combined"] == pytest.approx(origin_mase(p.series.values, task.choice_origins, combined,
                                                                        p.scale))
        assert "combined" in task.intervals
    state = {**task.extra_state(), "best_metrics": {}}
    assert set(state["ets"]) == {"trend", "seasonal"}
    _read_state(state, cfg)
    for bad in (dict(ets={"trend": "mul", "seasonal": None}), dict(val_choice={"arima": 1.0})):
        with pytest.raises(ValueError):
            _read_state({**state, **bad}, cfg)


@needs_statsmodels
def test_the_combined_forecast_is_the_mean_of_the_network_and_holt_winters(tmp_path):
    from rnnlab.data import DataError
    from rnnlab.train import fit, load_forecaster
    from rnnlab.train.panel import LoadedPanel

    path = tmp_path / "s.csv"
    path.write_text("value\n" + "\n".join(f"{5 + np.sin(2 * np.pi * i / 12) + 0.01 * i:.4f}" for i in range(96)) + "\n")
    cfg = forecast_config(str(path), {"data.season": 12, "data.horizon": 6, "model.lookback": 12,
                                      "model.rnn.hidden_size": 4, "train.max_steps": 2, "train.eval_every": 1,
                                      "train.max_time": None})
    fit(ForecastTask(cfg), cfg.train, tmp_path / "r", progress=False, log=lambda s: None)
    loaded = load_forecaster(tmp_path / "r")
    np.testing.assert_allclose(loaded.future(8, model="combined"),
                               (loaded.future(8, model="network") + loaded.future(8, model="holt-winters")) / 2)
    assert loaded.choice("combined") == ("combined", "asked for with --model")
    panel = LoadedPanel(None, None, type("C", (), {"state": {}})(), {"ids": ["a"]})
    with pytest.raises(DataError, match="combined .* is for one series"):
        panel.choices("combined")
