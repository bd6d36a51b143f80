"""The simple baselines that rnnlab's many-to-one models are measured against, on the exact same split.

    text          TF-IDF of words and word pairs + logistic regression (scikit-learn)
    sequences     logistic regression on the flattened steps when every sequence has the same length
                  (mnist-rows: the 784 pixels), else on fixed-length summaries per feature (mean, std, min,
                  max, first, last) and the length (vowels)
    forecasting   seasonal naive (y_{t+k} = y_{t+k-m}), and Holt-Winters exponential smoothing (statsmodels)
                  refitted on the history before each origin

Logistic regression's C is chosen on the validation split from a small grid, as any careful user would.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from .data import DataError
from .data.series import rolling_origins

__all__ = ["ETS_SETTINGS", "classify_baseline", "ets_forecast", "seasonal_naive_forecast", "sequence_baseline",
           "text_baseline"]

C_GRID = (0.1, 1.0, 10.0)


def _need(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise DataError(f"the baselines need the package {package}; install it with: pip install {package}")


def _fit_best(make, train_X, train_y, val_X, val_y):
    best, best_acc = None, -1.0
    for C in C_GRID:
        clf = make(C).fit(train_X, train_y)
        acc = float((clf.predict(val_X) == val_y).mean())
        if acc > best_acc:
            best, best_acc = clf, acc
    return best


def text_baseline(train: list[str], train_y, val: list[str], val_y, test: list[str]) -> np.ndarray:
    """Predicted classes of `test` by TF-IDF (words and word pairs, sublinear tf) + logistic regression."""
    _need("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    Xtr = vec.fit_transform(train)
    clf = _fit_best(lambda C: LogisticRegression(C=C, max_iter=2000), Xtr, train_y, vec.transform(val), val_y)
    return clf.predict(vec.transform(test))


def _summaries(items: list[np.ndarray], flat: bool) -> np.ndarray:
    if flat:
        return np.stack([a.reshape(-1) for a in items])
    return np.stack([np.concatenate([a.mean(0), a.std(0), a.min(0), a.max(0), a[0], a[-1], [len(a)]])
                     for a in items])


def sequence_baseline(train: list[np.ndarray], train_y, val: list[np.ndarray], val_y,
                      test: list[np.ndarray]) -> tuple[np.ndarray, str]:
    """Predicted classes of `test` by standardised features + logistic regression, and what the features were."""
    _need("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    flat = len({a.shape for a in [*train, *val, *test]}) == 1
    f = lambda items: _summaries(items, flat)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes on the flattened pixels
        clf = _fit_best(lambda C: make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)),
                        f(train), train_y, f(val), val_y)
        pred = clf.predict(f(test))
    return pred, "flattened steps" if flat else "mean/std/min/max/first/last per feature + length"


def classify_baseline(data, train_idx, val_idx, items: list) -> tuple[np.ndarray, str]:
    """Predicted classes of `items` by the baseline for `data`'s kind (a LabelledSequences), trained on the
    rows `train_idx` with C chosen on the rows `val_idx`, and the baseline's name: TF-IDF + logistic regression
    for text, logistic regression on the flattened steps or on per-feature summaries for sequences."""
    pick = lambda idx: [data.items[i] for i in idx]  # noqa: E731
    train, train_y, val, val_y = pick(train_idx), data.targets[train_idx], pick(val_idx), data.targets[val_idx]
    if data.kind == "text":
        return text_baseline(train, train_y, val, val_y, items), "TF-IDF + logistic regression"
    pred, what = sequence_baseline(train, train_y, val, val_y, items)
    return pred, f"logistic regression on {what}"


def seasonal_naive_forecast(values: np.ndarray, start: int, end: int, horizon: int, season: int) -> np.ndarray:
    """values[start:end] forecast from origins every `horizon` steps by repeating the last season."""
    out = []
    for o, n in rolling_origins(start, end, horizon):
        last = values[o - season:o]
        out.append(np.array([last[k % season] for k in range(n)]))
    return np.concatenate(out)


# Holt-Winters settings per built-in series (multiplicative seasonality where the swing grows with the level)
ETS_SETTINGS = {"builtin:airline": dict(trend="add", seasonal="mul"),
                "builtin:co2": dict(trend="add", seasonal="add"),
                "builtin:sunspots": dict(trend=None, seasonal="add")}


def ets_forecast(values: np.ndarray, start: int, end: int, horizon: int, season: int, *,
                 trend: str | None = "add", seasonal: str | None = "add") -> np.ndarray:
    """values[start:end] forecast by Holt-Winters exponential smoothing, refitted on the history before each
    origin (statsmodels ExponentialSmoothing, estimated initial states)."""
    _need("statsmodels")
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    out = []
    for o, n in rolling_origins(start, end, horizon):
        history = values[:o]
        use_season = seasonal if season > 1 and len(history) >= 2 * season else None
        if use_season == "mul" and (history <= 0).any():
            use_season = "add"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels' convergence and frequency notes
            model = ExponentialSmoothing(history, trend=trend, seasonal=use_season,
                                         seasonal_periods=season if use_season else None,
                                         initialization_method="estimated").fit()
            out.append(np.asarray(model.forecast(n)))
    return np.concatenate(out)
