"""`rnnlab export RUN` (issue 13) on the stored runs of each task: the file runs at other batch sizes and lengths
and equals the loaded model; the CharLM step carries its state in and out, so generation can run in onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnlab
from rnnlab.cli import main
from rnnlab.cli.export import CharLMStep
from rnnlab.models import CharLMConfig, RecurrentConfig
from rnnlab.train import registry

RUNS = Path(__file__).parent / "fixtures" / "runs-bfeb559"


def test_export_charlm_pt2_step_equals_the_model_at_other_sizes(tmp_path):
    out = tmp_path / "lm.pt2"
    assert main(["export", str(RUNS / "charlm"), "--format", "pt2", "--out", str(out)]) == 0
    card = json.loads(Path(str(out) + ".json").read_text())
    assert card["task"] == "charlm" and card["vocabulary"] and card["inputs"][0]["shape"] == ["B", "T"]
    loaded = registry.load_run(RUNS / "charlm")
    step = torch.export.load(str(out)).module()
    rnn = loaded.model.rnn
    for B, T in [(3, 5), (2, 11)]:
        x = torch.randint(0, loaded.model.config.vocab_size, (B, T))
        state = [torch.randn(rnn.num_layers * rnn.num_directions, B, n) for n in
                 ([rnn.cell_config.state_size, rnn.hidden_size] if rnn.mode == "LSTM" else [rnn.hidden_size])]
        got = step(x, *state)
        want = CharLMStep(loaded.model)(x, *state)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


def test_export_charlm_with_a_variant_to_onnx_equals_the_model_with_its_state(tmp_path):
    """The stored CharLM has a variant (no ONNX operator): its layers are Scans over the step, and the file's step
    with the state fed in equals the loaded model at other batch sizes and lengths."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "lm.onnx"
    assert main(["export", str(RUNS / "charlm"), "--out", str(out)]) == 0
    loaded = registry.load_run(RUNS / "charlm")
    rnn = loaded.model.rnn
    assert rnn.cell_config.variants and "Scan" in {n.op_type for n in onnx.load(str(out)).graph.node}
    session = ort.InferenceSession(str(out))
    names = [i.name for i in session.get_inputs()]
    for B, T in [(3, 5), (2, 11)]:
        x = torch.randint(0, loaded.model.config.vocab_size, (B, T))
        state = [torch.randn(rnn.num_layers * rnn.num_directions, B, n) for n in
                 ([rnn.cell_config.state_size, rnn.hidden_size] if rnn.mode == "LSTM" else [rnn.hidden_size])]
        got = session.run(None, dict(zip(names, [x.numpy(), *[s.numpy() for s in state]])))
        with torch.no_grad():
            want = CharLMStep(loaded.model.eval())(x, *state)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("task", ["forecast", "classify"])
def test_export_forecast_and_classify_to_onnx_equal_the_model(tmp_path, task):
    """The classifier's file takes the lengths as `rnnlab predict` passes them: a padded batch gives the logits of
    each sequence alone (NaN-free whatever the padding holds)."""
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / f"{task}.onnx"
    assert main(["export", str(RUNS / task), "--out", str(out)]) == 0
    loaded = registry.load_run(RUNS / task)
    session = ort.InferenceSession(str(out))
    c = loaded.model.config
    for B, T in [(3, 5), (1, 12)]:
        if task == "forecast":
            x = torch.randn(B, c.lookback)
            got = session.run(None, {"input": x.numpy()})[0]
            want = loaded.model(x)[0]
        else:
            x = torch.randn(B, T, c.n_features) if c.n_features else torch.randint(1, c.vocab_size, (B, T))
            lengths = torch.tensor([T, 2, T - 1][:B])
            got = session.run(None, {"input": x.numpy(), "lengths": lengths.numpy()})[0]
            want = loaded.model(x, lengths)[0]
            alone = loaded.model(x[-1:, : int(lengths[-1])], lengths[-1:])[0]
            np.testing.assert_allclose(got[-1:], alone.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_charlm_step_in_onnxruntime_generates_as_one_long_run(tmp_path):
    """Feeding the step's state back chunk by chunk equals running the whole text at once: what generation with
    onnxruntime relies on."""
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = rnnlab.CharLM(CharLMConfig(vocab_size=11, embed=4, rnn=RecurrentConfig(hidden_size=6, num_layers=2))).eval()
    state = [torch.zeros(2, 2, 6), torch.zeros(2, 2, 6)]
    rnnlab.export(CharLMStep(model), (torch.zeros(2, 4, dtype=torch.long), *state), tmp_path / "lm.onnx",
                  dims=[{0: "B", 1: "T"}, {1: "B"}, {1: "B"}], output_names=["logits", "h_n", "c_n"])
    session = ort.InferenceSession(str(tmp_path / "lm.onnx"))
    x = torch.randint(0, 11, (3, 10))
    h = [np.zeros((2, 3, 6), np.float32)] * 2
    chunks = []
    for part in (x[:, :1], x[:, 1:4], x[:, 4:]):  # one step, then longer chunks
        logits, *h = session.run(None, {"input": part.numpy(), "input_1": h[0], "input_2": h[1]})
        chunks.append(logits)
    want = model(x)[0].detach().numpy()
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_export_recognizer_equals_the_model_at_other_batches_and_widths(tmp_path, fmt):
    """The CTC recognizer's file takes padded line images and their widths, returns the scores per frame and the
    valid frames; the card holds the alphabet and how to decode."""
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
    out = tmp_path / f"rec.{fmt}"
    assert main(["export", str(RUNS / "recognize"), "--format", fmt, "--out", str(out)]) == 0
    card = json.loads(Path(str(out) + ".json").read_text())
    assert card["task"] == "recognize" and card["alphabet"] and card["blank"] == 0
    assert [i["name"] for i in card["inputs"]] == ["images", "widths"]
    loaded = registry.load_run(RUNS / "recognize")
    H = loaded.model.config.height
    run = (ort.InferenceSession(str(out)).run if fmt == "onnx" else None)
    program = torch.export.load(str(out)).module() if fmt == "pt2" else None
    for B, W in [(3, 52), (1, 120)]:
        torch.manual_seed(W)
        images = (torch.rand(B, 1, H, W) > 0.7).float()
        widths = torch.tensor([W, W - 9, 20][:B])
        for b in range(B):
            images[b, :, :, int(widths[b]):] = 0  # background past each width, as the loaders pad
        with torch.no_grad():
            want = loaded.model(images, widths)[:2]
        if fmt == "onnx":
            got = [torch.from_numpy(a) for a in run(None, {"images": images.numpy(), "widths": widths.numpy()})]
        else:
            with torch.no_grad():
                got = program(images, widths)
        torch.testing.assert_close(got[1], want[1])
        torch.testing.assert_close(got[0], want[0], rtol=1e-4, atol=1e-4)
