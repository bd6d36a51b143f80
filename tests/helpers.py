"""Shared test utilities: copying weights, running with gradients, comparing."""

from __future__ import annotations

import itertools

import torch
from torch.nn.utils.rnn import PackedSequence

import rnnlab

TORCH_LAYER = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
RNNLAB_LAYER = {"lstm": rnnlab.LSTM, "gru": rnnlab.GRU, "rnn": rnnlab.RNN}

# Tolerances of the issue: float32 1e-5, float64 1e-10.
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}

LSTM_VARIANTS = [
    dict(peephole=p, coupled=c, layer_norm=ln, proj_size=ps)
    for p, c, ln, ps in itertools.product([False, True], [False, True], [False, True], [0, 3])
]
GRU_VARIANTS = [dict(layer_norm=False), dict(layer_norm=True)]
RNN_VARIANTS = [dict(nonlinearity=n, layer_norm=ln) for n in ("tanh", "relu") for ln in (False, True)]
ALL_VARIANTS = (
    [("lstm", v) for v in LSTM_VARIANTS] + [("gru", v) for v in GRU_VARIANTS] + [("rnn", v) for v in RNN_VARIANTS]
)


def variant_id(family: str, kw: dict) -> str:
    on = [k if v is True else f"{k}={v}" for k, v in kw.items() if v not in (False, 0, "tanh")]
    return family + ("-" + "-".join(on) if on else "")


def flat_state(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def output_tensor(out) -> torch.Tensor:
    return out.data if isinstance(out, PackedSequence) else out


def loss_of(out, state) -> torch.Tensor:
    """A loss touching every output and final state with distinct weights (so no gradient can hide)."""
    total = 0.0
    for k, t in enumerate([output_tensor(out), *flat_state(state)]):
        w = torch.linspace(-1.0, 1.5, t.numel(), dtype=t.dtype, device=t.device).reshape(t.shape)
        total = total + (w * t).sum() * (k + 1) + 0.1 * (t * t).sum()
    return total


def grads(module: torch.nn.Module, inputs: list[torch.Tensor], loss: torch.Tensor) -> dict[str, torch.Tensor]:
    named = dict(module.named_parameters())
    tensors = list(named.values()) + inputs
    gs = torch.autograd.grad(loss, tensors, retain_graph=True)
    out = dict(zip(named, gs[: len(named)]))
    out.update({f"input{k}": g for k, g in enumerate(gs[len(named):])})
    return out


def assert_close_dict(a: dict, b: dict, **tol) -> None:
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=lambda m, k=k: f"{k}: {m}")


def run_cli(capsys, *argv):
    """`rnnlab ARGV...` in this process: (exit code, stdout, stderr)."""
    from rnnlab.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, *fragments):
    """A user error: exit code 2, one line on stderr, no traceback, containing every fragment."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]



def write_review_csv(path, rows: int, words: dict[str, list[str]], spread: int, header=("text", "label")):
    """A toy two-class text CSV: row i has label "pos" (odd i) or "neg" and 1 + i % spread of that label's words
    (cycling from word i), then "film"; `header` names the text and label columns. Returns path."""
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(header))
        for i in range(rows):
            label = "pos" if i % 2 else "neg"
            vocab = words[label]
            w.writerow([" ".join(vocab[(i + k) % len(vocab)] for k in range(1 + i % spread)) + " film", label])
    return path
