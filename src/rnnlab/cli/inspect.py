"""`rnnlab inspect`: one self-contained HTML page showing a character model's gates and states over a text."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..train import load_charlm
from ..train.charlm import evaluate_ids
from .common import UserError, read_input, run_parser

__all__ = ["add_parser", "read_input"]

EXAMPLES = """
examples:
  rnnlab inspect runs/charlm-20250101-120000 --prime "def f(x):\\n    return (x + 1) * 2\\n" --out page.html
  rnnlab inspect runs/pystdlib --text some_module.py --max-chars 3000 --out pystdlib.html
  rnnlab inspect runs/pystdlib --text some_module.py --quantity f --unit 17 --out forget17.html

Open the page in any browser, offline: every selector works without a server.
"""


def add_parser(commands) -> None:
    p = run_parser(
        commands, "inspect", help="an HTML page of a model's gates and states over a text", epilog=EXAMPLES,
        description="Run a trained character model over a text, recording every gate and state, and write one "
                    "self-contained HTML page (no network): the text coloured by a chosen unit, hover for all "
                    "its gates and the model's next-character predictions, the most interpretable units, and "
                    "gate saturation statistics (Karpathy, Johnson & Fei-Fei 2015).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", metavar="FILE", help="a text file to read (or builtin:NAME)")
    src.add_argument("--prime", metavar="TEXT", help="the text itself (\\n and \\t are understood)")
    p.add_argument("--out", default="inspect.html", help="the page to write (default inspect.html)")
    p.add_argument("--max-chars", type=int, default=2000,
                   help="read at most this many characters (default 2000; the page holds ~6 bytes per char "
                        "and unit)")
    p.add_argument("--encoding", default="utf-8", help="encoding of --text (default utf-8)")
    p.add_argument("--layer", type=int, default=0, help="the layer shown first (default 0)")
    p.add_argument("--quantity", help="shown first: c, h or a gate name (default c, or h without a cell state)")
    p.add_argument("--unit", type=int, help="unit shown first (default: the most interpretable one)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..viz import interpretable_units, record_charlm, render_page
    from ..viz.record import GATE_ORDER

    loaded = load_charlm(args.checkpoint, args.device)
    text = read_input(args)
    unseen = loaded.vocab.unseen(text)
    if unseen:
        raise UserError(f"the text has characters the model never saw: {''.join(unseen[:10])!r}; "
                        f"remove them or inspect another text")
    m = loaded.config.model.rnn
    names = list(GATE_ORDER[m.cell])
    if args.quantity is not None and args.quantity not in names:
        raise UserError(f"--quantity {args.quantity!r}: a {m.cell} records {', '.join(names)}")
    if not 0 <= args.layer < m.num_layers:
        raise UserError(f"--layer {args.layer}: the model has layers 0..{m.num_layers - 1}")
    if args.unit is not None and not 0 <= args.unit < (m.proj_size or m.hidden_size if args.quantity == "h" else m.hidden_size):
        raise UserError(f"--unit {args.unit}: the model has units 0..{m.hidden_size - 1}")
    score = evaluate_ids(loaded.model, loaded.vocab.encode(text), 1, len(text))
    info = {"run": str(loaded.checkpoint.path), "step": loaded.checkpoint.state.get("step"),
            "model": m.describe(),
            "bits/char on this text": f"{score['bpc']:.3f}", "characters": len(text)}
    rec = record_charlm(loaded.model, loaded.vocab, text, info=info)
    units = interpretable_units(rec)
    page = render_page(rec, units=units, layer=args.layer, quantity=args.quantity, unit=args.unit,
                       title=f"rnnlab inspect: {Path(str(loaded.checkpoint.path)).parent.name or 'model'}")
    out = Path(args.out)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {len(text)} characters, {m.num_layers} x {m.hidden_size} units")
    for u in units[:5]:
        print(f"  unit {u.unit:4d} (layer {u.layer}, dir {u.direction}, {u.quantity}) tracks {u.feature:13s} "
              f"|r| = {u.score:.3f}")
    return 0
