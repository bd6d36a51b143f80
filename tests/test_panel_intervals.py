"""Many series (issue 18): 80 % intervals per step ahead from errors at every origin before the held-out tail
(split-conformal levels, checked by hand), and the model `rnnlab forecast` uses chosen per series by that
series' own validation MASE."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pandas", reason="long-format tables are read with pandas")

from rnnlab.train import fit, forecast_config, load_forecaster
from rnnlab.train.forecast_select import interval_bounds, interval_scores, step_offsets
from rnnlab.train.panel import (LoadedPanel, PanelTask, baselines_at, calibration_errors, calibration_origins,
                                network_offsets, prepare_panel, read_panel_state, score_series)

pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")


@pytest.fixture
def no_holt_winters(monkeypatch):
    """Holt-Winters' fits (statsmodels) are most of a tiny PanelTask's cost; these tests skip them."""
    monkeypatch.setattr("rnnlab.train.panel._has_statsmodels", lambda: False)


def _csv(path, lengths=(40, 30)):
    """Monthly series a (level 10) and b (level 100) in long format, a yearly cycle plus a ramp."""
    rows = [f"{2000 + i // 12}-{i % 12 + 1:02d}-01,{name},{10 ** (k + 1) * (1 + 0.2 * math.sin(i)) + i:.4f}"
            for k, (name, n) in enumerate(zip("ab", lengths)) for i in range(n)]
    path.write_text("date,store,sales\n" + "\n".join(rows) + "\n")
    return path


def _config(data):
    return forecast_config(str(data), {"data": dict(column="sales", horizon=3, test_size=3, val_size=3, batch=8),
                                       "model": dict(lookback=6, embed=4, id_embed=2, rnn=dict(hidden_size=6)),
                                       "train": dict(max_steps=6, max_time=None, eval_every=3, warmup_steps=1)})


def test_step_offsets_are_the_split_conformal_levels():
    errors = [np.arange(19, 0, -1, dtype=float), np.array([3.0, -1.0, 2.0])]
    # n = 19: the floor(20 x 0.1) = 2nd and ceil(20 x 0.9) = 18th smallest; n = 3: the smallest and largest
    assert step_offsets(errors) == [[2.0, 18.0], [-1.0, 3.0]]
    with pytest.raises(ValueError, match="step 2: no finite errors"):
        step_offsets([np.ones(3), np.array([])])


def test_interval_bounds_per_step_ahead_and_the_older_single_pair():
    f = np.zeros(5)
    per_step = [[-1.0, 1.0], [-2.0, 3.0]]
    lo, hi = interval_bounds(f, per_step, scale=10.0)  # blocks of H = 2 from origins every 2 values
    np.testing.assert_array_equal(lo, [-10, -20, -10, -20, -10])
    np.testing.assert_array_equal(hi, [10, 30, 10, 30, 10])
    lo, hi = interval_bounds(f, per_step, steps=np.arange(5))  # one origin: past step 2, step 2's offsets
    np.testing.assert_array_equal(hi, [1, 3, 3, 3, 3])
    lo, hi = interval_bounds(f, [-0.5, 0.5])
    assert (lo == -0.5).all() and (hi == 0.5).all()
    assert interval_scores(np.array([0.5, 3.5, 0.0]), np.zeros(3), per_step)["coverage"] == pytest.approx(2 / 3)
    rows = score_series([np.array([0.5, 3.5, 0.0])], [np.zeros(3)], [1.0], series_offsets=[per_step])
    assert rows[0]["inside"] == 2 and rows[0]["n"] == 3


def test_calibration_errors_at_every_origin_before_the_tail(tmp_path):
    cfg = _config(_csv(tmp_path / "p.csv"))
    p = prepare_panel(cfg)
    assert p.splits == [(34, 37), (24, 27)]
    origins = calibration_origins(p, 6)
    assert origins == [list(range(6, 37)), list(range(6, 27))]
    assert calibration_origins(p, 6, most=4) == [[12, 20, 28, 36], [8, 14, 20, 26]]  # evenly spaced, ending last
    f = baselines_at(p, origins, 12, 3, "seasonal-naive")
    assert f[0].shape == (31, 3)
    errors = calibration_errors(p, origins, f, 3)
    # step k counts the origins whose target k steps ahead lies before the tail: (37 - 6 - k) + (27 - 6 - k)
    assert [len(e) for e in errors] == [52, 50, 48]
    y, sc = p.panel.values[1], p.scales[1]
    o = 14  # after a's 30: series b, origin 14, 2 steps ahead: y[15] against seasonal naive's y[3], over b's scale
    assert errors[1][30 + o - 6] == pytest.approx((y[15] - y[3]) / sc)


def test_the_networks_in_sample_errors_are_scaled_to_its_validation_errors(tmp_path):
    p = prepare_panel(_config(_csv(tmp_path / "p.csv")))
    origins = calibration_origins(p, 6)

    def forecasts(train_error, val_error):  # each target missed by +-error x its series' scale, by part
        out = []
        for s, os_ in enumerate(origins):
            y, (v, _), sc = p.panel.values[s], p.splits[s], p.scales[s]
            out.append(np.array([[y[min(o + k, len(y) - 1)] - (-1) ** (o + k) * sc *
                                  (train_error if o + k < v else val_error) for k in range(3)] for o in os_]))
        return out

    assert sorted(set(np.round(np.concatenate(calibration_errors(p, origins, forecasts(1, 3), 3, "val")), 9))) \
        == [-3, 3]
    offsets, r = network_offsets(p, origins, forecasts(1, 3), 3)
    assert r == pytest.approx(3.0) and np.allclose(offsets, [[-3, 3]] * 3)  # in-sample errors x 3
    offsets, r = network_offsets(p, origins, forecasts(2, 1), 3)
    assert r == 1.0 and np.allclose(offsets, [[-2, 2]] * 3)  # never narrowed below the in-sample errors


def test_the_task_keeps_per_step_intervals_and_per_series_scores(tmp_path, no_holt_winters):
    cfg = _config(_csv(tmp_path / "p.csv"))
    task = PanelTask(cfg)
    p = task.prep
    origins = calibration_origins(p, 6)
    want = step_offsets(calibration_errors(p, origins, baselines_at(p, origins, 12, 3, "seasonal-naive"), 3))
    assert task.intervals["seasonal-naive"] == want and len(want) == 3
    assert len(task.val_series["seasonal-naive"]) == 2
    assert task.val_baselines["seasonal-naive"] == pytest.approx(np.mean(task.val_series["seasonal-naive"]))
    fit(task, cfg.train, tmp_path / "r", progress=False, log=lambda s: None)
    state = json.loads((tmp_path / "r" / "best" / "state.json").read_text())
    assert len(state["intervals"]["network"]) == 3 and len(state["val_series"]["network"]) == 2
    assert state["best_metrics"]["val_mase"] == pytest.approx(np.mean(state["val_series"]["network"]))
    loaded = load_forecaster(tmp_path / "r")
    for bad, match in ((dict(val_series={"network": [1.0]}), "val_series"),
                       (dict(intervals={"network": [[1.0, -1.0]]}), "intervals"),
                       (dict(intervals={"arima": [-1.0, 1.0]}), "intervals")):
        with pytest.raises(ValueError, match=match):
            read_panel_state({**state, **bad}, loaded.config)


def test_auto_chooses_per_series_by_its_own_validation_mase():
    state = {"best_metrics": {"val_mase": 1.0}, "val_baselines": {"seasonal-naive": 1.1, "holt-winters": 0.95},
             "val_series": {"network": [0.5, 1.5, 1.0], "seasonal-naive": [0.9, 1.2, 1.2],
                            "holt-winters": [0.8, 1.3, 0.9]},
             "intervals": {"network": [[-1.0, 1.0]], "seasonal-naive": [[-2.0, 2.0]], "holt-winters": [[-3.0, 3.0]]}}
    loaded = LoadedPanel(None, SimpleNamespace(model=SimpleNamespace(series=3)), SimpleNamespace(state=state),
                         {"ids": ["x", "y", "z"], "mase_scales": [1.0, 2.0, 10.0]})
    assert [c[0] for c in loaded.choices("auto")] == ["network", "seasonal-naive", "holt-winters"]
    assert "1.200" in loaded.choices("auto")[1][1]  # each series' own scores in the reason
    model, why = loaded.choice("auto")
    assert model == "auto" and "network for 1, seasonal-naive for 1, holt-winters for 1 of 3 series" in why
    assert [c[0] for c in loaded.choices("network")] == ["network"] * 3
    bands = loaded.future_intervals([np.zeros(2)] * 3, "auto")  # each series its chosen model's offsets x its scale
    assert [float(b[1][0]) for b in bands] == [1.0, 4.0, 30.0]
    del state["val_series"]  # a checkpoint of an older rnnlab: one choice for all, by the mean
    assert [c[0] for c in loaded.choices("auto")] == ["holt-winters"] * 3
