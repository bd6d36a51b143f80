"""Many series in one table (long format) for one global forecaster: a series id, a time, a value, and
optionally past-only covariates, one row per (series, time).

    builtin:macro     US macroeconomic quarterly series, 1959Q1-2009Q3, 12 columns of statsmodels' macrodata
                      as 12 series of 203 values (GDP, consumption, investment, ..., inflation, real interest)
    builtin:grunfeld  Grunfeld's investment panel: 11 US firms x 20 years (1935-1954) of gross investment, with
                      the firm's market value and capital stock as past covariates (statsmodels)
    PATH.csv          id,time,value[,covariates]: --id-column (found when exactly one text column makes every
                      (id, time) pair unique while the time column repeats), --time-column, --column,
                      --past-covariates a,b

Each series keeps its own length and start: it is sorted by time, put on the regular grid of the panel's
frequency (gaps become missing values), its missing values at either end trimmed (a series starts at its
first observation) and those inside handled by the --missing policy. Series too short for one training
window after their validation and held-out parts are left out and named.

Known future covariates are calendar features of the time stamps, chosen by the frequency (sin and cos of the
position in each cycle): quarter of the year for quarterly data, month for monthly, week of the year for
weekly, day of the week and month for daily, hour of the day and day of the week for hourly. Yearly stamps and
plain numbers have none.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .corpora import BUILTIN_PREFIX
from .errors import DataError, check_regular
from .series import MISSING, _lines, season_of_freq

__all__ = ["PANEL_BUILTINS", "Panel", "calendar_features", "calendar_fields", "find_id_column", "future_times",
           "load_panel", "panel_wanted"]


@dataclass
class Panel:
    ids: list[str]                    # (S,) series names, sorted
    values: list[np.ndarray]          # per series (N_s,) float64, missing values handled
    index: list[list[str]]            # per series (N_s,) time stamps as text
    past: list[np.ndarray]            # per series (N_s, P) past-only covariates (missing ones interpolated)
    past_names: list[str]             # (P,)
    freq: str | None                  # pandas frequency of the time stamps (None: years or steps)
    calendar: tuple[str, ...]         # calendar fields of the known covariates (calendar_fields(freq))
    season: int
    season_from: str
    name: str                         # the value column
    source: str
    id_column: str
    time_column: str | None
    missing: int                      # missing values inside the series (after trimming their ends)
    missing_policy: str = "interpolate"
    notes: list[str] = field(default_factory=list)  # what was done to the data, for the log


# --- built-in panels --------------------------------------------------------------------------------------

MACRO_SERIES = ("realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "tbilrate", "unemp", "pop",
                "infl", "realint")


def _macro():
    """statsmodels' macrodata (quarterly, seasonally adjusted) as 12 series in long format."""
    import pandas as pd
    import statsmodels.api as sm

    d = sm.datasets.macrodata.load_pandas().data
    time = pd.PeriodIndex.from_fields(year=d["year"].astype(int), quarter=d["quarter"].astype(int), freq="Q")
    time = time.to_timestamp(how="end").normalize()
    wide = d[list(MACRO_SERIES)].set_index(time)
    long = wide.rename_axis("quarter").reset_index().melt(id_vars="quarter", var_name="series", value_name="value")
    return long, "series", "quarter", "value", ()


def _grunfeld():
    """Grunfeld (1958): gross investment of 11 firms, 1935-1954, with market value and capital stock."""
    import statsmodels.api as sm

    d = sm.datasets.grunfeld.load_pandas().data.copy()
    d["year"] = d["year"].astype(int)
    return d, "firm", "year", "invest", ("value", "capital")


# name -> (loader, the package it needs, its id column)
PANEL_BUILTINS = {"macro": (_macro, "statsmodels", "series"), "grunfeld": (_grunfeld, "statsmodels", "firm")}


# --- calendar features (known future covariates) -----------------------------------------------------------

_CALENDAR = {"Hour": ("hour", "dayofweek"), "Minute": ("hour", "dayofweek"), "Day": ("dayofweek", "month"),
             "BusinessDay": ("dayofweek", "month"), "Week": ("week",), "MonthBegin": ("month",),
             "MonthEnd": ("month",), "SemiMonthBegin": ("month",), "SemiMonthEnd": ("month",),
             "QuarterBegin": ("quarter",), "QuarterEnd": ("quarter",)}
_PERIOD = {"hour": 24, "dayofweek": 7, "week": 52, "month": 12, "quarter": 4}


def calendar_fields(freq: str | None) -> tuple[str, ...]:
    """The calendar fields that vary within a year at frequency `freq` (none for yearly stamps or numbers)."""
    if not freq:
        return ()
    import pandas as pd

    try:
        kind = type(pd.tseries.frequencies.to_offset(freq)).__name__
    except ValueError:
        return ()
    return _CALENDAR.get(kind, ())


def calendar_features(times, fields: tuple[str, ...]) -> np.ndarray:
    """(N, 2 x len(fields)): sin and cos of each field's position in its cycle, for time stamps `times`."""
    import pandas as pd

    if not fields:
        return np.zeros((len(times), 0))
    t = pd.DatetimeIndex(times)
    cols = []
    for f in fields:
        pos = {"hour": t.hour, "dayofweek": t.dayofweek, "month": t.month - 1, "quarter": t.quarter - 1,
               "week": np.asarray(t.isocalendar().week, dtype=np.int64) - 1}[f]
        angle = 2 * np.pi * np.asarray(pos, dtype=np.float64) / _PERIOD[f]
        cols += [np.sin(angle), np.cos(angle)]
    return np.stack(cols, axis=1)


def future_times(last: str, freq: str | None, steps: int) -> list[str]:
    """`steps` time stamps after `last`: dates at `freq`, else the next integers (years, steps)."""
    if freq:
        import pandas as pd

        try:
            return [str(t.date()) for t in pd.date_range(pd.Timestamp(last), periods=steps + 1, freq=freq)[1:]]
        except (ValueError, TypeError):
            pass
    if last.lstrip("-").isdigit():
        return [str(int(last) + k) for k in range(1, steps + 1)]
    return [f"+{k}" for k in range(1, steps + 1)]


# --- finding the columns -------------------------------------------------------------------------------------

_TIME_NAMES = {"date", "time", "timestamp", "datetime", "ds", "day", "week", "month", "quarter", "period", "year",
               "dt"}
_ID_NAMES = {"id", "series", "series_id", "unique_id", "item_id", "item", "key", "group", "store", "firm", "sku"}


def _is_text(v) -> bool:
    import pandas as pd

    return pd.api.types.is_object_dtype(v) or pd.api.types.is_string_dtype(v)


def _all_dates(v) -> bool:
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(pd.to_datetime(v.astype(str), errors="coerce").notna().all())


def _time_candidates(df, exclude: set) -> list[str]:
    """Columns that look like time stamps: text columns whose every value is a date, or integer columns named
    like a time. Unlike one series' time column, a long table repeats each time once per series."""
    import pandas as pd

    found = []
    for c in df.columns:
        v = df[c].dropna()
        if c in exclude or len(v) == 0:
            continue
        if pd.api.types.is_numeric_dtype(v):
            if str(c).strip().lower() in _TIME_NAMES and bool((v % 1 == 0).all()):
                found.append(c)
        elif _is_text(v) and _all_dates(v):
            found.append(c)
    return found


def _id_candidates(df, time_column: str | None) -> list[str]:
    """Columns that could name the series: text columns that are not dates, and integer columns named like an
    id, each with at least two values."""
    import pandas as pd

    out = []
    for c in df.columns:
        v = df[c].dropna()
        if c == time_column or len(v) == 0 or v.nunique() < 2:
            continue
        if _is_text(v) and not _all_dates(v):
            out.append(c)
        elif pd.api.types.is_integer_dtype(v) and str(c).strip().lower() in _ID_NAMES:
            out.append(c)
    return out


def find_id_column(df, time_column: str | None = None) -> tuple[str | None, list[str]]:
    """(the series-id column, the candidates): found only when unambiguous: the time column (named, or the one
    found) repeats, and exactly one candidate column makes every (id, time) pair unique. Otherwise (None, the
    candidates), and the user names it with --id-column."""
    if time_column is None:
        times = _time_candidates(df, set())
        if len(times) != 1:
            return None, []
        time_column = times[0]
    if time_column not in df.columns or not df[time_column].duplicated().any():
        return None, []  # one row per time: a single series
    candidates = _id_candidates(df, time_column)
    fits = [c for c in candidates if not df.duplicated([c, time_column]).any()]
    return (fits[0] if len(fits) == 1 else None), candidates


def panel_wanted(data: str, id_column: str | None, time_column: str | None = None,
                 encoding: str = "utf-8") -> str | None:
    """The series-id column when `data` holds many series (a built-in panel, --id-column given, or a CSV whose id
    column is found), else None (one series, the single-series path). A CSV whose time stamps repeat and whose id
    column could be one of several is a DataError asking for --id-column."""
    if data.startswith(BUILTIN_PREFIX):
        name = data[len(BUILTIN_PREFIX):]
        return PANEL_BUILTINS[name][2] if name in PANEL_BUILTINS else None
    if id_column is not None:
        return None if id_column.lower() == "none" else id_column
    path = Path(data)
    if path.suffix.lower() not in (".csv", ".txt", ".tsv") or not path.is_file():
        return None
    import pandas as pd

    try:
        df = pd.read_csv(path, encoding=encoding)
    except (ValueError, UnicodeDecodeError, OSError):
        return None  # the single-series reader says what is wrong with the file
    tc = None if time_column is None or time_column.lower() == "none" else time_column
    found, candidates = find_id_column(df, tc)
    if found is None and len(candidates) > 1:
        raise DataError(f"{path}: the time stamps repeat, so the file holds many series, but {len(candidates)} "
                        f"columns could name them ({', '.join(map(str, candidates))}); say which with --id-column "
                        f"NAME")
    return found


# --- reading ---------------------------------------------------------------------------------------------------

def load_panel(data: str, column: str | None = None, time_column: str | None = None, id_column: str | None = None,
               past_covariates: str | None = None, *, missing: str = "interpolate", season: int | None = None,
               encoding: str = "utf-8") -> Panel:
    """A built-in panel or a long-format CSV, every series on its own time grid, missing values handled."""
    if missing not in MISSING:
        raise DataError(f"unknown missing-value policy {missing!r}; expected one of {', '.join(MISSING)}")
    if importlib.util.find_spec("pandas") is None:
        raise DataError("forecasting needs the package pandas; install it with: pip install pandas")
    import pandas as pd

    past = [c.strip() for c in past_covariates.split(",") if c.strip()] if past_covariates else []
    if data.startswith(BUILTIN_PREFIX):
        name = data[len(BUILTIN_PREFIX):]
        if name not in PANEL_BUILTINS:
            raise DataError(f"unknown built-in panel {data!r}; expected one of "
                            f"{', '.join(BUILTIN_PREFIX + n for n in PANEL_BUILTINS)}")
        loader, package, _ = PANEL_BUILTINS[name]
        if importlib.util.find_spec(package) is None:
            raise DataError(f"{data} needs the package {package}; install it with: pip install {package}")
        df, own_id, own_time, own_value, own_past = loader()
        id_column = own_id if id_column in (None, own_id) else id_column
        time_column = time_column or own_time
        column = column or own_value
        past = past if past_covariates is not None else list(own_past)
        where = data
    else:
        path = Path(data)
        if not path.exists():
            raise DataError(f"{path}: no such file; give a CSV file in long format (id, time, value) or "
                            f"{' | '.join(BUILTIN_PREFIX + n for n in PANEL_BUILTINS)}")
        check_regular(path)
        try:
            df = pd.read_csv(path, encoding=encoding)
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: cannot be read as CSV ({str(e).splitlines()[0]})") from None
        where = str(path)
    cols = ", ".join(map(str, df.columns))
    if time_column is not None and time_column.lower() == "none":
        raise DataError(f"{where}: many series need a time column to line them up; name it with --time-column NAME")
    if id_column is None:
        id_column, candidates = find_id_column(df, time_column)
        if id_column is None and len(candidates) == 1:  # the only one: its repeated (id, time) rows get named below
            id_column = candidates[0]
        if id_column is None:
            shown = ", ".join(map(str, candidates)) or "none"
            raise DataError(f"{where}: no series-id column found (candidates: {shown}); name it with --id-column NAME "
                            f"(columns: {cols})")
    if id_column not in df.columns:
        raise DataError(f"{where}: no id column {id_column!r} (columns: {cols}); name the column that says which "
                        f"series a row belongs to with --id-column NAME")
    if time_column is None:
        times = _time_candidates(df, {id_column, column})
        if len(times) != 1:
            raise DataError(f"{where}: {'no' if not times else len(times)} time column(s) found"
                            f"{' (' + ', '.join(times) + ')' if times else ''}; name it with --time-column NAME "
                            f"(columns: {cols})")
        time_column = times[0]
    if time_column not in df.columns:
        raise DataError(f"{where}: missing time column {time_column!r} (columns: {cols}); name it with --time-column")
    for c in past:
        if c not in df.columns:
            raise DataError(f"{where}: no past covariate column {c!r} (columns: {cols}); fix --past-covariates")
        if c in (id_column, time_column, column):
            raise DataError(f"{where}: {c!r} is the id, time or value column, not a covariate; fix --past-covariates")
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise DataError(f"{where}: past covariate {c!r} holds values that are not numbers")
    if column is None:
        numeric = [c for c in df.columns if c not in (id_column, time_column, *past)
                   and pd.api.types.is_numeric_dtype(df[c])]
        if len(numeric) != 1:
            raise DataError(f"{where}: {len(numeric)} numeric columns ({', '.join(map(str, numeric)) or 'none'}) "
                            f"could be the value; say which to forecast with --column NAME (others can be "
                            f"--past-covariates a,b)")
        column = numeric[0]
    if column not in df.columns:
        raise DataError(f"{where}: missing column {column!r} (columns: {cols}); name the values with --column")
    if pd.to_numeric(df[column], errors="coerce").notna().sum() < df[column].notna().sum():
        raise DataError(f"{where}: column {column!r} holds values that are not numbers; forecasting needs numbers")
    if df[id_column].isna().any():
        rows = np.flatnonzero(df[id_column].isna().to_numpy())
        raise DataError(f"{where}: id column {id_column!r} is empty on line(s) {_lines(rows)}; every row needs its "
                        f"series' id")
    return _assemble(df, where, data, id_column, time_column, column, past, missing, season)


def _parse_times(where: str, times):
    """Dates (DatetimeIndex-like) or numbers; a value that is neither is a DataError naming its lines."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(times):
        keys = pd.to_numeric(times, errors="coerce").astype(float)
        bad, what = ~np.isfinite(keys.to_numpy()), "numbers"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keys = pd.to_datetime(times, errors="coerce")
        bad, what = keys.isna().to_numpy(), "dates"
    if bad.any():
        shown = ", ".join(repr(str(v)) for v in times[bad].head(3))
        raise DataError(f"{where}: time column {times.name!r} has {int(bad.sum())} value(s) that are not {what}, on "
                        f"line(s) {_lines(np.flatnonzero(bad))} ({shown}); fix them")
    return keys, what == "dates"


def _assemble(df, where, source, id_column, time_column, column, past, missing, season) -> Panel:
    import pandas as pd

    keys, dates = _parse_times(where, df[time_column])
    df = df.assign(_t=keys.to_numpy(), _id=df[id_column].astype(str))
    repeated = df.duplicated(["_id", "_t"], keep=False).to_numpy()
    if repeated.any():
        first = df[repeated].iloc[0]
        lines = np.flatnonzero(((df["_id"] == first["_id"]) & (df["_t"] == first["_t"])).to_numpy())
        raise DataError(f"{where}: series {first['_id']!r} repeats the time {str(df[time_column].iloc[lines[0]])!r} "
                        f"on lines {_lines(lines)}; each (id, time) needs one row (aggregate the repeated rows, or "
                        f"check --id-column)")
    groups = {k: g.sort_values("_t", kind="stable") for k, g in df.groupby("_id", sort=True)}
    freq = None
    if dates:  # the panel's frequency: the one most series' stamps follow
        found = Counter(pd.infer_freq(pd.DatetimeIndex(g["_t"])) for g in groups.values() if len(g) >= 3)
        found.pop(None, None)
        freq = found.most_common(1)[0][0] if found else None
    notes, n_missing = [], 0
    ids, values, index, covs = [], [], [], []
    for k, g in groups.items():
        y = pd.to_numeric(g[column], errors="coerce").to_numpy(dtype=np.float64)
        x = np.array(g[past].to_numpy(dtype=np.float64)) if past else np.zeros((len(g), 0))
        t = g["_t"]
        if freq is not None:  # on the regular grid: a missing time stamp becomes a missing value
            grid = pd.date_range(t.iloc[0], t.iloc[-1], freq=freq)
            off = ~pd.DatetimeIndex(t).isin(grid)
            if off.any():
                raise DataError(f"{where}: series {k!r} has time stamps off the panel's {freq} grid (e.g. "
                                f"{str(t[off].iloc[0].date())}); give every series the same frequency")
            pos = grid.get_indexer(pd.DatetimeIndex(t))
            y2, x2 = np.full(len(grid), np.nan), np.full((len(grid), x.shape[1]), np.nan)
            y2[pos], x2[pos] = y, x
            y, x, stamps = y2, x2, [str(s.date()) for s in grid]
        elif dates:
            stamps = [str(s.date()) for s in t]
        else:
            integral = bool(np.all(np.mod(t.to_numpy(), 1) == 0))
            stamps = [str(int(s)) if integral else str(s) for s in t]
        if np.isinf(y).any() or np.isinf(x).any():
            raise DataError(f"{where}: series {k!r} holds infinite values; replace them before forecasting")
        seen = np.flatnonzero(~np.isnan(y))
        if len(seen) == 0:
            notes.append(f"series {k!r} has no values: left out")
            continue
        a, b = seen[0], seen[-1] + 1  # a series starts at its first observation and ends at its last
        y, x, stamps = y[a:b], x[a:b], stamps[a:b]
        gaps = int(np.isnan(y).sum())
        n_missing += gaps
        if gaps and missing == "error":
            raise DataError(f"{where}: series {k!r} has {gaps} missing value(s) (the first at "
                            f"{stamps[int(np.flatnonzero(np.isnan(y))[0])]}); choose --missing interpolate or drop")
        if gaps and missing == "drop":
            keep = ~np.isnan(y)
            y, x, stamps = y[keep], x[keep], [s for s, kk in zip(stamps, keep) if kk]
        elif gaps:
            y = pd.Series(y).interpolate(method="linear", limit_direction="both").to_numpy()
        for j, name in enumerate(past):  # a covariate is read, never forecast: fill its gaps from its neighbours
            col = x[:, j]
            if np.isnan(col).all():
                raise DataError(f"{where}: past covariate {name!r} is empty for series {k!r}; drop it from "
                                f"--past-covariates or fill it")
            x[:, j] = pd.Series(col).interpolate(method="linear", limit_direction="both").to_numpy()
        ids.append(k)
        values.append(y)
        index.append(stamps)
        covs.append(x)
    if not ids:
        raise DataError(f"{where}: no series holds any value")
    if len(ids) < 2:
        notes.append(f"only one series ({ids[0]!r}); --id-column none trains the single-series forecaster")
    if dates:
        m, season_from = season_of_freq(freq, time_column)
    else:
        m, season_from = 1, f"the time column {time_column!r} holds numbers (years or steps): 1, no seasonality"
    if season is not None:
        if season < 1:
            raise DataError(f"season must be >= 1 (1: no seasonality), got {season}")
        m, season_from = season, "--season"
    return Panel(ids, values, index, covs, list(past), freq, calendar_fields(freq) if dates else (), m, season_from,
                 str(column), source, str(id_column), str(time_column), n_missing, missing, notes)
