"""`rnnlab figures`: the tutorial's figures regenerated from a trained model, with its real values."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..train import load_charlm
from .common import UserError, read_input, run_parser

__all__ = ["add_parser"]

EXAMPLES = """
examples:
  rnnlab figures runs/charlm-20250101-120000 --out figures/
  rnnlab figures runs/pystdlib --prime "def f(x):\\n    return x\\n" --step 12 --units 10 --out figures/
  rnnlab figures runs/pystdlib --text module.py --max-chars 400 --step 200 --out figures/

Writes unrolled.png, lstm_step_0..5.png and lstm_step.gif (LSTM models), cost.png and cost.json.
"""


def add_parser(commands) -> None:
    p = run_parser(
        commands, "figures", help="the tutorial's figures from a trained model", epilog=EXAMPLES,
        description="Draw, from a trained character model and a short input: the network unrolled over the first "
                    "characters with the real x_t, h_t and y_t; one LSTM step walked gate by gate (PNG frames and "
                    "an animated GIF); and the cost of recurrence (parameters, matmul FLOPs, BPTT memory against "
                    "sequence length, formulas checked against a measured run, beside a feed-forward network).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", metavar="FILE", help="a text file to read (or builtin:NAME)")
    src.add_argument("--prime", metavar="TEXT", default="def f(x):\\n    return x\\n",
                     help="the input text (\\n and \\t are understood; default a small Python function)")
    p.add_argument("--max-chars", type=int, default=400, help="read at most this many characters (default 400)")
    p.add_argument("--encoding", default="utf-8", help="encoding of --text (default utf-8)")
    p.add_argument("--out", default="figures", help="folder for the figures (default figures/)")
    p.add_argument("--step", type=int, help="the step walked through (default: the last character)")
    p.add_argument("--unroll", type=int, default=3, help="steps in the unrolled network (default 3)")
    p.add_argument("--units", type=int, default=8, help="units shown per vector (default 8; all if fewer)")
    p.add_argument("--layer", type=int, default=0, help="the layer drawn (default 0)")
    p.set_defaults(run=run)


def require_plotting() -> None:
    """matplotlib and Pillow are optional dependencies: name them when absent, before any work."""
    import importlib.util

    missing = [m for m, pkg in (("matplotlib", "matplotlib"), ("PIL", "Pillow")) if importlib.util.find_spec(m) is None]
    if missing:
        names = " ".join("Pillow" if m == "PIL" else m for m in missing)
        raise UserError(f"rnnlab figures needs {names}: pip install {names} (or pip install 'rnnlab[test]')")


def run(args: argparse.Namespace) -> int:
    require_plotting()
    from ..viz import record_charlm
    from ..viz.cost import GATES, cost_figure
    from ..viz.figures import lstm_step_frames, save_gif, unrolled_figure

    loaded = load_charlm(args.checkpoint, args.device)
    text = read_input(args)
    unseen = loaded.vocab.unseen(text)
    if unseen:
        raise UserError(f"the text has characters the model never saw: {''.join(unseen[:10])!r}")
    embed, m = loaded.config.model.embed, loaded.config.model.rnn
    step = len(text) - 1 if args.step is None else args.step
    if not 0 <= step < len(text):
        raise UserError(f"--step {args.step}: the text has steps 0..{len(text) - 1}")
    if not 0 <= args.layer < m.num_layers:
        raise UserError(f"--layer {args.layer}: the model has layers 0..{m.num_layers - 1}")
    if args.units < 1 or args.unroll < 1:
        raise UserError("--units and --unroll must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rec = record_charlm(loaded.model, loaded.vocab, text)
    written = []
    unrolled_figure(rec, out / "unrolled.png", steps=args.unroll, units=args.units, layer=args.layer)
    written.append("unrolled.png")
    if m.cell == "lstm":
        frames = lstm_step_frames(rec, step, units=args.units, layer=args.layer)
        for k, frame in enumerate(frames):
            frame.save(out / f"lstm_step_{k}.png")
        save_gif(frames, out / "lstm_step.gif")
        written += [f"lstm_step_0..{len(frames) - 1}.png", "lstm_step.gif"]
    else:
        print(f"(no gate-by-gate LSTM step: the model is a {m.cell.upper()})")
    variants = [n for n in ("peephole", "coupled", "layer_norm", "proj_size") if getattr(m, n)]
    if m.cell not in GATES:  # minGRU/minLSTM: no W_hh, so the cost formulas below are not theirs
        print(f"wrote {', '.join(written)} to {out}")
        print(f"(no cost figure: its formulas are the classic cells'; a {m.cell} has no recurrent matmul)")
        return 0
    rows = cost_figure(m.cell, embed, m.hidden_size, out / "cost.png", layers=m.num_layers)
    table = [{"T": r["T"], **{f"{who}_{kind}": vars(r[f"{who}_{kind}"]) for who in ("rnn", "ff")
                              for kind in ("formula", "measured")}} for r in rows]
    note = f"formulas for the plain cell; the model's variants {variants} add their own terms" if variants else ""
    (out / "cost.json").write_text(json.dumps({"cell": m.cell, "input": embed, "hidden": m.hidden_size,
                                               "layers": m.num_layers, "batch": 1, "note": note, "rows": table},
                                              indent=1), encoding="utf-8")
    written += ["cost.png", "cost.json"]
    agree = all(r["rnn_formula"] == r["rnn_measured"] and r["ff_formula"] == r["ff_measured"] for r in rows)
    print(f"wrote {', '.join(written)} to {out}")
    print(f"cost formulas {'equal' if agree else 'DIFFER FROM'} the measured run at T = "
          f"{', '.join(str(r['T']) for r in rows)}" + (f" ({note})" if note else ""))
    return 0
