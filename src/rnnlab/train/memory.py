"""The memory experiment: can a tanh RNN, a GRU and an LSTM of the same size remember across T steps?

For each delay T and each cell, a MemoryNet with (nearly) the same number of parameters is trained by the one
loop (`fit`) for the same number of steps on the copy-memory problem (rnnlab.data.memory), then scored on a
fixed validation set: accuracy on the recalled symbols (chance 1/K).

Why the tanh RNN should fail at long delays (Bengio, Simard & Frasconi 1994; Hochreiter 1991): the gradient
reaching h_t from a loss at step s > t is a product of s - t Jacobians diag(1 - h^2) W_hh, whose norm shrinks
geometrically when the largest singular value is below 1 (and tanh saturation makes it so). The LSTM's cell
state is updated additively, c_t = f_t * c_{t-1} + i_t * g_t, so dc_t/dc_{t-1} = diag(f_t): with forget gates
near 1 the gradient crosses many steps. `state_gradient_norms` measures this directly: ||dL/dh_t|| for every t
(and ||dL/dc_t|| for the LSTM), where L is the loss on the recalled symbols.

How the gradients are taken: the trained layer's weights are copied into the matching rnnlab cell and the
sequence is run step by step (the reference semantics); each h_t (c_t) is the very tensor that feeds both the
next step and the read-out, so `retain_grad` gives the total derivative dL/dh_t through every later step. (The
recorded states of a layer's Trace are stacked copies: their gradient would be the read-out path only.) The
loop is checked to reproduce the layer's logits.
"""

from __future__ import annotations

import copy
import csv
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cells import GRUCell, LSTMCell, MinGRUCell, MinLSTMCell, RNNCell
from ..data.memory import CopyMemoryBatches, MemoryBatch, copy_memory_batch
from ..models.memory import MemoryNet, recurrent_parameters
from ..viz.plots import memory_png
from .config import TrainConfig
from .loop import fit
from .task import StepLoss, Task

__all__ = [
    "MemoryConfig", "MemoryResult", "MemoryTask", "format_table", "matched_hidden_sizes",
    "recall_loss", "run_memory_experiment", "save_memory_result", "state_gradient_norms",
]

CELL_CLASSES = {"rnn": RNNCell, "gru": GRUCell, "lstm": LSTMCell, "mingru": MinGRUCell, "minlstm": MinLSTMCell}


@dataclass
class MemoryConfig:
    """The experiment. Defaults: the documented run (docs/INSPECT.md), 13 minutes on one thread of a shared CPU."""

    delays: list[int] = field(default_factory=lambda: [10, 30, 100, 300])  # T
    cells: list[str] = field(default_factory=lambda: ["rnn", "gru", "lstm"])
    symbols: int = 1          # n symbols to remember (1: the pure "remember one symbol across T steps")
    alphabet: int = 8         # K: chance accuracy is 1/K
    lstm_hidden: int = 32     # sets the parameter budget: the LSTM's count; the others get the H that matches
    batch: int = 32
    steps: int = 2000         # the same for every cell and delay
    lr: float = 3e-3
    clip: float = 1.0
    val_sequences: int = 500  # fixed validation set per delay
    grad_delay: int = 300     # the delay at which ||dL/dh_t|| is measured (at init and after training)
    chrono: bool = True       # gated cells start with gate time scales up to T + 2n (models/memory.py)
    seed: int = 0

    def check(self) -> None:
        bad = [c for c in self.cells if c not in CELL_CLASSES]
        if bad:
            raise ValueError(f"memory experiment: unknown cell(s) {bad}; expected one of {', '.join(CELL_CLASSES)}")
        if not self.delays or min(self.delays) < 1:
            raise ValueError(f"memory experiment: delays must be integers >= 1, got {self.delays}")
        for name in ("symbols", "lstm_hidden", "batch", "steps", "val_sequences"):
            if getattr(self, name) < 1:
                raise ValueError(f"memory experiment: {name} must be >= 1, got {getattr(self, name)}")
        if self.alphabet < 2:
            raise ValueError(f"memory experiment: alphabet must be >= 2, got {self.alphabet}")

    @property
    def vocab(self) -> int:  # blank, K symbols, delimiter
        return self.alphabet + 2

    @property
    def classes(self) -> int:  # blank and K symbols
        return self.alphabet + 1


def matched_hidden_sizes(cfg: MemoryConfig) -> dict[str, int]:
    """H per cell whose MemoryNet parameter count is closest to the LSTM's with H = cfg.lstm_hidden."""
    budget = recurrent_parameters("lstm", cfg.vocab, cfg.lstm_hidden, cfg.classes)
    return {c: min(range(1, 8 * cfg.lstm_hidden + 16),
                   key=lambda h: abs(recurrent_parameters(c, cfg.vocab, h, cfg.classes) - budget))
            for c in cfg.cells}


def recall_loss(logits: Tensor, batch: MemoryBatch, reduction: str = "mean") -> Tensor:
    """Cross-entropy on the recalled symbols only (the blanks before them are trivial)."""
    r = batch.recall
    return F.cross_entropy(logits[:, r].reshape(-1, logits.shape[-1]), batch.y[:, r].reshape(-1),
                           reduction=reduction)


class MemoryTask(Task):
    """Copy memory at one delay for one cell: what `fit` needs."""

    name = "memory"
    unit = "seq"
    metrics = ("loss", "acc")
    monitor = "val_loss"
    plot = ("acc", "accuracy on the recalled symbols")

    def __init__(self, cfg: MemoryConfig, cell: str, delay: int, hidden: int, *, backend: str = "auto") -> None:
        self.cfg, self.cell, self.delay, self.hidden = cfg, cell, delay, hidden
        torch.manual_seed(cfg.seed)
        chrono = delay + 2 * cfg.symbols if cfg.chrono else None
        self.model = MemoryNet(cell, cfg.vocab, hidden, cfg.classes, backend=backend, chrono=chrono)
        self.batches = CopyMemoryBatches(cfg.batch, delay, cfg.symbols, cfg.alphabet, seed=cfg.seed)
        g = torch.Generator().manual_seed(10_000 + cfg.seed)  # never a training batch's seed
        self.val = copy_memory_batch(cfg.val_sequences, delay, cfg.symbols, cfg.alphabet, g)

    def step_loss(self, batch: MemoryBatch, state: Any) -> StepLoss:
        return StepLoss(recall_loss(self.model(batch.x), batch), None, batch.x.shape[0])

    def evaluate(self) -> dict[str, float]:
        logits = self.model(self.val.x)
        r = self.val.recall
        acc = (logits[:, r].argmax(-1) == self.val.y[:, r]).float().mean().item()
        return {"loss": recall_loss(logits, self.val).item(), "acc": acc}

    def config_dict(self) -> dict[str, Any]:
        return {"task": "memory", "cell": self.cell, "delay": self.delay, "hidden": self.hidden, **asdict(self.cfg)}


def state_gradient_norms(model: MemoryNet, batch: MemoryBatch) -> dict[str, list[float]]:
    """Mean over sequences of ||dL_b/dh_t|| for every step t (and ||dL_b/dc_t|| for the LSTM), where L_b is
    sequence b's summed cross-entropy on its recalled symbols. See the module docstring for the method."""
    rnn = model.rnn
    cell = CELL_CLASSES[model.cell](rnn.input_size, rnn.hidden_size)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in rnn.state_dict().items()})
    x = F.one_hot(batch.x, model.vocab).float()  # (B, T, V)
    B, T = batch.x.shape
    h = torch.zeros(B, rnn.hidden_size)
    state: Any = (h, torch.zeros(B, rnn.hidden_size)) if model.cell == "lstm" else h
    hs, cs = [], []
    for t in range(T):
        state = cell(x[:, t], state)
        h = state[0] if model.cell == "lstm" else state
        h.retain_grad()
        hs.append(h)
        if model.cell == "lstm":
            state[1].retain_grad()
            cs.append(state[1])
    logits = model.head(torch.stack(hs, 1))  # (B, T, C)
    with torch.no_grad():
        reference = model(batch.x)
    if not torch.allclose(logits, reference, atol=1e-4):  # the loop must be the layer's computation
        raise AssertionError("state_gradient_norms: the step loop does not reproduce the layer's logits")
    model.zero_grad(set_to_none=True)
    recall_loss(logits, batch, reduction="sum").backward()
    model.zero_grad(set_to_none=True)
    out = {"h": [float(v.grad.norm(dim=1).mean()) for v in hs]}
    if cs:
        out["c"] = [float(v.grad.norm(dim=1).mean()) for v in cs]
    return out


@dataclass
class MemoryResult:
    config: dict
    hidden: dict[str, int]
    params: dict[str, int]
    rows: list[dict]                 # one per (delay, cell): accuracy, loss, time
    grad_norms: dict[str, dict]      # cell -> {"init": {"h": [...], "c": [...]}, "trained": {...}}


def run_memory_experiment(cfg: MemoryConfig, log: Callable[[str], None] = print) -> MemoryResult:
    """Train every (delay, cell) pair with the same step budget; measure gradient norms at cfg.grad_delay."""
    cfg.check()
    hidden = matched_hidden_sizes(cfg)
    params = {c: recurrent_parameters(c, cfg.vocab, h, cfg.classes) for c, h in hidden.items()}
    log("parameters: " + ", ".join(f"{c} H={hidden[c]}: {params[c]:,}" for c in cfg.cells))
    rows, grads = [], {}
    delays = sorted(set(cfg.delays) | {cfg.grad_delay})
    for delay in delays:
        for cell in cfg.cells:
            task = MemoryTask(cfg, cell, delay, hidden[cell])
            initial = copy.deepcopy(task.model)
            tc = TrainConfig(lr=cfg.lr, clip=cfg.clip, max_steps=cfg.steps, max_time=None, warmup_steps=50,
                             eval_every=max(1, cfg.steps // 5), patience=None, seed=cfg.seed)
            t0 = time.perf_counter()
            r = fit(task, tc, None, progress=False, log=lambda s: None)
            seconds = time.perf_counter() - t0
            if delay in cfg.delays:
                rows.append({"delay": delay, "cell": cell, "hidden": hidden[cell], "params": params[cell],
                             "steps": r.step, "val_acc": r.last["val_acc"], "val_loss": r.last["val_loss"],
                             "best_val_acc": max(r.last["val_acc"], r.best.get("val_acc", 0.0)),
                             "chance": 1 / cfg.alphabet, "seconds": round(seconds, 1)})
                log(f"T={delay:4d} {cell:4s} H={hidden[cell]:3d}  accuracy {r.last['val_acc']:.3f}  "
                    f"loss {r.last['val_loss']:.3f}  ({seconds:.0f} s)")
            if delay == cfg.grad_delay:
                g = torch.Generator().manual_seed(20_000 + cfg.seed)
                probe = copy_memory_batch(min(64, cfg.val_sequences), delay, cfg.symbols, cfg.alphabet, g)
                grads[cell] = {"init": state_gradient_norms(initial, probe),
                               "trained": state_gradient_norms(task.model, probe)}
    return MemoryResult(asdict(cfg), hidden, params, rows, grads)


def save_memory_result(result: MemoryResult, out: str | Path) -> list[Path]:
    """results.json (everything), results.csv (the table) and memory.png (the plot, when matplotlib is
    installed) in `out`; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(result.rows[0]))
        w.writeheader()
        w.writerows(result.rows)
    png = memory_png(result, out / "memory.png")  # None without matplotlib (the optional plot extra)
    return [out / "results.json", out / "results.csv"] + ([png] if png else [])


def format_table(result: MemoryResult) -> str:
    """A Markdown table: accuracy per cell (columns) and delay (rows)."""
    cells = result.config["cells"]
    head = "| T | " + " | ".join(f"{c} (H={result.hidden[c]}, {result.params[c]:,} p)" for c in cells) + " |"
    lines = [head, "|" + "---|" * (len(cells) + 1)]
    for d in result.config["delays"]:
        accs = {r["cell"]: r["val_acc"] for r in result.rows if r["delay"] == d}
        lines.append(f"| {d} | " + " | ".join(f"{accs[c]:.3f}" for c in cells) + " |")
    if result.grad_norms:
        T = result.config["grad_delay"]
        for when in ("init", "trained"):
            ratio = {c: g[when]["h"][0] / g[when]["h"][-1] for c, g in result.grad_norms.items()}
            lines.append(f"| ||dL/dh_0|| / ||dL/dh_recall|| at T={T}, {when} | "
                         + " | ".join(f"{ratio[c]:.1e}" if c in ratio else "" for c in cells) + " |")
    return "\n".join(lines)

