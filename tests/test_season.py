"""The season of a user's CSV comes from its time stamps (issue 18): the time column found when not named,
the frequency inferred, the season set from it and said where it came from; --season overrides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnlab.data import DataError
from rnnlab.data.series import load_series, season_of_freq


def _csv(tmp_path, name, **columns):
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("freq, season", [("MS", 12), ("ME", 12), ("W-SUN", 52), ("D", 7), ("B", 5), ("h", 24),
                                          ("QS-OCT", 4), ("QE-DEC", 4), ("15min", 96), ("3h", 8), ("YE-DEC", 1),
                                          ("2D", 1), ("s", 1), (None, 1)])
def test_season_of_each_frequency(freq, season):
    m, why = season_of_freq(freq, "date")
    assert m == season and why


def test_a_shuffled_monthly_csv_gets_its_time_column_order_and_season_12(tmp_path):
    n = 48
    dates = pd.date_range("2000-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    values = np.arange(n, dtype=float)
    order = np.random.default_rng(0).permutation(n)
    s = load_series(_csv(tmp_path, "m.csv", date=dates[order], value=values[order]))
    assert s.time_column == "date" and s.season == 12 and "monthly" in s.season_from
    np.testing.assert_array_equal(s.values, values)  # sorted back into time order
    assert s.index[:2] == ["2000-01-01", "2000-02-01"]


def test_hourly_and_weekly_stamps_and_the_override(tmp_path):
    hours = pd.date_range("2020-01-01", periods=60, freq="h").astype(str)
    path = _csv(tmp_path, "h.csv", timestamp=hours, load=np.arange(60.0))
    assert load_series(path).season == 24
    s = load_series(path, season=168)
    assert s.season == 168 and s.season_from == "--season"
    weeks = pd.date_range("2000-01-02", periods=60, freq="W").astype(str)
    assert load_series(_csv(tmp_path, "w.csv", d=weeks, v=np.arange(60.0))).season == 52


def test_no_time_column_or_numeric_years_mean_no_season_and_say_so(tmp_path):
    s = load_series(_csv(tmp_path, "n.csv", value=np.arange(30.0)))
    assert s.season == 1 and s.time_column is None and "--season" in s.season_from
    s = load_series(_csv(tmp_path, "y.csv", YEAR=np.arange(1700, 1730), SUN=np.arange(30.0)))
    assert s.time_column == "YEAR" and s.season == 1 and "numbers" in s.season_from
    assert s.index[0] == "1700"


def test_two_date_columns_are_not_guessed(tmp_path):
    d = pd.date_range("2000-01-01", periods=30, freq="D").astype(str)
    s = load_series(_csv(tmp_path, "two.csv", start=d, end=d, v=np.arange(30.0)))
    assert s.time_column is None and s.season == 1


def test_a_found_time_column_that_repeats_names_the_way_out(tmp_path):
    path = _csv(tmp_path, "dup.csv", d=["2000-01-01", "2000-01-01", "2000-01-02"], v=[1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="--time-column none"):
        load_series(path)
    s = load_series(path, time_column="none")
    assert s.time_column is None and list(s.values) == [1.0, 2.0, 3.0]
