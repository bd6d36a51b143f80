"""`train forecast --time-column`: rows are taken in time order whatever the file's order, and a time that is
unparsable or repeated is a one-line error naming its CSV lines (it used to drop the time column silently)."""

import numpy as np
import pandas as pd
import pytest

from rnnlab.data import DataError
from rnnlab.data.series import load_series
from helpers import assert_user_error, run_cli

pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")


def _monthly(tmp_path, n=36, shuffle=True, edit=None):
    dates = pd.date_range("2001-01-01", periods=n, freq="MS")
    df = pd.DataFrame({"month": dates.strftime("%Y-%m-%d"), "sales": np.arange(n, dtype=float) * 2 + 1})
    if edit:
        edit(df)
    if shuffle:
        df = df.sample(frac=1.0, random_state=0)
    path = tmp_path / "sales.csv"
    df.to_csv(path, index=False)
    return path


def test_a_shuffled_export_is_read_in_time_order(tmp_path):
    s = load_series(str(_monthly(tmp_path)), "sales", "month")
    assert s.values.tolist() == [i * 2 + 1 for i in range(36)]
    assert s.index[0] == "2001-01-01" and s.index[-1] == "2003-12-01" and s.freq == "MS"


def test_numeric_times_such_as_years_are_sorted_too(tmp_path):
    path = tmp_path / "years.csv"
    path.write_text("year,v\n1952,3\n1950,1\n1951,2\n1953,4\n")
    s = load_series(str(path), "v", "year")
    assert s.values.tolist() == [1, 2, 3, 4] and s.index == ["1950", "1951", "1952", "1953"]


def test_a_repeated_date_names_its_lines(tmp_path):
    path = _monthly(tmp_path, shuffle=False, edit=lambda df: df.loc.__setitem__((5, "month"), "2001-03-01"))
    with pytest.raises(DataError, match=r"repeats 1 time\(s\), e.g. '2001-03-01' on lines 4, 7; each row"):
        load_series(str(path), "sales", "month")


def test_an_unparsable_date_names_its_lines(tmp_path):
    path = _monthly(tmp_path, shuffle=False, edit=lambda df: df.loc.__setitem__((9, "month"), "soon"))
    with pytest.raises(DataError, match=r"1 value\(s\) that are not dates, on line\(s\) 11 \('soon'\); fix them"):
        load_series(str(path), "sales", "month")


def test_the_command_line_says_it_in_one_line(tmp_path, capsys):
    path = _monthly(tmp_path, shuffle=True, edit=lambda df: df.loc.__setitem__((2, "month"), "2001-13-45"))
    code, _, err = run_cli(capsys, "train", "forecast", "--data", path, "--column", "sales", "--time-column", "month",
                           "--out", tmp_path / "run", "--quiet")
    assert_user_error(code, err, "sales.csv", "'month'", "not dates", "'2001-13-45'")
