"""`rnnlab eval RUN --baselines` of a classify run: the baseline of the data's kind, trained on the run's own
training split, scored on the same items as the model, printed beside its accuracy and macro-F1; and the
embedding dropout the text defaults use."""

import re

import numpy as np
import pytest
import torch

from helpers import assert_user_error, run_cli as run, write_review_csv

pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")

TINY = ["--hidden", "4", "--embed", "4", "--max-steps", "2", "--eval-every", "2", "--warmup-steps", "1",
        "--quiet", "--threads", "1"]


def _rows(out: str) -> dict[str, tuple[float, float]]:
    """The comparison table's rows: name -> (accuracy, macro-F1)."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(.+?)\s+(\d\.\d{4})\s+(\d\.\d{4})$", line)
        if m:
            rows[m.group(1).strip()] = (float(m.group(2)), float(m.group(3)))
    return rows


@pytest.fixture
def reviews(tmp_path):
    words = {"pos": ["good", "great", "fine", "lovely"], "neg": ["bad", "awful", "poor", "dull"]}
    return write_review_csv(tmp_path / "reviews.csv", 60, words, spread=3)


def test_eval_baselines_text_prints_tfidf_on_the_same_test_split(tmp_path, capsys, reviews):
    from rnnlab.baselines import text_baseline
    from rnnlab.train import load_classifier
    from rnnlab.train.classify import prepare_split
    from rnnlab.train.metrics import classification_report

    code, out, err = run(capsys, "train", "classify", "--data", reviews, "--out", tmp_path / "r", "--min-count", "1",
                         *TINY)
    assert code == 0, err
    code, out, err = run(capsys, "eval", tmp_path / "r", "--baselines")
    assert code == 0, err
    rows = _rows(out)
    model = next(k for k in rows if k.startswith("rnnlab ") and k.endswith("(this run)"))
    assert "word tokens" in model and "pooling" in model
    # the baseline's numbers are TF-IDF + LR trained on the run's training split, C on its validation split
    split = prepare_split(load_classifier(tmp_path / "r").config)
    d = split.data
    pick = lambda idx: [d.items[i] for i in idx]  # noqa: E731
    pred = text_baseline(pick(split.train), d.targets[split.train], pick(split.val), d.targets[split.val],
                         pick(split.test))
    b = classification_report(d.targets[split.test], pred, 2)
    assert rows["TF-IDF + logistic regression"] == (round(b["accuracy"], 4), round(b["macro_f1"], 4))
    assert re.search(r"rnnlab is (ahead of|behind|level with) the baseline", out)
    assert f"both on the same {len(split.test)} sequences" in out


def test_eval_baselines_sequences_and_missing_data(tmp_path, capsys):
    lines = ["id,step,x,label"] + [f"{i},{k},{i % 2 + 0.1 * k},{'ab'[i % 2]}" for i in range(30) for k in range(3)]
    (tmp_path / "l.csv").write_text("\n".join(lines))
    code, out, err = run(capsys, "train", "classify", "--data", tmp_path / "l.csv", "--out", tmp_path / "b", *TINY)
    assert code == 0, err
    code, out, err = run(capsys, "eval", tmp_path / "b", "--baselines")
    assert code == 0, err
    assert "logistic regression on flattened steps" in _rows(out)
    # the run's data is gone: the baseline cannot be trained; one line, exit 2
    (tmp_path / "l.csv").unlink()
    code, out, err = run(capsys, "eval", tmp_path / "b", "--baselines")
    assert_user_error(code, err, "l.csv")


def test_embed_dropout_drops_whole_tokens_in_training_only():
    from rnnlab.models import SequenceClassifier, SequenceClassifierConfig

    torch.manual_seed(0)
    c = SequenceClassifierConfig(num_classes=2, vocab_size=7, embed=5, embed_dropout=0.5)
    m = SequenceClassifier(c)
    x = torch.randint(1, 7, (3, 40))
    seen = {}
    m.rnn.register_forward_hook(lambda mod, args, kw_out: seen.__setitem__("e", args[0]))
    m.train()
    m(x)
    e, plain = seen["e"], m.inp(x.transpose(0, 1))
    # each token's vector is either all zero or the embedding scaled by 1 / (1 - p)
    dropped = (e == 0).all(-1)
    assert dropped.any() and (~dropped).any()
    torch.testing.assert_close(e[~dropped], plain[~dropped] * 2)
    m.eval()
    m(x)
    torch.testing.assert_close(seen["e"], plain)
    with pytest.raises(ValueError, match="embed_dropout"):
        SequenceClassifier(SequenceClassifierConfig(num_classes=2, vocab_size=7, embed_dropout=1.0))
    assert np.isfinite(m(x, targets=torch.zeros(3, dtype=torch.long))[1].item())


def test_presets_spell_out_what_the_text_defaults_set():
    """A preset was chosen as a whole: the options the defaults for a user's file set (which may move) are each
    named in every preset, so a new default never changes a built-in data set's run."""
    from rnnlab.train.classify import CLASSIFY_PRESETS

    for name, preset in CLASSIFY_PRESETS.items():
        m, t = preset["model"], preset["train"]
        assert {"embed", "pooling", "embed_dropout"} <= m.keys(), name
        assert {"cell", "hidden_size", "bidirectional", "dropout"} <= m["rnn"].keys(), name
        assert {"weight_decay", "lr", "max_steps"} <= t.keys(), name
