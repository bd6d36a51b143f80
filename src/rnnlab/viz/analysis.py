"""What a Recording says about its units: which track a feature of the text, and how saturated the gates are.

Interpretable units (after Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding Recurrent
Networks", section 4.2): hand-made features of the text, one number per character, are correlated with every
unit's cell state and hidden state over the text; a unit's score for a feature is |Pearson r|. A unit that
counts the position in the line, or switches on inside a string, scores near 1.

Features (the value at character t, i.e. after the model has read it):
    column          characters since the last newline (position in the line)
    in_quotes       1 inside a '...' or "..." string (the opening quote included, the closing one not)
    bracket_depth   how many (, [ or { are open
    in_brackets     1 when bracket_depth > 0
    indentation     the number of leading spaces/tabs of the current line
    in_comment      1 from a # outside a string to the end of the line
    newline         1 at a newline character (the model must start a line next)
    line_start      1 in the leading whitespace of a line (indentation is being written)

Gate saturation (the paper's figure 3): for every gate of every layer, per unit, the fraction of steps at
which the gate is left-saturated (< 0.1) and right-saturated (> 0.9). For tanh gates (the LSTM's g, the GRU's
n) the thresholds apply to (1 + v) / 2, i.e. v < -0.8 and v > 0.8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .record import Recording

__all__ = ["FEATURES", "Saturation", "UnitScore", "gate_saturation", "interpretable_units", "text_features"]

FEATURES = ("column", "in_quotes", "bracket_depth", "in_brackets", "indentation", "in_comment", "newline",
            "line_start")
TANH_GATES = {"g", "n"}  # gates in [-1, 1]; the others are sigmoids in [0, 1]
UNBOUNDED = {"h~"}  # the minGRU/minLSTM candidate: no range to saturate against


def text_features(text: str) -> dict[str, np.ndarray]:
    """Every feature of FEATURES, one value per character of `text`, as float arrays (T,)."""
    T = len(text)
    f = {name: np.zeros(T, dtype=np.float64) for name in FEATURES}
    column = indent = depth = 0
    quote = ""          # the open quote character, "" outside strings
    comment, leading = False, True
    for t, ch in enumerate(text):
        if ch == "\n":
            f["column"][t], f["newline"][t] = column, 1
            f["indentation"][t], f["bracket_depth"][t] = indent, depth
            f["in_brackets"][t] = depth > 0
            column, indent, comment, leading = 0, 0, False, True
            if quote in ("'", '"'):
                quote = ""  # a one-line string ends at the line's end
            continue
        if leading and ch in " \t":
            indent += 1
        else:
            leading = False
        f["line_start"][t] = leading
        if quote:
            f["in_quotes"][t] = 1
            if ch == quote:
                quote = ""
                f["in_quotes"][t] = 0
        elif not comment:
            if ch in "'\"":
                quote = ch
                f["in_quotes"][t] = 1
            elif ch == "#":
                comment = True
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth = max(0, depth - 1)
        f["in_comment"][t] = comment
        column += 1
        f["column"][t], f["indentation"][t] = column, indent
        f["bracket_depth"][t], f["in_brackets"][t] = depth, depth > 0
    return f


@dataclass
class UnitScore:
    feature: str
    layer: int
    direction: int
    quantity: str     # "c" or "h"
    unit: int
    r: float          # Pearson correlation (signed); the score is |r|

    @property
    def score(self) -> float:
        return abs(self.r)


def _pearson(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of every column of X (T, N) with y (T,); 0 where either is constant."""
    Xc = X - X.mean(0)
    yc = y - y.mean()
    denom = np.sqrt((Xc**2).sum(0) * (yc**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (Xc * yc[:, None]).sum(0) / denom
    return np.where(denom > 0, r, 0.0)


def interpretable_units(rec: Recording, *, per_feature: int = 3, quantities: tuple[str, ...] = ("c", "h"),
                        features: dict[str, np.ndarray] | None = None) -> list[UnitScore]:
    """The `per_feature` best units for every feature (over all layers, directions and the given states),
    sorted best first; features constant over the text (no quotes in it, say) are left out."""
    features = text_features(rec.text) if features is None else features
    found: list[UnitScore] = []
    for name, y in features.items():
        if np.ptp(y) == 0:
            continue
        cands: list[UnitScore] = []
        for (layer, d), qs in rec.quantities.items():
            for q in quantities:
                if q not in qs:
                    continue
                r = _pearson(qs[q].astype(np.float64), y)
                for u in np.argsort(-np.abs(r))[:per_feature]:
                    cands.append(UnitScore(name, layer, d, q, int(u), float(r[u])))
        cands.sort(key=lambda s: -s.score)
        found += cands[:per_feature]
    found.sort(key=lambda s: -s.score)
    return found


@dataclass
class Saturation:
    layer: int
    direction: int
    gate: str
    left: np.ndarray    # (H,) per unit: fraction of steps with the gate < 0.1
    right: np.ndarray   # (H,) per unit: fraction of steps with the gate > 0.9

    @property
    def left_all(self) -> float:
        return float(self.left.mean())

    @property
    def right_all(self) -> float:
        return float(self.right.mean())


def gate_saturation(rec: Recording, low: float = 0.1, high: float = 0.9) -> list[Saturation]:
    """Per layer, direction and gate: per-unit fractions of left- and right-saturated steps."""
    out = []
    for (layer, d), qs in sorted(rec.quantities.items()):
        for gate in [g for g in rec.gate_names if g not in UNBOUNDED]:
            v = qs[gate]
            if gate in TANH_GATES:
                v = (1 + v) / 2
            out.append(Saturation(layer, d, gate, (v < low).mean(0), (v > high).mean(0)))
    return out
