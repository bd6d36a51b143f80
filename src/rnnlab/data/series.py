"""Time series for forecasting: built-in series, user CSVs, missing values, the held-out tail, scaling.

    builtin:co2       weekly atmospheric CO2 at Mauna Loa, 1958-2001, 2,284 values, 59 missing (statsmodels)
    builtin:sunspots  yearly sunspot activity, 1700-2008, 309 values (statsmodels)
    builtin:airline   monthly airline passengers, 1949-1960, 144 values (sktime)
    PATH.csv          one numeric column (--column NAME) and a time column (--time-column NAME, or found: the one
                      text column whose every value is a date, or an integer column named year/date/time/...)

The season (seasonal period m) of a CSV comes from its time stamps' frequency (pandas' infer_freq): hourly 24,
daily 7, business-daily 5, weekly 52, monthly 12, quarterly 4; without a time column or a regular frequency it
is 1; --season overrides. Series.season_from says which, for the log.

The last `test` values are held out; forecasts are scored there from rolling origins every H steps, each
forecast seeing the true history up to its origin. Scaling (optional log, then mean/std) is fitted on the
training part only: the held-out values never influence what the model sees during training.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .corpora import BUILTIN_PREFIX
from .errors import DataError, check_regular

__all__ = ["FORECAST_BUILTINS", "Scaler", "Series", "load_series", "mase_scale", "rolling_origins", "season_of_freq",
           "split_series"]

MISSING = ("interpolate", "drop", "error")


@dataclass
class Series:
    values: np.ndarray            # (N,) float64, missing values already handled
    index: list[str]              # (N,) time stamps as text (ISO dates, years) or step numbers
    freq: str | None              # pandas frequency of the index, for dates after the end (None: steps)
    name: str
    source: str
    season: int                   # seasonal period m (52 weekly, 12 monthly, 11 sunspot cycle; 1: none)
    missing: int                  # how many missing values the data had
    missing_policy: str = "interpolate"
    season_from: str = ""         # where the season came from, for the log ("--season", "the monthly time stamps")
    time_column: str | None = None  # the CSV's time column (named or found), None for row order


def _co2():
    import statsmodels.api as sm

    s = sm.datasets.co2.load_pandas().data["co2"]
    return s, 52, "W-SAT"


def _sunspots():
    import pandas as pd
    import statsmodels.api as sm

    d = sm.datasets.sunspots.load_pandas().data
    return pd.Series(d["SUNACTIVITY"].to_numpy(), index=d["YEAR"].astype(int).astype(str), name="sunactivity"), 11, None


def _airline():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sktime.datasets import load_airline

        s = load_airline()
    s.index = s.index.to_timestamp(how="end").normalize()
    return s, 12, "ME"


FORECAST_BUILTINS = {"co2": (_co2, "statsmodels"), "sunspots": (_sunspots, "statsmodels"),
                     "airline": (_airline, "sktime")}


def load_series(data: str, column: str | None = None, time_column: str | None = None, *,
                missing: str = "interpolate", season: int | None = None, encoding: str = "utf-8") -> Series:
    """A built-in series or one numeric column of a CSV, with its missing values handled by `missing`:
    interpolate (linear in time; the ends take the nearest value), drop (remove those steps), or error."""
    if missing not in MISSING:
        raise DataError(f"unknown missing-value policy {missing!r}; expected one of {', '.join(MISSING)}")
    if importlib.util.find_spec("pandas") is None:
        raise DataError("forecasting needs the package pandas; install it with: pip install pandas")
    import pandas as pd

    if data.startswith(BUILTIN_PREFIX):
        name = data[len(BUILTIN_PREFIX):]
        if name not in FORECAST_BUILTINS:
            names = ", ".join(BUILTIN_PREFIX + n for n in FORECAST_BUILTINS)
            raise DataError(f"unknown built-in series {data!r} for forecasting; expected one of {names}")
        loader, package = FORECAST_BUILTINS[name]
        if importlib.util.find_spec(package) is None:
            raise DataError(f"{data} needs the package {package}; install it with: pip install {package}")
        s, m, freq = loader()
        label = str(s.name or name)
    else:
        s, freq, label, time_column = _read_csv_column(Path(data), column, time_column, encoding)
        if time_column is None:
            m, season_from = 1, "no time column (none named or found): 1, no seasonality; give --season M"
        elif not isinstance(s.index, pd.DatetimeIndex):
            m, season_from = 1, (f"the time column {time_column!r} holds numbers (years or steps), not dates: 1, no "
                                 f"seasonality; give --season M")
        else:
            m, season_from = season_of_freq(freq, time_column)
    if data.startswith(BUILTIN_PREFIX):
        season_from = f"the data set's own ({m})"
    if season is not None:
        if season < 1:
            raise DataError(f"season must be >= 1 (1: no seasonality), got {season}")
        m, season_from = season, "--season"
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    if np.isinf(values).any():
        raise DataError(f"{data}: infinite values in the series; replace them before forecasting")
    n_missing = int(np.isnan(values).sum())
    index = [str(i.date()) if hasattr(i, "date") else str(i) for i in s.index]
    if n_missing:
        if missing == "error":
            first = index[int(np.flatnonzero(np.isnan(values))[0])]
            raise DataError(f"{data}: {n_missing} missing values (the first at {first}); choose --missing "
                            f"interpolate or --missing drop")
        if missing == "drop":
            keep = ~np.isnan(values)
            values, index = values[keep], [i for i, k in zip(index, keep) if k]
        else:
            values = pd.Series(values).interpolate(method="linear", limit_direction="both").to_numpy()
    if len(values) < 3:
        raise DataError(f"{data}: only {len(values)} values; a forecast needs a longer series")
    return Series(values, index, freq, label, data, m, n_missing, missing, season_from,
                  None if data.startswith(BUILTIN_PREFIX) else time_column)


# The season a regular time stamp implies: the cycle users of Darts, GluonTS and statsmodels expect by default.
_SEASONS = {"Hour": (24, "hourly: a daily cycle of 24"), "Day": (7, "daily: a weekly cycle of 7"),
            "BusinessDay": (5, "business-daily: a weekly cycle of 5"), "Week": (52, "weekly: a yearly cycle of 52"),
            "MonthBegin": (12, "monthly: a yearly cycle of 12"), "MonthEnd": (12, "monthly: a yearly cycle of 12"),
            "QuarterBegin": (4, "quarterly: a yearly cycle of 4"), "QuarterEnd": (4, "quarterly: a yearly cycle of 4"),
            "SemiMonthBegin": (24, "twice-monthly: a yearly cycle of 24"),
            "SemiMonthEnd": (24, "twice-monthly: a yearly cycle of 24")}
_PER_DAY = {"Hour": 24, "Minute": 24 * 60}  # multiples of these: a daily cycle when they divide a day


def season_of_freq(freq: str | None, time_column: str = "time") -> tuple[int, str]:
    """(season, why) from a pandas frequency string (pd.infer_freq of the time stamps): hourly 24, daily 7,
    business-daily 5, weekly 52, monthly 12, quarterly 4; every k hours or minutes that divide a day, the
    daily cycle; yearly, irregular or other stamps: 1 (no seasonality). `why` is for the log."""
    if freq is None:
        return 1, (f"the time stamps of {time_column!r} are not regular (no frequency): 1, no seasonality; "
                   f"give --season M")
    import pandas as pd

    try:
        off = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return 1, f"frequency {freq!r} of {time_column!r} not understood: 1; give --season M"
    kind, n = type(off).__name__, off.n
    if n == 1 and kind in _SEASONS:
        m, what = _SEASONS[kind]
        return m, f"{what}, from the time stamps of {time_column!r} ({freq})"
    if kind in _PER_DAY and _PER_DAY[kind] % n == 0 and _PER_DAY[kind] // n > 1:
        m = _PER_DAY[kind] // n
        return m, f"every {n} {kind.lower()}s: a daily cycle of {m}, from the time stamps of {time_column!r} ({freq})"
    return 1, (f"{freq} time stamps of {time_column!r} imply no season rnnlab knows: 1, no seasonality; "
               f"give --season M")


_TIME_NAMES = {"date", "time", "timestamp", "datetime", "ds", "day", "week", "month", "period", "year", "dt"}


def _find_time_column(df, column: str | None) -> str | None:
    """The one column that holds time stamps, when the user named none: a text column whose every value is a
    date, or an integer column named like a time (year, ...). None when there is none or more than one."""
    import pandas as pd

    found = []
    for c in df.columns:
        if c == column:
            continue
        v = df[c].dropna()
        if len(v) == 0:
            continue
        if pd.api.types.is_numeric_dtype(v):
            if str(c).strip().lower() in _TIME_NAMES and bool((v % 1 == 0).all()) and v.is_unique:
                found.append(c)
            continue
        if not (pd.api.types.is_object_dtype(v) or pd.api.types.is_string_dtype(v)):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(v.astype(str), errors="coerce")
        if parsed.notna().all():
            found.append(c)
    return found[0] if len(found) == 1 else None


def _read_csv_column(path: Path, column: str | None, time_column: str | None, encoding: str):
    import pandas as pd

    if not path.exists():
        raise DataError(f"{path}: no such file; give a CSV file or builtin:co2 | builtin:sunspots | builtin:airline")
    check_regular(path)
    try:
        df = pd.read_csv(path, encoding=encoding)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as CSV ({str(e).splitlines()[0]})") from None
    if time_column is not None and time_column.lower() != "none" and time_column not in df.columns:
        raise DataError(f"{path}: missing time column {time_column!r} (columns: {', '.join(map(str, df.columns))})")
    found = False
    if time_column is None:
        time_column = _find_time_column(df, column)
        found = time_column is not None
    elif time_column.lower() == "none":  # the rows in file order, no time column looked for
        time_column = None
    if column is None:
        numeric = [c for c in df.columns if c != time_column and pd.api.types.is_numeric_dtype(df[c])]
        if len(numeric) != 1:
            raise DataError(f"{path}: {len(numeric)} numeric columns ({', '.join(map(str, numeric)) or 'none'}); "
                            f"say which to forecast with --column NAME")
        column = numeric[0]
    if column not in df.columns:
        raise DataError(f"{path}: missing column {column!r} (columns: {', '.join(map(str, df.columns))}); "
                        f"name the series with --column")
    s = df[column]
    freq = None
    if time_column is not None:
        try:
            s, freq = _in_time_order(path, df[time_column], s)
        except DataError as e:
            if not found:
                raise
            raise DataError(f"{e} (rnnlab took {time_column!r} for the time column; --time-column none uses the rows "
                            f"in file order)") from None
    else:
        s.index = [str(i) for i in range(len(s))]
    if pd.to_numeric(s, errors="coerce").notna().sum() < s.notna().sum():
        raise DataError(f"{path}: column {column!r} holds values that are not numbers; forecasting needs numbers")
    return s, freq, str(column), time_column


def _lines(rows) -> str:
    """CSV line numbers of data rows 0, 1, ... (the header is line 1), at most 5 shown."""
    rows = [int(r) + 2 for r in rows]
    return ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _in_time_order(path: Path, times, s):
    """The series `s` sorted by its time column `times` (an export need not be in time order), indexed by it:
    dates (with their frequency, when regular) or numbers such as years. A time that is missing, unparsable or
    repeated is a DataError naming its CSV lines: guessing would train on a scrambled or doubled series."""
    import pandas as pd

    name = times.name
    if pd.api.types.is_numeric_dtype(times):
        keys = pd.to_numeric(times, errors="coerce").astype(float)
        bad = ~np.isfinite(keys.to_numpy())
        what = "numbers"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' "could not infer format" advice: our error says more
            keys = pd.to_datetime(times, errors="coerce")
        bad = keys.isna().to_numpy()
        what = "dates"
    if bad.any():
        shown = ", ".join(repr(str(v)) for v in times[bad].head(3))
        raise DataError(f"{path}: time column {name!r} has {int(bad.sum())} value(s) that are not {what}, on line(s) "
                        f"{_lines(np.flatnonzero(bad))} ({shown}); fix them, or drop --time-column to use the rows in "
                        f"file order")
    repeated = keys.duplicated(keep=False).to_numpy()
    if repeated.any():
        first = keys[repeated].iloc[0]
        lines = np.flatnonzero((keys == first).to_numpy())
        raise DataError(f"{path}: time column {name!r} repeats {int(keys[repeated].nunique())} time(s), e.g. "
                        f"{str(times.iloc[lines[0]])!r} on lines {_lines(lines)}; each row needs its own time "
                        f"(aggregate the repeated rows first)")
    order = np.argsort(keys.to_numpy(), kind="stable")
    s = s.iloc[order].copy()
    keys = keys.iloc[order]
    if what == "numbers":
        integral = bool(np.all(np.mod(keys.to_numpy(), 1) == 0))
        s.index = [str(int(k)) if integral else str(k) for k in keys]
        return s, None
    s.index = pd.DatetimeIndex(keys)
    return s, (pd.infer_freq(s.index) if len(s) >= 3 else None)


def split_series(n: int, test: int, val: int, lookback: int, horizon: int, what: str = "the series") -> tuple[int, int]:
    """(val_start, test_start): the training part is [0, val_start), validation [val_start, test_start),
    the held-out tail [test_start, n). Checks that each part is long enough for its windows."""
    if horizon < 1 or lookback < 1:
        raise DataError(f"horizon and lookback must be >= 1, got horizon={horizon}, lookback={lookback}")
    if test < 1 or val < 1:
        raise DataError(f"the test and validation parts need >= 1 value each, got test={test}, val={val}")
    if horizon > test:
        raise DataError(f"the horizon ({horizon}) is longer than the held-out tail ({test} values); lower --horizon "
                        f"or raise --test-size")
    if horizon > val:
        raise DataError(f"the horizon ({horizon}) is longer than the validation part ({val} values); raise --val-size")
    test_start, val_start = n - test, n - test - val
    if val_start - lookback - horizon + 1 < 1:
        raise DataError(f"{what} has {n} values: after the held-out tail ({test}) and validation ({val}) only "
                        f"{max(val_start, 0)} remain for training, fewer than one window of lookback {lookback} + "
                        f"horizon {horizon}; lower --lookback, --test-size or --val-size")
    return val_start, test_start


def rolling_origins(start: int, end: int, horizon: int) -> list[tuple[int, int]]:
    """Forecast origins that cover [start, end) once: (origin, steps scored), every `horizon` steps; the
    last block scores only the steps left."""
    return [(o, min(horizon, end - o)) for o in range(start, end, horizon)]


def mase_scale(train: np.ndarray, season: int) -> float:
    """The in-sample MAE of the seasonal naive forecast (y_t = y_{t-m}) on the training part: MASE's
    denominator (Hyndman & Koehler 2006); m = 1 gives the naive forecast."""
    m = season if len(train) > season else 1
    scale = float(np.mean(np.abs(train[m:] - train[:-m])))
    return scale if scale > 0 else 1.0


@dataclass
class Scaler:
    """z = ((log y if log else y) - mean) / std, with mean and std of the training part only."""

    mean: float
    std: float
    log: bool = False

    @classmethod
    def fit(cls, train: np.ndarray, log: bool = False, what: str = "the series") -> Scaler:
        if log and (train <= 0).any():
            raise DataError(f"{what} has values <= 0; --transform log needs positive values, use --transform none")
        x = np.log(train) if log else train
        std = float(x.std())
        return cls(float(x.mean()), std if std > 1e-12 else 1.0, log)

    def transform(self, y: np.ndarray) -> np.ndarray:
        if self.log and (np.asarray(y) <= 0).any():
            raise DataError("the series has values <= 0 where --transform log needs positive values")
        x = np.log(y) if self.log else np.asarray(y, dtype=np.float64)
        return (x - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        x = np.asarray(z, dtype=np.float64) * self.std + self.mean
        return np.exp(x) if self.log else x

    def to_json(self) -> dict:
        return {"mean": self.mean, "std": self.std, "log": self.log}

    @classmethod
    def from_json(cls, d: dict) -> Scaler:
        """From a checkpoint's state.json: a NaN, an infinity or a zero std here would make every forecast NaN
        silently, so each is refused by name."""
        mean, std, log = d["mean"], d["std"], d["log"]
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in (mean, std))
        if not ok or not std > 0 or not isinstance(log, bool):
            raise DataError(f"scaler: expected a finite mean, a finite std > 0 and log true/false, got mean={mean!r}, "
                            f"std={std!r}, log={log!r}")
        return cls(float(mean), float(std), log)
