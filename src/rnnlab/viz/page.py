"""The inspect page: one self-contained HTML file (inline CSS and JS, the data as embedded JSON, no network).

    the text, each character's background coloured by the chosen unit's chosen quantity at that step
    selectors: layer, direction, quantity (c, h, each gate), unit; hover: every quantity of the unit at
    that step and the model's top next-character predictions
    the most interpretable units (rnnlab.viz.analysis), click one to show it
    gate saturation per layer and gate: table and per-unit scatter (inline SVG), as Karpathy et al. 2015

Colours: a value is mapped to s in [-1, 1] (sigmoid gates: 2v - 1; h and tanh gates: v; c: tanh(c), as in the
paper), then white -> red for s > 0 and white -> blue for s < 0. `color` below and the page's script
implement the same map; the first view is coloured here, so the page reads without JavaScript.

Data size: states are stored as 16-bit and gates (bounded) as 8-bit integers over each quantity's range,
base64-encoded, a unit's steps contiguous: about T * H * 6 bytes per LSTM layer.
"""

from __future__ import annotations

import base64
import html
import json
import math

import numpy as np

from .analysis import Saturation, UnitScore, gate_saturation, interpretable_units
from .record import Recording

__all__ = ["color", "render_page", "unit_signal"]

SIGMOID_GATES = {"i", "f", "o", "r", "z"}
LABELS = {"c": "cell state c", "h": "hidden state h", "i": "input gate i", "f": "forget gate f",
          "g": "candidate g", "o": "output gate o", "r": "reset gate r", "z": "update gate z",
          "n": "candidate n", "h~": "candidate h~"}


def unit_signal(value: float, quantity: str) -> float:
    """The value of `quantity` mapped to [-1, 1] for colouring."""
    if quantity in SIGMOID_GATES:
        return 2.0 * value - 1.0
    if quantity == "c":
        return math.tanh(value)
    return max(-1.0, min(1.0, value))


def color(value: float, quantity: str) -> str:
    """CSS colour of one character: white at 0, red for positive, blue for negative signals."""
    s = unit_signal(value, quantity)
    a = abs(s)
    light = math.floor(255 * (1 - 0.75 * a) + 0.5)
    if s >= 0:
        return f"rgb(255,{light},{light})"
    return f"rgb({light},{math.floor(255 * (1 - 0.45 * a) + 0.5)},255)"


def _encode(v: np.ndarray, quantity: str) -> dict:
    """(T, H) float -> {lo, hi, bits, data}: unit-major integers over [lo, hi], base64."""
    bits = 16 if quantity in ("c", "h") else 8
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo + 1e-6
    levels = (1 << bits) - 1
    q = np.rint((v.T.astype(np.float64) - lo) / (hi - lo) * levels)  # (H, T)
    q = q.astype("<u2" if bits == 16 else "u1")
    return {"lo": lo, "hi": hi, "bits": bits, "data": base64.b64encode(q.tobytes()).decode("ascii")}


def _char_html(ch: str) -> str:
    if ch == "\n":
        return '<span class="nl">\u21b5</span>\n'
    if ch == "\t":
        return "\u2192   "
    return html.escape(ch)


def _saturation_svg(sats: list[Saturation], gate: str, size: int = 180) -> str:
    """One panel: every unit of every layer-direction as a dot at (left fraction, right fraction)."""
    pad = 28
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    parts = [f'<svg class="sat" width="{size + pad + 8}" height="{size + pad + 8}" '
             f'viewBox="0 0 {size + pad + 8} {size + pad + 8}" role="img" aria-label="saturation of gate {gate}">',
             f'<rect x="{pad}" y="4" width="{size}" height="{size}" fill="#fafafa" stroke="#999"/>',
             f'<line x1="{pad}" y1="{4 + size}" x2="{pad + size}" y2="4" stroke="#ddd"/>',
             f'<text x="{pad + size / 2}" y="{size + pad + 4}" text-anchor="middle">left-saturated (&lt; 0.1)</text>',
             f'<text x="10" y="{4 + size / 2}" text-anchor="middle" transform="rotate(-90 10 {4 + size / 2})">'
             f'right-saturated (&gt; 0.9)</text>',
             f'<text x="{pad + 4}" y="16" font-weight="bold">{html.escape(gate)}</text>']
    for k, s in enumerate(sats):
        col = palette[k % len(palette)]
        for u, (x, y) in enumerate(zip(s.left, s.right)):
            parts.append(f'<circle cx="{pad + x * size:.1f}" cy="{4 + size - y * size:.1f}" r="2.2" fill="{col}" '
                         f'fill-opacity="0.6"><title>layer {s.layer} dir {s.direction} unit {u}: '
                         f'{x:.2f} left, {y:.2f} right</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def render_page(rec: Recording, *, units: list[UnitScore] | None = None, layer: int = 0, direction: int = 0,
                quantity: str | None = None, unit: int | None = None, title: str = "rnnlab inspect") -> str:
    """The whole page as a string. The first view shows (layer, direction, quantity, unit); by default the
    cell state (h for GRU/RNN) of the most interpretable unit."""
    units = interpretable_units(rec) if units is None else units
    sats = gate_saturation(rec)
    if quantity is None:
        quantity = "c" if "c" in rec.names else "h"
    if unit is None:
        best = [u for u in units if u.layer == layer and u.direction == direction and u.quantity == quantity]
        unit = best[0].unit if best else 0
    key = (layer, direction)
    if key not in rec.quantities or quantity not in rec.quantities[key]:
        raise ValueError(f"inspect: no {quantity!r} recorded for layer {layer}, direction {direction}")
    series = rec.quantities[key][quantity][:, unit]

    chars = list(rec.text)
    spans = "".join(f'<span data-t="{t}" style="background:{color(float(series[t]), quantity)}">'
                    f"{_char_html(ch)}</span>" for t, ch in enumerate(chars))
    data = {
        "chars": chars, "cell": rec.cell, "names": rec.names, "labels": LABELS,
        "keys": [list(k) for k in rec.keys],
        "hidden": {f"{l},{d}": int(next(iter(q.values())).shape[1]) for (l, d), q in rec.quantities.items()},
        "q": {f"{l},{d}": {n: _encode(v, n) for n, v in q.items()} for (l, d), q in rec.quantities.items()},
        "vocab": rec.chars,
        "top_ids": rec.top_ids.tolist() if rec.top_ids is not None else None,
        "top_probs": np.round(rec.top_probs, 4).tolist() if rec.top_probs is not None else None,
        "next_prob": [None if not np.isfinite(p) else round(float(p), 4) for p in rec.next_prob]
        if rec.next_prob is not None else None,
        "initial": {"layer": layer, "direction": direction, "quantity": quantity, "unit": int(unit)},
    }
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=True).replace("</", "<\\/")

    rows = "".join(
        f'<tr class="pick" data-layer="{u.layer}" data-direction="{u.direction}" data-quantity="{u.quantity}" '
        f'data-unit="{u.unit}"><td>{html.escape(u.feature)}</td><td>{u.layer}</td><td>{u.direction}</td>'
        f"<td>{u.quantity}</td><td>{u.unit}</td><td>{u.r:+.3f}</td><td>{u.score:.3f}</td></tr>"
        for u in units
    )
    sat_rows = "".join(
        f"<tr><td>{s.layer}</td><td>{s.direction}</td><td>{s.gate}</td><td>{s.left_all:.3f}</td>"
        f"<td>{s.right_all:.3f}</td><td>{1 - s.left_all - s.right_all:.3f}</td></tr>" for s in sats
    )
    panels = "".join(_saturation_svg([s for s in sats if s.gate == g], g) for g in dict.fromkeys(s.gate for s in sats))
    legend_keys = "".join(f'<span class="key" style="background:{html.escape(str(c))}"></span> layer {l} dir {d} '
                          for (l, d), c in zip(rec.keys, ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e",
                                                          "#8c564b"]))
    info = " &middot; ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in rec.info.items())
    no_gates = "" if rec.gate_names else "<p>This cell has no gates (a plain RNN): nothing to saturate.</p>"
    return _TEMPLATE.format(
        title=html.escape(title), info=info, spans=spans, rows=rows, sat_rows=sat_rows, panels=panels,
        legend_keys=legend_keys, payload=payload, no_gates=no_gates, css=_CSS, js=_JS,
        n_chars=len(chars),
    )


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
#controls{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd;z-index:2}
#controls label{margin-right:1em}
#text{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:14px;line-height:1.55;white-space:pre-wrap;
 word-break:break-all;border:1px solid #ddd;padding:.6em;background:#fff}
#text span{cursor:default}#text span.hover{outline:1px solid #000}
.nl{color:#aaa}
#tip{position:fixed;display:none;background:#fffff4;border:1px solid #888;padding:.45em .6em;font-size:12px;
 font-family:ui-monospace,Menlo,monospace;pointer-events:none;z-index:5;box-shadow:2px 2px 6px #0003;white-space:pre}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:2px 7px;text-align:right}
th{background:#f4f4f4}tr.pick{cursor:pointer}tr.pick:hover{background:#eef}
tr.sel{background:#ffd}
.sat text{font-size:10px;fill:#444}.key{display:inline-block;width:10px;height:10px;margin-left:8px}
#bar{display:inline-block;vertical-align:middle;width:160px;height:12px;
 background:linear-gradient(to right,rgb(64,140,255),#fff,rgb(255,64,64));border:1px solid #aaa}
"""

_JS = r"""
(function(){
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $ = id => document.getElementById(id);
const spans = Array.from(document.querySelectorAll("#text span[data-t]"));
const cache = {};
function series(key, name){
  const k = key + "/" + name;
  if (cache[k]) return cache[k];
  const e = D.q[key][name], bin = atob(e.data), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const ints = e.bits === 16 ? new Uint16Array(bytes.buffer) : bytes;
  const scale = (e.hi - e.lo) / ((1 << e.bits) - 1), out = new Float32Array(ints.length);
  for (let i = 0; i < ints.length; i++) out[i] = e.lo + ints[i] * scale;
  return (cache[k] = out);
}
const SIG = new Set(["i","f","o","r","z"]);
function signal(v, q){
  if (SIG.has(q)) return 2*v - 1;
  if (q === "c") return Math.tanh(v);
  return Math.max(-1, Math.min(1, v));
}
function color(v, q){
  const s = signal(v, q), a = Math.abs(s), light = Math.floor(255*(1 - 0.75*a) + 0.5);
  if (s >= 0) return "rgb(255," + light + "," + light + ")";
  return "rgb(" + light + "," + Math.floor(255*(1 - 0.45*a) + 0.5) + ",255)";
}
const T = D.chars.length;
function current(){
  return {key: $("layer").value + "," + $("direction").value, q: $("quantity").value, u: +$("unit").value};
}
function paint(){
  const c = current(), s = series(c.key, c.q), off = c.u * T;
  for (let t = 0; t < T; t++) spans[t].style.background = color(s[off + t], c.q);
  document.querySelectorAll("tr.pick").forEach(r => r.classList.toggle("sel",
    r.dataset.layer + "," + r.dataset.direction === c.key && r.dataset.quantity === c.q && +r.dataset.unit === c.u));
  $("what").textContent = (D.labels[c.q] || c.q) + ", layer " + $("layer").value + ", direction " +
    $("direction").value + ", unit " + c.u;
}
function fillUnits(){
  const key = $("layer").value + "," + $("direction").value, H = D.hidden[key], sel = $("unit"), keep = +sel.value;
  sel.innerHTML = "";
  for (let u = 0; u < H; u++){ const o = document.createElement("option"); o.value = u; o.textContent = u; sel.appendChild(o); }
  sel.value = Math.min(keep || 0, H - 1);
}
function opts(sel, values, labels){
  sel.innerHTML = "";
  values.forEach((v, i) => { const o = document.createElement("option"); o.value = v; o.textContent = labels ? labels[i] : v; sel.appendChild(o); });
}
const layers = [...new Set(D.keys.map(k => k[0]))], dirs = [...new Set(D.keys.map(k => k[1]))];
opts($("layer"), layers); opts($("direction"), dirs, dirs.map(d => d ? "1 (reverse)" : "0 (forward)"));
opts($("quantity"), D.names, D.names.map(n => n + ": " + (D.labels[n] || n)));
function select(l, d, q, u){
  $("layer").value = l; $("direction").value = d; fillUnits(); $("quantity").value = q; $("unit").value = u; paint();
}
["layer","direction"].forEach(id => $(id).addEventListener("change", () => { fillUnits(); paint(); }));
["quantity","unit"].forEach(id => $(id).addEventListener("change", paint));
$("prev").addEventListener("click", () => { const s = $("unit"); s.value = Math.max(0, +s.value - 1); paint(); });
$("next").addEventListener("click", () => { const s = $("unit"); s.value = Math.min(s.options.length - 1, +s.value + 1); paint(); });
document.querySelectorAll("tr.pick").forEach(r => r.addEventListener("click", () => {
  select(r.dataset.layer, r.dataset.direction, r.dataset.quantity, r.dataset.unit);
  window.scrollTo({top: 0});
}));
function show(ch){ return ch === "\n" ? "\\n" : ch === "\t" ? "\\t" : ch === " " ? "\u2423" : ch; }
const tip = $("tip");
let hovered = null;
$("text").addEventListener("mouseover", ev => {
  const sp = ev.target.closest("span[data-t]"); if (!sp) return;
  const t = +sp.dataset.t, c = current(), lines = [];
  if (hovered) hovered.classList.remove("hover");
  hovered = sp; sp.classList.add("hover");
  lines.push("step " + t + "  char '" + show(D.chars[t]) + "'  unit " + c.u + " (layer " + c.key.replace(",", ", dir ") + ")");
  D.names.forEach(n => lines.push("  " + n.padEnd(2) + (D.labels[n] || "").padEnd(16) + series(c.key, n)[c.u * T + t].toFixed(3).padStart(8)));
  if (D.top_ids){
    lines.push("next character, the model's top " + D.top_ids[t].length + ":");
    D.top_ids[t].forEach((id, k) => lines.push("  '" + show(D.vocab[id]) + "'  " + D.top_probs[t][k].toFixed(3)));
    if (t + 1 < T) lines.push("actual next '" + show(D.chars[t + 1]) + "'  p = " + (D.next_prob[t] === null ? "?" : D.next_prob[t].toFixed(3)));
  }
  tip.textContent = lines.join("\n"); tip.style.display = "block";
  const r = sp.getBoundingClientRect();
  tip.style.left = Math.min(window.innerWidth - 330, r.left + 12) + "px";
  tip.style.top = (r.bottom + 6 + 260 > window.innerHeight ? Math.max(0, r.top - 270) : r.bottom + 6) + "px";
});
$("text").addEventListener("mouseleave", () => { tip.style.display = "none"; });
const i = D.initial; select(i.layer, i.direction, i.quantity, i.unit);
})();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,">
<style>{css}</style></head>
<body>
<h1>{title}</h1>
<p class="info">{info}</p>
<div id="controls">
<label>layer <select id="layer"></select></label>
<label>direction <select id="direction"></select></label>
<label>quantity <select id="quantity"></select></label>
<label>unit <button id="prev" type="button">&lsaquo;</button><select id="unit"></select><button id="next" type="button">&rsaquo;</button></label>
<span id="bar" title="negative - 0 - positive"></span> <small>blue: low (gate &lt; 0.5, state &lt; 0) &middot; red: high</small>
<div><small>showing <b id="what"></b> over {n_chars} characters; hover a character for every gate of this unit
and the model's next-character predictions</small></div>
</div>
<div id="text">{spans}</div>
<div id="tip"></div>
<h2>Most interpretable units</h2>
<p>Each unit's cell and hidden state correlated with features of the text (Pearson r over the characters
shown; the score is |r|). Click a row to show the unit.</p>
<table id="units"><thead><tr><th>feature</th><th>layer</th><th>dir</th><th>state</th><th>unit</th><th>r</th>
<th>|r|</th></tr></thead><tbody>{rows}</tbody></table>
<h2>Gate saturation</h2>
<p>Fraction of steps at which a gate is left-saturated (&lt; 0.1) or right-saturated (&gt; 0.9), as in Karpathy,
Johnson &amp; Fei-Fei (2015), figure 3; tanh candidates are rescaled to [0, 1] first. Each dot is one unit.{legend_keys}</p>
{no_gates}
<div id="saturation">{panels}</div>
<table id="sattable"><thead><tr><th>layer</th><th>dir</th><th>gate</th><th>left (&lt; 0.1)</th><th>right (&gt; 0.9)</th>
<th>unsaturated</th></tr></thead><tbody>{sat_rows}</tbody></table>
<script id="data" type="application/json">{payload}</script>
<script>{js}</script>
</body></html>
"""
