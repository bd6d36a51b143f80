"""`rnnlab train classify`: train a sequence classifier, then score it on the held-out test split."""

from __future__ import annotations

from ..train import load_classifier
from .reports import print_report, score_split

__all__ = ["EXAMPLES", "TASK", "report"]

TASK = "classify"
EXAMPLES = """
examples:
  rnnlab train classify --data builtin:sentiment          # tweets: negative / neutral / positive, ~3 min
  rnnlab train classify --data builtin:vowels             # speaker of 9 from variable-length LPC frames
  rnnlab train classify --data builtin:mnist-rows --cell gru --pooling mean
  rnnlab train classify --data reviews.csv --text-column review --label-column stars --tokens char
  rnnlab train classify --data sensors.jsonl --sequence-column readings --bidirectional
  rnnlab train classify --resume runs/classify-20250101-120000 --max-time 600

Built-in data sets take presets chosen on their validation splits (rnnlab.train.classify.CLASSIFY_PRESETS,
docs/TASKS.md); a file of your own takes the defaults shown under the options (for text: words, a bidirectional
GRU 64 averaged over the text, word and unit dropout). Every option given here overrides them. The split (train /
validation / test, stratified by label) follows --seed; `rnnlab eval RUN --baselines` puts TF-IDF + logistic
regression (text) or logistic regression (sequences) beside the model on the same split.
A run folder holds config.json, metrics.csv, loss.png, confusion.png and the checkpoints last/ and best/.
"""


def report(task, cfg, run_dir, result, args) -> int:
    split = task.split
    if len(split.test):
        loaded = load_classifier(run_dir)
        scores = score_split(loaded, split, split.test)
        print(f"--- test split ({len(split.test):,} sequences never trained on), checkpoint {loaded.checkpoint.path} ---")
        print_report(scores, split.data.label_names, run_dir / "confusion.png")
        print(f"compare with the baseline: rnnlab eval {run_dir} --baselines")
    return 0
