"""The tutorial's figures drawn from a real model's recording (matplotlib; the GIF with Pillow).

unrolled_figure   the network unrolled over a short real input: x_t (the character), h_t (the top units'
                  values), y_t (the top next-character probabilities), with the arrows x_t -> h_t,
                  h_{t-1} -> h_t, h_t -> y_t.
lstm_step_frames  one LSTM step walked through gate by gate, with the recorded vectors of the chosen step:
                  0 the state before, 1 forget f_t and f_t * c_{t-1}, 2 input i_t, 3 candidate g_t,
                  4 cell update c_t = f_t * c_{t-1} + i_t * g_t, 5 output o_t and h_t = o_t * tanh(c_t).
                  Frames as PIL images: save them as PNGs and as an animated GIF (save_gif).

Every number drawn is a recorded one (rnnlab.Trace via Recording); the cell update is only checked against
the recorded c_t, never recomputed for drawing. Colours are the inspect page's (rnnlab.viz.page.color).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from .page import color
from .record import Recording

__all__ = ["lstm_step_frames", "lstm_step_vectors", "save_gif", "top_units", "unrolled_figure"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rgb(value: float, quantity: str) -> tuple[float, float, float]:
    r, g, b = (int(v) for v in re.findall(r"\d+", color(value, quantity)))
    return r / 255, g / 255, b / 255


def _show(ch: str) -> str:
    return {"\n": "\\n", "\t": "\\t", " ": "\u2423"}.get(ch, ch)


def _to_image(fig):
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    _plt().close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def top_units(values: np.ndarray, k: int) -> list[int]:
    """The k units (columns of values (T, H)) with the largest mean |value|, in index order; all if H <= k."""
    H = values.shape[1]
    if H <= k:
        return list(range(H))
    return sorted(np.argsort(-np.abs(values).mean(0))[:k].tolist())


def _strip(ax, x0: float, y0: float, values, quantity: str, *, w: float = 0.9, h: float = 0.42,
           alpha: float = 1.0, fmt: str = "{:+.2f}") -> None:
    """A row of boxes at (x0, y0), one per value, coloured and labelled with the value."""
    from matplotlib.patches import Rectangle

    for k, v in enumerate(values):
        ax.add_patch(Rectangle((x0 + k * w, y0), w * 0.96, h, facecolor=_rgb(float(v), quantity), edgecolor="#666",
                               lw=0.5, alpha=alpha))
        ax.text(x0 + k * w + w * 0.48, y0 + h / 2, fmt.format(float(v)), ha="center", va="center", fontsize=7,
                alpha=alpha)


def unrolled_figure(rec: Recording, path: str | Path | None = None, *, steps: int = 3, units: int = 6,
                    layer: int = 0):
    """The network unrolled over the first `steps` characters of the recording; returns the PIL image
    (and writes a PNG when `path` is given)."""
    plt = _plt()
    steps = min(steps, len(rec.text))
    h = rec.quantities[layer, 0]["h"][:steps]
    shown = top_units(h, units)
    U = len(shown)
    colw = U * 0.9 + 1.6
    fig, ax = plt.subplots(figsize=(max(6.0, steps * colw * 0.72 + 1.5), 4.6))
    ax.set_xlim(-1.3, steps * colw)
    ax.set_ylim(-0.4, 5.2)
    ax.axis("off")
    arrow = dict(arrowstyle="->", color="#444", lw=1.2)
    for t in range(steps):
        x0 = t * colw
        ax.text(x0 + U * 0.45, 0.15, f"x_{t} = '{_show(rec.text[t])}'", ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round", fc="#eef3ff", ec="#88a"))
        ax.annotate("", xy=(x0 + U * 0.45, 1.75), xytext=(x0 + U * 0.45, 0.45), arrowprops=arrow)
        ax.text(x0 - 0.1, 2.25, f"h_{t}", ha="right", va="center", fontsize=10)
        _strip(ax, x0, 1.95, h[t, shown], "h", h=0.55)
        for k, u in enumerate(shown):
            ax.text(x0 + k * 0.9 + 0.43, 1.82, str(u), ha="center", va="top", fontsize=5.5, color="#777")
        if t > 0:
            ax.annotate("", xy=(x0 - 0.55, 2.22), xytext=(x0 - colw + U * 0.9 + 0.05, 2.22), arrowprops=arrow)
            ax.text(x0 - 0.9, 2.42, "W_hh", ha="center", fontsize=7, color="#444")
        ax.annotate("", xy=(x0 + U * 0.45, 3.35), xytext=(x0 + U * 0.45, 2.6), arrowprops=arrow)
        if rec.top_ids is not None:
            lines = [f"'{_show(rec.chars[i])}' {p:.2f}" for i, p in zip(rec.top_ids[t][:3], rec.top_probs[t][:3])]
            ax.text(x0 + U * 0.45, 3.95, f"y_{t}: next char\n" + "\n".join(lines), ha="center", va="center",
                    fontsize=8.5, bbox=dict(boxstyle="round", fc="#f3fff0", ec="#8a8"))
    which = "all units" if U == h.shape[1] else f"the {U} units of largest mean |h| (of {h.shape[1]})"
    ax.set_title(f"The network unrolled over '{''.join(_show(c) for c in rec.text[:steps])}': real values of "
                 f"layer {layer}, {which}", fontsize=10)
    image = _to_image(fig)
    if path is not None:
        image.save(path)
    return image


def lstm_step_vectors(rec: Recording, t: int, layer: int = 0, direction: int = 0) -> dict[str, np.ndarray]:
    """The recorded vectors of LSTM step t: h_prev, c_prev (zeros at t = 0), i, f, g, o, c, h (each (H,)).

    Checks that c_t = f_t * c_{t-1} + i_t * g_t holds for the recorded values (it must, on every backend)."""
    if rec.cell != "lstm":
        raise ValueError(f"the gate-by-gate step is an LSTM's; this model is a {rec.cell.upper()}")
    if not 0 <= t < len(rec.text):
        raise ValueError(f"step {t} is outside the text (0..{len(rec.text) - 1})")
    q = rec.quantities[layer, direction]
    H = q["c"].shape[1]
    v = {"c_prev": q["c"][t - 1] if t > 0 else np.zeros(H, np.float32),
         "h_prev": q["h"][t - 1] if t > 0 else np.zeros(q["h"].shape[1], np.float32),
         "i": q["i"][t], "g": q["g"][t], "o": q["o"][t], "c": q["c"][t], "h": q["h"][t]}
    v["f"] = q["f"][t] if "f" in q else 1.0 - q["i"][t]  # coupled input-forget gate: f = 1 - i
    err = float(np.abs(v["f"] * v["c_prev"] + v["i"] * v["g"] - v["c"]).max())
    if err > 1e-3 * max(1.0, float(np.abs(v["c"]).max())):
        raise ValueError(f"the recording is inconsistent: c_t differs from f*c_(t-1) + i*g by {err:.2e}")
    return v


FRAMES = [
    ("before the step", "x_t arrives; the state (h_{t-1}, c_{t-1}) carries the past", ["h_prev", "c_prev"]),
    ("1 forget", "f_t = sigmoid(W_f x_t + U_f h_{t-1} + b_f):  how much of c_{t-1} to keep", ["f", "fc"]),
    ("2 input", "i_t = sigmoid(W_i x_t + U_i h_{t-1} + b_i):  how much to write", ["i"]),
    ("3 candidate", "g_t = tanh(W_g x_t + U_g h_{t-1} + b_g):  what to write", ["g", "ig"]),
    ("4 cell update", "c_t = f_t * c_{t-1} + i_t * g_t", ["c"]),
    ("5 output", "o_t = sigmoid(W_o x_t + U_o h_{t-1} + b_o);   h_t = o_t * tanh(c_t)", ["o", "h"]),
]
ROWS = [("h_prev", "h_{t-1}", "h"), ("c_prev", "c_{t-1}", "c"), ("f", "f_t", "f"), ("fc", "f_t * c_{t-1}", "c"),
        ("i", "i_t", "i"), ("g", "g_t", "g"), ("ig", "i_t * g_t", "c"), ("c", "c_t", "c"), ("o", "o_t", "o"),
        ("h", "h_t", "h")]


def lstm_step_frames(rec: Recording, t: int, *, units: int = 8, layer: int = 0, direction: int = 0) -> list:
    """Six PIL images walking LSTM step t gate by gate (see FRAMES); the units shown are the `units` whose
    cell state changed most at this step (all of them for a small model)."""
    plt = _plt()
    v = lstm_step_vectors(rec, t, layer, direction)
    v["fc"], v["ig"] = v["f"] * v["c_prev"], v["i"] * v["g"]
    change = np.abs(v["c"] - v["c_prev"])[None, :]
    shown = top_units(change, units)
    R = len(rec.quantities[layer, direction]["h"][0])
    if R != len(v["c"]):  # projection: h has R < H features; show h's first units by magnitude instead
        shown_h = top_units(np.abs(v["h"])[None, :], min(units, R))
    else:
        shown_h = shown
    images = []
    done: set[str] = set()
    context = (f"'{_show(rec.text[t - 1])}' -> " if t > 0 else "") + f"x_{t} = '{_show(rec.text[t])}'"
    for k, (name, equation, rows) in enumerate(FRAMES):
        done |= set(rows)
        fig, ax = plt.subplots(figsize=(1.6 + 0.9 * len(shown), 6.4))
        ax.set_xlim(-2.2, 0.9 * len(shown) + 0.2)
        ax.set_ylim(-0.6, len(ROWS) * 0.6 + 0.3)
        ax.axis("off")
        for r, (key, label, quantity) in enumerate(ROWS):
            y = (len(ROWS) - 1 - r) * 0.6
            active = key in rows
            visible = key in done
            ax.text(-0.15, y + 0.21, label, ha="right", va="center", fontsize=9,
                    fontweight="bold" if active else "normal", color="#000" if visible else "#bbb")
            idx = shown_h if key in ("h", "h_prev") else shown
            if visible:
                _strip(ax, 0, y, v[key][idx], quantity, alpha=1.0 if active else 0.45)
        for j, u in enumerate(shown):
            ax.text(j * 0.9 + 0.43, -0.35, str(u), ha="center", fontsize=6, color="#777")
        ax.text(-2.2, -0.5, "unit", fontsize=6, color="#777")
        ax.set_title(f"LSTM step t={t} ({context}), layer {layer}\n{name}: {equation}", fontsize=8.5)
        images.append(_to_image(fig))
    return images


def save_gif(images: list, path: str | Path, ms: int = 1400) -> None:
    """An animated GIF of the frames, looping, each shown `ms` milliseconds (the last one twice as long)."""
    size = (max(i.width for i in images), max(i.height for i in images))
    frames = [i if i.size == size else i.resize(size) for i in images]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[ms] * (len(frames) - 1) + [2 * ms],
                   loop=0)
