"""The cost of recurrence: parameters, matmul FLOPs and the activation memory of backprop through time, as
functions of the sequence length T, computed from a model's sizes and checked against a measured run.

Notation: B batch, T steps, I input features, H hidden units, G gate blocks (RNN 1, GRU 3, LSTM 4). One
plain layer with biases (torch's packing: W_ih (G*H, I), W_hh (G*H, H), b_ih, b_hh). A FLOP is one
multiply or one add, so a (M, K) @ (K, N) product costs 2*M*K*N; elementwise work is not counted.

Parameters (independent of T: the same weights at every step)
    G*H*(I + H + 2)

Forward matmul FLOPs (linear in T): the input part for all steps at once, (T*B, I) @ (I, G*H), and one
recurrent product (B, H) @ (H, G*H) per step
    2*T*B*G*H*I + 2*T*B*G*H*H = 2*T*B*G*H*(I + H)

Backward matmul FLOPs: each forward product (M, K) @ (K, N) needs two of the same size, one for the weight's
gradient and one for its input's, except the first step's recurrent input h_0 (zeros, no gradient needed)
    2 * forward - 2*B*G*H*H

BPTT activation memory (floats kept for backward, in the reference backend; parameters not counted): the
input x (T*B*I, kept by the input matmul) plus, per step, what the step's operations save:
    RNN   h_{t-1} (recurrent matmul; it is also the previous tanh's saved output)       -> B*(T*I + (T+1)*H)
          (the +1: h_T is saved by the last tanh)
    LSTM  h_{t-1}, c_{t-1}, i, f, g, o (sigmoid/tanh outputs), tanh(c_t)                -> B*T*(I + 7H)
    GRU   h_{t-1}, r, z, n, 1 - z, and the recurrent product W_hh h + b_hh (3H: its n-part
          is saved by r * (W_hn h + b_hn), and the slice keeps the whole (B, 3H) buffer) -> B*T*(I + 8H)
Every term grows with T: this is the memory that truncated BPTT bounds.

A feed-forward network reading the whole sequence at once (the tutorial's comparison): the T*I inputs
concatenated, one hidden layer of H tanh units
    parameters H*(T*I + 1)          (linear in T: a weight for every input position)
    forward FLOPs 2*B*T*I*H         activation memory B*(T*I + H) (its input and the tanh output)

`measure` checks the formulas: torch.utils.flop_counter.FlopCounterMode counts the matmul FLOPs of a real
forward and backward on the reference backend, and torch.autograd.graph.saved_tensors_hooks sees every
tensor saved for backward (counted once per storage, parameters excluded).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Cost", "GATES", "cost_figure", "feedforward_cost", "measure", "measure_feedforward", "recurrent_cost"]

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


@dataclass
class Cost:
    params: int
    forward_flops: int
    backward_flops: int
    activation_floats: int

    @property
    def activation_bytes(self) -> int:  # float32
        return 4 * self.activation_floats


def recurrent_cost(cell: str, I: int, H: int, T: int, B: int = 1, layers: int = 1) -> Cost:
    """The formulas of the module docstring, summed over `layers` stacked layers (layer l > 0 reads H)."""
    G = GATES[cell]
    total = Cost(0, 0, 0, 0)
    for layer in range(layers):
        i = I if layer == 0 else H
        fwd = 2 * T * B * G * H * (i + H)
        per_step = {"rnn": None, "lstm": 7 * H, "gru": 8 * H}[cell]
        act = B * (T * i + (T + 1) * H) if cell == "rnn" else B * T * (i + per_step)
        total = Cost(total.params + G * H * (i + H + 2), total.forward_flops + fwd,
                     total.backward_flops + 2 * fwd - 2 * B * G * H * H, total.activation_floats + act)
    return total


def feedforward_cost(I: int, H: int, T: int, B: int = 1) -> Cost:
    """One hidden tanh layer of H units over the T*I concatenated inputs."""
    fwd = 2 * B * T * I * H
    return Cost(H * (T * I + 1), fwd, fwd, B * (T * I + H))  # backward: weight gradient only (input needs none)


def _count(run) -> tuple[int, int, int]:
    """(forward FLOPs, backward FLOPs, saved floats) of run() -> (loss, params, inputs_to_skip)."""
    from torch.utils.flop_counter import FlopCounterMode

    saved: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        saved[s.data_ptr()] = s.nbytes() // t.element_size()
        return t

    with FlopCounterMode(display=False) as counter:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss, params = run()
        forward = counter.get_total_flops()
        loss.backward()
        backward = counter.get_total_flops() - forward
    skip = {p.untyped_storage().data_ptr() for p in params}
    return forward, backward, sum(n for ptr, n in saved.items() if ptr not in skip)


def measure(cell: str, I: int, H: int, T: int, B: int = 1, layers: int = 1, seed: int = 0) -> Cost:
    """The same four numbers measured on a real rnnlab layer (reference backend): a forward, a backward."""
    from ..layers import GRU, LSTM, RNN

    torch.manual_seed(seed)
    layer = {"rnn": RNN, "gru": GRU, "lstm": LSTM}[cell](I, H, layers, backend="reference")
    x = torch.randn(T, B, I, requires_grad=True)

    def run():
        y, _ = layer(x)
        return y.sum(), list(layer.parameters())

    fwd, bwd, act = _count(run)
    return Cost(sum(p.numel() for p in layer.parameters()), fwd, bwd, act)


def measure_feedforward(I: int, H: int, T: int, B: int = 1, seed: int = 0) -> Cost:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(T * I, H), nn.Tanh())
    x = torch.randn(B, T, I)  # data: no gradient needed

    def run():
        return net(x).sum(), list(net.parameters())

    fwd, bwd, act = _count(run)
    return Cost(sum(p.numel() for p in net.parameters()), fwd, bwd, act)


def cost_figure(cell: str, I: int, H: int, path, *, layers: int = 1, B: int = 1,
                lengths=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000), measured=(5, 10, 20, 40)) -> list[dict]:
    """Three panels against T (parameters, forward matmul FLOPs, BPTT activation memory): the model's
    recurrent stack and the feed-forward net, formulas as lines, measured runs as markers. Returns the
    measured rows (formula and measurement side by side)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for T in measured:
        f, m = recurrent_cost(cell, I, H, T, B, layers), measure(cell, I, H, T, B, layers)
        ff, fm = feedforward_cost(I, H, T, B), measure_feedforward(I, H, T, B)
        rows.append({"T": T, "rnn_formula": f, "rnn_measured": m, "ff_formula": ff, "ff_measured": fm})
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    name = f"{layers} x {cell.upper()} {H} (input {I})"
    for ax, (attr, label) in zip(axes, [("params", "parameters"), ("forward_flops", "forward matmul FLOPs"),
                                        ("activation_bytes", "activation memory for BPTT (bytes, float32)")]):
        ax.plot(lengths, [getattr(recurrent_cost(cell, I, H, T, B, layers), attr) for T in lengths], "-",
                color="tab:blue", label=f"recurrent: {name}")
        ax.plot(lengths, [getattr(feedforward_cost(I, H, T, B), attr) for T in lengths], "-", color="tab:orange",
                label=f"feed-forward: T*{I} inputs -> {H} tanh")
        ax.plot([r["T"] for r in rows], [getattr(r["rnn_measured"], attr) for r in rows], "o", mfc="none",
                color="tab:blue", label="measured (reference backend)")
        ax.plot([r["T"] for r in rows], [getattr(r["ff_measured"], attr) for r in rows], "s", mfc="none",
                color="tab:orange", label="measured")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"The cost of recurrence, batch {B}: weights are shared across steps, compute and memory are not",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return rows
