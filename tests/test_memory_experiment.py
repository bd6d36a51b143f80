"""The memory experiment: the copy-memory data, matched parameter budgets, the gradient norms ||dL/dh_t||
against a hand-written BPTT, a model that learns a short delay through `fit`, and the tiny command."""

import importlib.util
import json

import pytest
import torch
import torch.nn.functional as F

from rnnlab.cli import main
from rnnlab.data import DataError
from rnnlab.data.memory import CopyMemoryBatches, copy_memory_batch
from rnnlab.models.memory import MemoryNet, recurrent_parameters
from rnnlab.train import fit
from rnnlab.train.config import TrainConfig
from rnnlab.train.memory import (
    MemoryConfig, MemoryTask, matched_hidden_sizes, recall_loss, run_memory_experiment, save_memory_result,
    state_gradient_norms,
)


def test_copy_memory_layout():
    b = copy_memory_batch(4, delay=6, symbols=2, alphabet=5, generator=torch.Generator().manual_seed(0))
    assert b.x.shape == b.y.shape == (4, 10)  # L = T + 2n
    assert b.recall.tolist() == [False] * 8 + [True] * 2
    assert (b.x[:, 7] == 6).all() and (b.x[:, 2:7] == 0).all() and (b.x[:, 8:] == 0).all()  # delimiter, blanks
    assert torch.equal(b.y[:, 8:], b.x[:, :2]) and (b.y[:, :8] == 0).all()
    assert b.x[:, :2].min() >= 1 and b.x[:, :2].max() <= 5
    with pytest.raises(DataError, match="delay"):
        copy_memory_batch(4, delay=0)


def test_batches_resume_exactly():
    a = CopyMemoryBatches(3, 5, 1, 4, seed=2)
    first = [next(a).x for _ in range(3)]
    b = CopyMemoryBatches(3, 5, 1, 4, seed=2)
    b.load_state_dict({"index": 2})
    assert torch.equal(next(b).x, first[2])


def test_hidden_sizes_match_the_parameter_budget():
    cfg = MemoryConfig()
    hidden = matched_hidden_sizes(cfg)
    counts = {c: sum(p.numel() for p in MemoryNet(c, cfg.vocab, h, cfg.classes).parameters()) for c, h in hidden.items()}
    assert counts == {c: recurrent_parameters(c, cfg.vocab, h, cfg.classes) for c, h in hidden.items()}
    budget = counts["lstm"]
    assert hidden["lstm"] == cfg.lstm_hidden and hidden["rnn"] > hidden["gru"] > hidden["lstm"]
    assert all(abs(n - budget) / budget < 0.03 for n in counts.values()), counts
    for c in ("mingru", "minlstm"):  # no W_hh: the count comes from the cell's own parameter shapes
        net = MemoryNet(c, cfg.vocab, 7, cfg.classes)
        assert sum(p.numel() for p in net.parameters()) == recurrent_parameters(c, cfg.vocab, 7, cfg.classes)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_chrono_gives_the_min_cells_long_time_scales(cell):
    """With chrono=T the keep factor of each unit (1 - z for minGRU, the normalised f for minLSTM), read from the
    layer's own recorded gates at a zero input (pre-activation = bias), starts spread over [1/2, 1 - 1/T)."""
    torch.manual_seed(0)
    net = MemoryNet(cell, 5, 64, 4, chrono=300)
    _, _, trace = net.rnn(torch.zeros(1, 1, 5), record_gates=True)
    keep = (1 - trace.gate("z")) if cell == "mingru" else trace.gate("f")
    assert keep.min() >= 0.5 - 1e-6 and 0.98 < keep.max() < 1 - 1 / 300


def test_gradient_norms_equal_a_hand_written_bptt_for_the_tanh_rnn():
    torch.manual_seed(0)
    V, H, C = 5, 6, 4
    net = MemoryNet("rnn", V, H, C, backend="reference")
    b = copy_memory_batch(3, delay=7, symbols=2, alphabet=3, generator=torch.Generator().manual_seed(1))
    norms = state_gradient_norms(net, b)["h"]
    # forward by hand: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), y_t = W h_t + b
    W_ih, W_hh, b_ih, b_hh = (getattr(net.rnn, n + "_l0").detach() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    W, bias = net.head.weight.detach(), net.head.bias.detach()
    x = F.one_hot(b.x, V).float()
    B, T = b.x.shape
    hs, h = [], torch.zeros(B, H)
    for t in range(T):
        h = torch.tanh(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        hs.append(h)
    # backward by hand: dL/dh_t = W^T dL/dy_t + W_hh^T ((1 - h_{t+1}^2) * dL/dh_{t+1})
    grads, nxt = [None] * T, torch.zeros(B, H)
    for t in reversed(range(T)):
        dy = torch.zeros(B, C)
        if b.recall[t]:
            dy = torch.softmax(hs[t] @ W.T + bias, -1) - F.one_hot(b.y[:, t], C).float()
        g = dy @ W + (nxt * (1 - hs[t + 1] ** 2)) @ W_hh if t + 1 < T else dy @ W
        grads[t], nxt = g, g
    expected = [float(g.norm(dim=1).mean()) for g in grads]
    assert norms == pytest.approx(expected, rel=1e-4, abs=1e-9)
    assert norms[0] < norms[-3]  # the gradient shrinks going back in time


@pytest.mark.parametrize("cell", ["gru", "lstm", "mingru", "minlstm"])
def test_gradient_norms_of_gated_cells(cell):
    torch.manual_seed(0)
    net = MemoryNet(cell, 5, 4, 4, chrono=12)
    b = copy_memory_batch(2, delay=8, symbols=1, alphabet=3)
    g = state_gradient_norms(net, b)
    assert len(g["h"]) == 10 and all(v >= 0 for v in g["h"]) and g["h"][0] > 0
    assert ("c" in g) == (cell == "lstm")
    assert all(p.grad is None for p in net.parameters())  # the probe leaves no gradients behind


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread_module):
    """Tiny models run fastest on one thread (the conftest fixture, for the whole module)."""


def test_an_lstm_learns_a_short_delay_through_fit(one_thread):
    cfg = MemoryConfig(delays=[5], cells=["lstm"], lstm_hidden=16, batch=32, val_sequences=200, symbols=1, alphabet=4)
    task = MemoryTask(cfg, "lstm", 5, 16)
    before = task.evaluate()["acc"]
    r = fit(task, TrainConfig(lr=1e-2, max_steps=150, max_time=None, warmup_steps=10, eval_every=50, patience=None),
            None, progress=False, log=lambda s: None)
    assert before < 0.45 and r.last["val_acc"] > 0.9, (before, r.last)
    assert recall_loss(task.model(task.val.x), task.val).item() == pytest.approx(r.last["val_loss"], rel=1e-5)


def test_tiny_experiment_and_command(tmp_path, capsys, one_thread):
    code = main(["experiment", "memory", "--tiny", "--out", str(tmp_path / "m")])
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads((tmp_path / "m" / "results.json").read_text())
    assert [(r["delay"], r["cell"]) for r in res["rows"]] == [(d, c) for d in (5, 10) for c in ("rnn", "gru", "lstm")]
    assert all(0 <= r["val_acc"] <= 1 for r in res["rows"])
    assert set(res["grad_norms"]) == {"rnn", "gru", "lstm"} and len(res["grad_norms"]["rnn"]["init"]["h"]) == 12
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "m" / "memory.png").read_bytes()[:4] == b"\x89PNG"
    assert "| 10 |" in out
    code = main(["experiment", "memory", "--tiny", "--cells", "mingru", "minlstm", "--out", str(tmp_path / "min")])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "min" / "results.json").read_text())
    assert {r["cell"] for r in res["rows"]} == {"mingru", "minlstm"}
    capsys.readouterr()
    code = main(["experiment", "memory", "--tiny", "--steps", "0", "--out", str(tmp_path / "x")])
    assert code == 2 and "steps must be >= 1" in capsys.readouterr().err
