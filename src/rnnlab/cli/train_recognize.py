"""`rnnlab train recognize`: train a CTC handwriting recognizer, then report its held-out character error rate."""

from __future__ import annotations

from ..train.recognize import BUILTIN_LINES, RecognizeRunConfig

__all__ = ["EXAMPLES", "TASK", "report"]

TASK = "recognize"
D = RecognizeRunConfig()
EXAMPLES = f"""
examples:
  rnnlab train recognize                                # {D.train.max_steps} steps on {BUILTIN_LINES}
  rnnlab train recognize --data lines/labels.tsv --max-time 900 --out runs/my-lines
  rnnlab train recognize --data lines/ --alphabet "0123456789-." --hidden 192 --layers 2
  rnnlab train recognize --resume runs/my-lines --max-time 1800          # continue where it stopped
  rnnlab recognize runs/my-lines scan1.png scan2.png --beam 10

Data: {BUILTIN_LINES} (digit strings composed from real MNIST digits; test digits never appear in
training), or a TSV/CSV of `filename<TAB>transcription` (a .csv uses commas; a header row is optional; image
paths are relative to the labels file), or the folder holding it. Images are read as grey levels, scaled to
height {D.model.height}; dark ink on light paper is inverted automatically.
"""


def report(task, cfg, run_dir, result, args) -> int:
    best = result.best
    if best:
        print(f"best validation: CER {100 * best['val_cer']:.2f} %, sequence accuracy {100 * best['val_seq_acc']:.1f} % "
              f"(step {best['step']}); test it with: rnnlab eval {run_dir}", flush=True)
    return 0
