"""Forecasting: missing values, the split, scaling fitted on the training part only, rolling origins, MASE,
the baselines, direct and recursive forecasts, and the Forecaster's residual baseline."""

import numpy as np
import pytest
import torch

from rnnlab.baselines import seasonal_naive_forecast
from rnnlab.data import DataError
from rnnlab.data.series import Scaler, Series, load_series, mase_scale, rolling_origins, split_series
from rnnlab.models import Forecaster, ForecasterConfig, RecurrentConfig
from rnnlab.train.forecast import ForecastTask, forecast_config, forecast_origins


def _series(values, season=4):
    values = np.asarray(values, dtype=np.float64)
    return Series(values, [str(i) for i in range(len(values))], None, "toy", "toy", season, 0)


def test_csv_column_missing_values_each_policy(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("t,a,b\n0,1,x\n1,,x\n2,3,x\n3,4,x\n4,,x\n5,6,x\n", encoding="utf-8")
    s = load_series(str(path), "a", "t", missing="interpolate")
    assert s.missing == 2 and s.values.tolist() == [1, 2, 3, 4, 5, 6]
    s = load_series(str(path), "a", missing="drop")
    assert s.values.tolist() == [1, 3, 4, 6] and s.index == ["0", "2", "3", "5"]
    with pytest.raises(DataError, match="2 missing values .* --missing interpolate"):
        load_series(str(path), "a", missing="error")
    with pytest.raises(DataError, match="missing column 'c'"):
        load_series(str(path), "c")
    with pytest.raises(DataError, match="not numbers"):
        load_series(str(path), "b")


def test_builtin_co2_reports_its_59_missing_values():
    pytest.importorskip("statsmodels", reason="builtin:co2 comes from statsmodels")
    s = load_series("builtin:co2", missing="interpolate")
    assert s.missing == 59 and len(s.values) == 2284 and not np.isnan(s.values).any() and s.season == 52
    assert len(load_series("builtin:co2", missing="drop").values) == 2284 - 59


def test_split_checks_each_part():
    assert split_series(100, 10, 10, 20, 5) == (80, 90)
    with pytest.raises(DataError, match="horizon \\(12\\) is longer than the held-out tail \\(10"):
        split_series(100, 10, 20, 20, 12)
    with pytest.raises(DataError, match="fewer than one window"):
        split_series(40, 10, 10, 20, 5)


def test_rolling_origins_cover_the_tail_once():
    assert rolling_origins(10, 17, 3) == [(10, 3), (13, 3), (16, 1)]


def test_mase_scale_is_the_in_sample_seasonal_naive_mae():
    y = np.array([1.0, 2, 3, 5, 2, 4, 3, 8])
    assert mase_scale(y, 4) == pytest.approx(np.mean(np.abs(y[4:] - y[:4])))
    assert mase_scale(y, 1) == pytest.approx(np.mean(np.abs(np.diff(y))))


def test_seasonal_naive_repeats_the_last_season_before_each_origin():
    v = np.arange(20, dtype=float)
    f = seasonal_naive_forecast(v, 12, 20, 6, 4)
    assert f.tolist() == [8, 9, 10, 11, 8, 9, 14, 15]  # origin 12: v[8:12] repeated; origin 18: v[14:18]


def test_scaling_is_fitted_on_the_training_part_only():
    rng = np.random.default_rng(0)
    values = 10 + np.sin(np.arange(120) * 2 * np.pi / 4) + rng.normal(0, 0.1, 120)
    cfg = forecast_config("toy", {"data": dict(horizon=4, test_size=12, val_size=8),
                                  "model": dict(lookback=8, embed=2, rnn=dict(hidden_size=4))})
    task = ForecastTask(cfg, series=_series(values))
    p = task.prep
    assert (p.val_start, p.test_start) == (100, 108)
    assert p.scaler.mean == pytest.approx(values[:100].mean()) and p.scaler.std == pytest.approx(values[:100].std())
    changed = values.copy()
    changed[100:] *= 50  # validation and held-out values must not move the scaling or the training windows
    other = ForecastTask(forecast_config("toy", {"data": dict(horizon=4, test_size=12, val_size=8),
                                                 "model": dict(lookback=8, embed=2, rnn=dict(hidden_size=4))}),
                         series=_series(changed))
    assert other.prep.scaler == p.scaler
    assert torch.equal(other.x, task.x) and torch.equal(other.y, task.y)
    # the last training target ends right before validation
    z = p.scaler.transform(values)
    np.testing.assert_allclose(task.y[-1].numpy(), z[96:100], rtol=1e-5)
    assert cfg.model.residual == "seasonal"  # auto: the season (4) fits in the lookback (8)


def test_log_scaler_round_trips_and_rejects_non_positive():
    s = Scaler.fit(np.array([1.0, 10, 100]), log=True)
    np.testing.assert_allclose(s.inverse(s.transform(np.array([5.0, 50]))), [5, 50])
    with pytest.raises(DataError, match="log"):
        Scaler.fit(np.array([1.0, 0.0]), log=True)


def test_forecaster_residual_baselines_and_recursive_forecast():
    torch.manual_seed(0)
    cfg = ForecasterConfig(lookback=6, horizon=5, season=3, residual="seasonal", embed=2, rnn=RecurrentConfig(hidden_size=4, init="orthogonal"))
    m = Forecaster(cfg)
    w = torch.arange(12, dtype=torch.float32).view(2, 6)
    assert m.baseline(w).tolist() == [[3, 4, 5, 3, 4], [9, 10, 11, 9, 10]]
    with torch.no_grad():
        m.head.weight.zero_()
    assert m(w)[0].tolist() == m.baseline(w).tolist()  # a zero correction forecasts the baseline itself
    # recursive: one step at a time, each output appended to the window
    r = Forecaster(ForecasterConfig(lookback=6, horizon=1, residual="last", embed=2, rnn=RecurrentConfig(hidden_size=4, init="orthogonal")))
    f = r.forecast(w, 3)
    step1, _ = r(w)
    step2, _ = r(torch.cat([w[:, 1:], step1], 1))
    torch.testing.assert_close(f[:, :2], torch.cat([step1, step2], 1))


def test_forecast_origins_use_only_the_history_before_each_origin():
    torch.manual_seed(0)
    values = np.arange(1.0, 41.0)
    scaler = Scaler.fit(values[:30])
    m = Forecaster(ForecasterConfig(lookback=5, horizon=4, residual="last", embed=2, rnn=RecurrentConfig(hidden_size=4, init="orthogonal")))
    f = forecast_origins(m, scaler, values, 30, 40, 4)
    later = values.copy()
    later[34:] = 100  # origins 30, 34, 38: only the forecast from 38 may see values from 34 on
    g = forecast_origins(m, scaler, later, 30, 40, 4)
    np.testing.assert_allclose(f[:8], g[:8])
    assert not np.allclose(f[8:], g[8:])


def test_seasonal_drift_baseline_adds_the_change_of_the_seasonal_mean():
    m = Forecaster(ForecasterConfig(lookback=6, horizon=4, season=3, residual="seasonal-drift", embed=2, rnn=RecurrentConfig(hidden_size=4, init="orthogonal")))
    w = torch.tensor([[0.0, 1, 2, 10, 11, 12]])  # the last season's mean is 10 above the one before
    assert m.baseline(w).tolist() == [[20, 21, 22, 30]]
    with pytest.raises(ValueError, match="2 x season"):
        ForecasterConfig(lookback=5, horizon=1, season=3, residual="seasonal-drift").check()
