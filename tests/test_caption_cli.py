"""`rnnlab train caption`, `rnnlab caption`, `rnnlab eval` of a caption run: tiny end-to-end runs on a folder
of images with several captions each and on builtin:emoji, the vocabulary's round trip through the checkpoint,
held-out emoji never trained on, and user errors as one line with exit code 2."""

import json

import pytest
import torch

pytest.importorskip("PIL", reason="images need Pillow (pip install rnnlab[datasets])")
pytest.importorskip("sacrebleu", reason="BLEU needs sacrebleu (pip install rnnlab[datasets])")
pytest.importorskip("rapidfuzz", reason="WER needs rapidfuzz (pip install rnnlab[datasets])")

from PIL import Image  # noqa: E402

from rnnlab.data.emoji import EMOJI_FONT  # noqa: E402
from rnnlab.data.tokens import TokenVocab  # noqa: E402
from rnnlab.train import load_captioner  # noqa: E402
from helpers import assert_user_error, run_cli as run  # noqa: E402

TINY = ["--batch", "4", "--hidden", "16", "--channels", "4", "--features", "16", "--embed", "8", "--max-steps", "4",
        "--eval-every", "2", "--warmup-steps", "1", "--quiet", "--threads", "1"]
COLOURS = {"RED": (220, 30, 30), "GREEN": (30, 180, 30), "BLUE": (30, 30, 220)}


pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")





def write_shapes(folder, rows=None):
    """Coloured squares and discs, two captions each; returns the labels file."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["filename\tcaption"]
    for name, rgb in COLOURS.items():
        for shape in ("SQUARE", "DISC"):
            im = Image.new("RGB", (40, 30), "white")
            from PIL import ImageDraw
            draw = ImageDraw.Draw(im)
            (draw.rectangle if shape == "SQUARE" else draw.ellipse)((8, 4, 32, 26), fill=rgb)
            file = f"{name.lower()}_{shape.lower()}.png"
            im.save(folder / file)
            lines += [f"{file}\t{name} {shape}", f"{file}\tA {name} {shape}"]
    lines += rows or []
    labels = folder / "captions.tsv"
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return labels


def test_user_data_train_caption_eval_and_vocab_round_trip(tmp_path, capsys):
    labels = write_shapes(tmp_path / "shapes")
    code, out, err = run(capsys, "train", "caption", "--data", labels, "--val-fraction", "0.34",
                         "--out", tmp_path / "run", *TINY)
    assert code == 0, err
    assert "4 training images (8 captions), 2 validation images" in out and "held-out images" in out
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "val_bleu" in header and "val_wer" in header

    loaded = load_captioner(tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "best" / "state.json").read_text())["vocab"]
    assert TokenVocab.from_json(saved, kind="decoder") == loaded.vocab and loaded.vocab.split == "whitespace"
    assert set(loaded.vocab.tokens[4:]) <= {"A", "RED", "GREEN", "BLUE", "SQUARE", "DISC"}

    code, out, err = run(capsys, "caption", tmp_path / "run", labels.parent / "red_disc.png", "--method", "beam",
                         "--beam", "3")
    assert code == 0, err
    path, caption = out.strip().split("\t") if "\t" in out else (out.strip(), "")
    assert path.endswith("red_disc.png") and set(caption.split()) <= set(loaded.vocab.tokens[4:])
    outs = [run(capsys, "caption", tmp_path / "run", labels.parent / "red_disc.png", "--method", "sample",
                "--temperature", "1.5", "--seed", "3")[1] for _ in range(2)]
    assert outs[0] == outs[1]

    code, out, err = run(capsys, "eval", tmp_path / "run", "--sheet", tmp_path / "sheet.png", "--show", "2")
    assert code == 0, err
    assert "BLEU" in out and "WER" in out and "held-out val images" in out
    assert (tmp_path / "sheet.png").read_bytes()[:4] == b"\x89PNG"

    code, out, err = run(capsys, "train", "caption", "--resume", tmp_path / "run", "--max-steps", "6", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "last" / "state.json").read_text())["step"] == 6


@pytest.mark.skipif(not EMOJI_FONT.exists(), reason="builtin:emoji needs the Debian package fonts-noto-color-emoji")
def test_builtin_emoji_holds_out_test_emoji(tmp_path, capsys):
    pytest.importorskip("fontTools", reason="builtin:emoji needs fonttools")
    from rnnlab.train.caption import CaptionRunConfig, load_caption_split

    cfg = CaptionRunConfig()
    cfg.data.limit = 60
    split = load_caption_split(cfg)
    names = {k: {it.name for it in v} for k, v in split.items()}
    assert not names["train"] & names["test"] and not names["train"] & names["val"]
    assert len(names["test"]) == 6 and len(names["val"]) == 3 and len(names["train"]) == 51
    item = split["test"][0]
    assert item.image.shape == (3, 64, 64) and item.image.min() < 0.9  # something was drawn
    assert item.captions[0].isupper()  # a Unicode name

    code, out, err = run(capsys, "train", "caption", "--limit", "60", "--out", tmp_path / "run", *TINY)
    assert code == 0, err
    code, out, err = run(capsys, "eval", tmp_path / "run", "--method", "beam", "--beam", "2")
    assert code == 0, err
    assert "the 6 held-out test images of builtin:emoji" in out
    assert (tmp_path / "run" / "contact_sheet_test.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("case, fragments", [
    ("missing", ["1 listed image(s) not found", "ghost.png"]),
    ("empty", ["empty caption", "red_square.png"]),
    ("unreadable", ["broken.jpg", "not a readable image"]),
])
def test_bad_caption_data_is_one_line(tmp_path, capsys, case, fragments):
    rows = {"missing": ["ghost.png\tA GHOST"], "empty": ["red_square.png\t "], "unreadable": ["broken.jpg\tBROKEN"]}[case]
    labels = write_shapes(tmp_path / "shapes", rows)
    if case == "unreadable":
        (labels.parent / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code, _, err = run(capsys, "train", "caption", "--data", labels, "--out", tmp_path / "run", *TINY)
    assert_user_error(code, err, *fragments)


def test_caption_option_errors(tmp_path, capsys):
    labels = write_shapes(tmp_path / "shapes")
    code, _, err = run(capsys, "train", "caption", "--data", labels, "--out", tmp_path / "run", *TINY)
    assert code == 0, err
    code, _, err = run(capsys, "caption", tmp_path / "run", labels.parent / "red_disc.png", "--beam", "0",
                       "--method", "beam")
    assert_user_error(code, err, "--beam must be >= 1")
    code, _, err = run(capsys, "caption", tmp_path / "run", tmp_path / "missing.png")
    assert_user_error(code, err, "missing.png")
    # a recognize command on a caption run says what the run is
    code, _, err = run(capsys, "recognize", tmp_path / "run", labels.parent / "red_disc.png")
    assert_user_error(code, err, "'caption' checkpoint, not a handwriting recognizer")
