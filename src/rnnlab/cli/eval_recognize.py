"""`rnnlab eval` of a recognize run: character error rate and sequence accuracy on held-out line images."""

from __future__ import annotations

import argparse

from ..train.device import resolve_device
from .common import UserError
from ..data.batching import split_rows
from ..train import load_recognizer
from ..train.recognize import BUILTIN_LINES, builtin_test_samples, check_alphabet, evaluate_lines, load_line_samples

__all__ = ["EXAMPLES", "add_options", "run"]

EXAMPLES = """
  rnnlab eval runs/recognize-20250101-120000              # mnist-strings: the 1,000 test strings
  rnnlab eval runs/my-lines --data test_lines/labels.tsv --beam 10 --show 5
"""


def add_options(p) -> None:
    p.add_argument("--beam", type=int, help="recognize/caption: beam width (recognize runs: default 1, greedy "
                   "decoding; caption runs: default 5, with --method beam)")
    p.add_argument("--show", type=int, default=0, metavar="N", help="recognize/caption: print the first N predictions")
    p.add_argument("--limit", type=int, metavar="N", help="recognize/caption: score only the first N images")


def run(args: argparse.Namespace) -> int:
    if args.beam is not None and args.beam < 1:
        raise UserError(f"--beam must be >= 1 (1 is greedy decoding), got {args.beam}")
    args.beam = args.beam or 1
    loaded = load_recognizer(args.checkpoint, args.device)
    cfg, device = loaded.config, resolve_device(args.device)
    if args.data is None and cfg.data.data == BUILTIN_LINES:
        samples = builtin_test_samples(cfg, "test", args.limit)
        where = f"{len(samples)} {BUILTIN_LINES} test strings (digit images never seen in training)"
    elif args.data is None:
        all_samples = load_line_samples(cfg.data.data, cfg.model.height)
        samples = [all_samples[i] for i in split_rows(len(all_samples), cfg.data.val_fraction, cfg.train.seed)[1]]
        where = f"the {len(samples)} held-out images of {cfg.data.data}"
    else:
        samples = builtin_test_samples(cfg, "test", args.limit) if args.data == BUILTIN_LINES else \
            load_line_samples(args.data, cfg.model.height)
        where = f"{len(samples)} images of {args.data}"
    samples = samples[: args.limit] if args.limit is not None else samples
    check_alphabet(loaded.vocab, samples, "the model cannot output them; evaluate on data in its alphabet")
    decoding = "greedy decoding" if args.beam <= 1 else f"prefix beam search, beam {args.beam}"
    print(f"transcribing {where} with {loaded.checkpoint.path} (step {loaded.checkpoint.state.get('step')}), "
          f"{decoding} ...", flush=True)
    metrics, hyps = evaluate_lines(loaded.model, loaded.vocab, samples, beam=args.beam, device=device,
                                   return_texts=True)
    for s, h in list(zip(samples, hyps))[: args.show]:
        print(f"{s.name}: {h!r} (true {s.text!r}){'' if h == s.text else '  <- wrong'}")
    print(f"CER {100 * metrics['cer']:.2f} %  sequence accuracy {100 * metrics['seq_acc']:.1f} %  "
          f"({len(samples)} images, {sum(len(s.text) for s in samples)} characters)")
    return 0
