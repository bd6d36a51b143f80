"""rnnlab.viz: recordings drive the page and the figures; the interpretable-unit search finds a planted unit;
saturation and text features equal hand-counted values; `rnnlab inspect` and `rnnlab figures` work on a tiny
checkpoint; the cost formulas equal hand-computed and measured counts."""

import base64
import json
import re

import numpy as np
import pytest
import torch

from rnnlab.cli import main
from rnnlab.train import CharLMTask, fit, load_charlm
from rnnlab.viz import Recording, color, gate_saturation, interpretable_units, record_charlm, render_page, text_features
from rnnlab.viz.cost import feedforward_cost, measure, measure_feedforward, recurrent_cost
from charlm_helpers import TINY_TEXT, tiny_config


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread_module):
    """Tiny models run fastest on one thread (the conftest fixture, for the whole module)."""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, one_thread_module):
    """A tiny LSTM char model trained for 20 steps, saved as a run folder."""
    run = tmp_path_factory.mktemp("inspect") / "run"
    cfg = tiny_config(max_steps=20)
    fit(CharLMTask(cfg, text=TINY_TEXT), cfg.train, run, progress=False, log=lambda s: None)
    return run


def synthetic(T=60, H=5, cell="lstm", seed=0):
    rng = np.random.default_rng(seed)
    names = {"lstm": "chifgo", "gru": "hrzn", "rnn": "h"}[cell]
    q = {n: rng.uniform(0, 1, (T, H)).astype(np.float32) for n in names}
    text = ("def f(x):\n    return (x + 'a')\n" * 10)[:T]
    return Recording(text, cell, {(0, 0): q}, chars=sorted(set(text)))


# ----- recording: the layer's own trace, the head's predictions -------------------------------------------
def test_recording_holds_the_layers_trace_and_the_models_predictions(tiny_run):
    loaded = load_charlm(tiny_run)
    text = TINY_TEXT[:50]
    rec = record_charlm(loaded.model, loaded.vocab, text, top=3)
    ids = loaded.vocab.encode(text)
    with torch.no_grad():
        logits, _ = loaded.model(ids[None])
        x = loaded.model.embed(ids[:, None])
        _, _, trace = loaded.model.rnn(x, record_gates=True, return_states=True)
    q = rec.quantities[0, 0]
    assert set(q) == {"c", "h", "i", "f", "g", "o"} and q["c"].shape == (50, 24)
    for name in "ifgo":
        np.testing.assert_allclose(q[name], trace.gate(name)[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(q["c"], trace.state("c")[0].numpy(), atol=1e-6)
    probs = torch.softmax(logits[0], -1)
    top = probs.topk(3, -1)
    np.testing.assert_array_equal(rec.top_ids, top.indices.numpy())
    np.testing.assert_allclose(rec.top_probs, top.values.numpy(), atol=1e-5)
    np.testing.assert_allclose(rec.next_prob[:-1], probs[torch.arange(49), ids[1:]].numpy(), atol=1e-5)
    assert np.isnan(rec.next_prob[-1])


# ----- analysis: features, interpretable units, saturation ------------------------------------------------
def test_text_features_by_hand():
    f = text_features("ab(c'd')\n  x#'\n")
    #                  a b ( c ' d ' ) \n _ _ x # ' \n
    assert f["column"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 8, 1, 2, 3, 4, 5, 5]
    assert f["in_quotes"].tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert f["bracket_depth"].tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert f["indentation"].tolist() == [0] * 9 + [1, 2, 2, 2, 2, 2]
    assert f["in_comment"].tolist() == [0] * 12 + [1, 1, 0]  # a quote inside a comment opens no string
    assert f["newline"].tolist() == [0] * 8 + [1] + [0] * 5 + [1]
    assert f["line_start"].tolist() == [0] * 9 + [1, 1, 0, 0, 0, 0]
    g = text_features("f(')')\n")  # a bracket inside a string does not count
    assert g["bracket_depth"].tolist() == [0, 1, 1, 1, 1, 0, 0]


def test_interpretable_unit_search_finds_a_planted_unit():
    text = ("def f(x):\n    if x:\n        return (x, [1, 2])\n    s = 'a b'\n" * 8)
    T, H = len(text), 40
    rng = np.random.default_rng(1)
    c = rng.normal(size=(T, H)).astype(np.float32)
    column = text_features(text)["column"]
    c[:, 17] = -0.1 * column + rng.normal(scale=0.1, size=T)  # unit 17 counts the position in the line
    rec = Recording(text, "lstm", {(0, 0): {"c": c, "h": rng.normal(size=(T, H)).astype(np.float32)}})
    found = interpretable_units(rec, per_feature=2)
    best = [u for u in found if u.feature == "column"][0]
    assert (best.unit, best.quantity, best.layer) == (17, "c", 0)
    assert best.r < -0.95 and best.score > 0.95
    assert found[0] is best  # the best of all features
    assert max(u.score for u in found if u.unit != 17) < 0.5  # random units score low


def test_gate_saturation_counts_by_hand():
    rec = synthetic(T=10, H=2)
    f = rec.quantities[0, 0]["f"]
    f[:, 0] = [0.05, 0.05, 0.05, 0.5, 0.5, 0.5, 0.5, 0.95, 0.95, 0.95]  # 3 left, 3 right
    f[:, 1] = 0.99
    g = rec.quantities[0, 0]["g"]  # tanh gate: saturated below -0.8 and above 0.8
    g[:, 0] = [-0.9] * 4 + [0.0] * 6
    sats = {s.gate: s for s in gate_saturation(rec)}
    assert sats["f"].left.tolist() == [0.3, 0.0] and sats["f"].right.tolist() == [0.3, 1.0]
    assert sats["f"].right_all == pytest.approx(0.65)
    assert sats["g"].left[0] == pytest.approx(0.4)
    assert set(sats) == {"i", "f", "g", "o"}


# ----- the page: recorded values drive the colours; self-contained ----------------------------------------
def span_colours(page):
    return re.findall(r'<span data-t="\d+" style="background:(rgb\(\d+,\d+,\d+\))">', page)


def test_changing_one_gate_value_changes_that_characters_colour():
    rec = synthetic()
    before = span_colours(render_page(rec, quantity="f", unit=3))
    assert before[12] == color(float(rec.quantities[0, 0]["f"][12, 3]), "f")
    rec.quantities[0, 0]["f"][12, 3] = 0.01 if rec.quantities[0, 0]["f"][12, 3] > 0.5 else 0.99
    after = span_colours(render_page(rec, quantity="f", unit=3))
    assert len(before) == len(after) == len(rec.text)
    assert [k for k, (a, b) in enumerate(zip(before, after)) if a != b] == [12]


def test_colour_map_ends_and_middle():
    assert color(0.5, "f") == "rgb(255,255,255)" and color(0.0, "h") == "rgb(255,255,255)"
    assert color(1.0, "i") == "rgb(255,64,64)" and color(-1.0, "h") == "rgb(64,140,255)"
    assert color(50.0, "c") == "rgb(255,64,64)"  # c is squashed by tanh, as in Karpathy et al.


def test_page_is_self_contained_and_embeds_the_recorded_values():
    rec = synthetic(cell="gru")
    page = render_page(rec)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script[^>]+src=|<link[^>]+stylesheet|@import|url\(", page)
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert data["names"] == ["h", "r", "z", "n"] and data["cell"] == "gru"
    e = data["q"]["0,0"]["z"]
    ints = np.frombuffer(base64.b64decode(e["data"]), dtype="u1" if e["bits"] == 8 else "<u2")
    decoded = (e["lo"] + ints * (e["hi"] - e["lo"]) / (2 ** e["bits"] - 1)).reshape(5, len(rec.text)).T
    np.testing.assert_allclose(decoded, rec.quantities[0, 0]["z"], atol=(e["hi"] - e["lo"]) / 255)
    assert "Gate saturation" in page and page.count("<svg") == 3  # one panel per GRU gate


# ----- the figures: recorded values drive the pixels ------------------------------------------------------
def test_changing_one_gate_value_changes_the_lstm_step_frame():
    pytest.importorskip("matplotlib", reason="the figures need matplotlib")
    from rnnlab.viz.figures import lstm_step_frames

    rec = synthetic(T=12, H=4)
    q = rec.quantities[0, 0]
    q["c"][5] = q["f"][5] * q["c"][4] + q["i"][5] * q["g"][5]  # a consistent step
    before = [np.asarray(im) for im in lstm_step_frames(rec, 5)]
    assert len(before) == 6
    q["o"][5, 2] = 1.0 - q["o"][5, 2]
    after = [np.asarray(im) for im in lstm_step_frames(rec, 5)]
    assert [bool((a != b).any()) for a, b in zip(before, after)] == [False] * 5 + [True]  # only the output frame


def test_lstm_step_refuses_an_inconsistent_recording():
    from rnnlab.viz.figures import lstm_step_vectors

    rec = synthetic(T=12, H=4)
    with pytest.raises(ValueError, match="inconsistent"):
        lstm_step_vectors(rec, 5)


# ----- the cost of recurrence: hand-computed and measured -------------------------------------------------
def test_cost_formulas_equal_hand_computed_values():
    # LSTM I=3, H=2, T=5, B=1: params 4*2*(3+2+2) = 56; forward 2*5*1*4*2*(3+2) = 400;
    # backward 2*400 - 2*1*4*2*2 = 768; memory 5*(3 + 7*2) = 85 floats
    assert vars(recurrent_cost("lstm", 3, 2, 5)) == dict(params=56, forward_flops=400, backward_flops=768,
                                                         activation_floats=85)
    # tanh RNN I=3, H=2, T=5, B=2: params 2*(3+2+2) = 14; forward 2*5*2*2*5 = 200; memory 2*(15 + 6*2) = 54
    assert vars(recurrent_cost("rnn", 3, 2, 5, B=2)) == dict(params=14, forward_flops=200, backward_flops=384,
                                                            activation_floats=54)
    # GRU I=3, H=2, T=5: memory 5*(3 + 8*2) = 95
    assert recurrent_cost("gru", 3, 2, 5).activation_floats == 95
    # feed-forward on 5*3 inputs to 2 units: params 2*16 = 32, forward 2*15*2 = 60, memory 15 + 2 = 17
    assert vars(feedforward_cost(3, 2, 5)) == dict(params=32, forward_flops=60, backward_flops=60,
                                                   activation_floats=17)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_cost_formulas_equal_a_measured_run(cell, layers):
    assert measure(cell, 3, 4, 6, B=2, layers=layers) == recurrent_cost(cell, 3, 4, 6, B=2, layers=layers)
    assert measure_feedforward(3, 4, 6, B=2) == feedforward_cost(3, 4, 6, B=2)


# ----- the commands on a tiny checkpoint ------------------------------------------------------------------
def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_command_writes_the_page(tiny_run, tmp_path, capsys):
    text = tmp_path / "in.py"
    text.write_text(TINY_TEXT[:300], encoding="utf-8")
    code, out, err = run_cli(capsys, "inspect", tiny_run, "--text", text, "--out", tmp_path / "p.html")
    assert code == 0, err
    page = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert len(span_colours(page)) == 300 and "tracks" in out
    code, _, err = run_cli(capsys, "inspect", tiny_run, "--prime", "def f(x):\\n", "--quantity", "f", "--unit",
                           "3", "--out", tmp_path / "q.html")
    assert code == 0, err
    assert '"initial":{"layer":0,"direction":0,"quantity":"f","unit":3}' in (tmp_path / "q.html").read_text()


@pytest.mark.parametrize("argv, fragment", [
    (["--prime", "def \u00e9t\u00e9"], "never saw"),
    (["--prime", "def f", "--quantity", "z"], "--quantity 'z'"),
    (["--prime", "def f", "--layer", "3"], "--layer 3"),
    (["--text", "no_such_file.txt"], "no_such_file.txt"),
])
def test_inspect_user_errors_are_one_line(tiny_run, tmp_path, capsys, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "inspect", tiny_run, *argv, "--out", tmp_path / "p.html")
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err


def test_figures_command_writes_pngs_gif_and_cost(tiny_run, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the figures need matplotlib")
    Image = pytest.importorskip("PIL.Image", reason="the GIF needs Pillow")

    code, out, err = run_cli(capsys, "figures", tiny_run, "--prime", "def f(x):\\n", "--step", "4",
                             "--out", tmp_path / "figs")
    assert code == 0, err
    assert "cost formulas equal the measured run" in out
    figs = tmp_path / "figs"
    for name in ["unrolled.png", "cost.png"] + [f"lstm_step_{k}.png" for k in range(6)]:
        assert (figs / name).read_bytes()[:4] == b"\x89PNG", name
    gif = Image.open(figs / "lstm_step.gif")
    assert gif.n_frames == 6
    cost = json.loads((figs / "cost.json").read_text())
    assert all(r["rnn_formula"] == r["rnn_measured"] for r in cost["rows"])
    code, _, err = run_cli(capsys, "figures", tiny_run, "--prime", "def", "--step", "9", "--out", figs)
    assert code == 2 and "--step 9" in err


def test_commands_on_a_tiny_gru(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the figures need matplotlib")
    cfg = tiny_config(max_steps=5)
    cfg.model.rnn.cell = "gru"
    fit(CharLMTask(cfg, text=TINY_TEXT), cfg.train, tmp_path / "gru", progress=False, log=lambda s: None)
    code, _, err = run_cli(capsys, "inspect", tmp_path / "gru", "--prime", "def f(x):\\n", "--quantity", "z",
                           "--out", tmp_path / "g.html")
    assert code == 0, err
    data = re.search(r'"names":\[(.*?)\]', (tmp_path / "g.html").read_text()).group(1)
    assert data == '"h","r","z","n"'
    code, out, err = run_cli(capsys, "figures", tmp_path / "gru", "--prime", "def", "--out", tmp_path / "f")
    assert code == 0, err
    assert "no gate-by-gate LSTM step" in out and (tmp_path / "f" / "unrolled.png").exists()
    assert not (tmp_path / "f" / "lstm_step.gif").exists()


def test_page_escapes_markup_and_keeps_one_span_per_character():
    text = "x = '</script><b>&amp;' # \U0001F600\n\tend"
    rng = np.random.default_rng(0)
    rec = Recording(text, "rnn", {(0, 0): {"h": rng.uniform(-1, 1, (len(text), 3)).astype(np.float32)}})
    page = render_page(rec)
    assert len(span_colours(page)) == len(text)
    assert "<b>" not in page.split('<div id="text">')[1].split("</div>")[0]
    payload = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert json.loads(payload)["chars"] == list(text)
    assert "nothing to saturate" in page  # a plain RNN has no gates
