"""Run folders written before the one-config refactor (rnnlab at bfeb559, config.json with flat model options
and two vocabulary schemas) still load, give the same answers they gave then, and resume.

The fixtures were made by training each task for 2 steps at bfeb559; expected.json holds what that commit's
loaders computed from them (a sample, class probabilities, a forecast, a transcription, a caption)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli

pytest.importorskip("PIL", reason="the line and caption images need Pillow")

from rnnlab.data.images import read_image_rgb, read_line_image  # noqa: E402
from rnnlab.train import (  # noqa: E402
    caption_images, load_captioner, load_charlm, load_classifier, load_forecaster, load_recognizer, sample_text,
    transcribe,
)

OLD = Path(__file__).parent / "fixtures" / "runs-bfeb559"
EXPECTED = json.loads((OLD / "expected.json").read_text())


def test_old_charlm_loads_and_samples_the_same_text():
    lm = load_charlm(OLD / "charlm")
    assert "".join(sample_text(lm.model, lm.vocab, "def ", 40, temperature=0.8, seed=0)) == EXPECTED["charlm_sample"]


def test_old_classifier_gives_the_same_probabilities():
    c = load_classifier(OLD / "classify")
    got = c.predict_proba(["good great movie", "awful bad movie 3"])
    np.testing.assert_allclose(got, EXPECTED["classify_proba"], rtol=1e-5, atol=1e-6)


def test_old_forecaster_gives_the_same_forecast():
    np.testing.assert_allclose(load_forecaster(OLD / "forecast").future(6), EXPECTED["forecast_future"], rtol=1e-5)


def test_old_recognizer_and_captioner_give_the_same_texts():
    r = load_recognizer(OLD / "recognize")
    assert transcribe(r.model, r.vocab, [read_line_image(OLD / "inputs/line0.png", 32)]) == EXPECTED["recognize_text"]
    cp = load_captioner(OLD / "caption")
    got = caption_images(cp.model, cp.vocab, [read_image_rgb(OLD / "inputs/red_disc.png", 16)], max_len=6)
    assert got == EXPECTED["caption_text"]


def test_old_charlm_run_samples_and_resumes_from_the_cli(tmp_path, capsys, monkeypatch):
    run = tmp_path / "charlm"
    shutil.copytree(OLD / "charlm", run)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.txt").write_text("def f(x):\n    return x + 1\n" * 40)  # the data the run was trained on
    code, out, err = run_cli(capsys, "sample", run, "--prime", "def ", "--length", "40", "--seed", "0")
    assert code == 0, err
    assert out == "def " + EXPECTED["charlm_sample"] + "\n"
    code, out, err = run_cli(capsys, "train", "charlm", "--resume", run, "--max-steps", "4", "--quiet",
                             "--sample-length", "0", "--threads", "1")
    assert code == 0, err
    assert "resuming from" in out and "after 4 steps" in out
