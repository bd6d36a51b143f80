"""What each backend can serve here, and why not: the text behind `rnnlab.backend_report()`."""

from __future__ import annotations

import torch

from ..cells.config import CellConfig
from .contract import RunOptions
from .fused import compiled
from .registry import BACKENDS, choose

__all__ = ["backend_report"]

_PROBES = {
    "LSTM": RunOptions(CellConfig("lstm", 8, 8)),
    "LSTM proj_size": RunOptions(CellConfig("lstm", 8, 8, proj_size=4)),
    "LSTM peephole+coupled+layer_norm": RunOptions(
        CellConfig("lstm", 8, 8, peephole=True, coupled=True, layer_norm=True)
    ),
    "GRU training": RunOptions(CellConfig("gru", 8, 8)),
    "GRU inference": RunOptions(CellConfig("gru", 8, 8), grad=False),
    "GRU inference, one step (generation)": RunOptions(CellConfig("gru", 8, 8), grad=False, steps=1),
    "GRU layer_norm": RunOptions(CellConfig("gru", 8, 8, layer_norm=True)),
    "RNN tanh": RunOptions(CellConfig("rnn_tanh", 8, 8)),
    "LSTM with record_gates": RunOptions(CellConfig("lstm", 8, 8), record_gates=True),
    "minGRU": RunOptions(CellConfig("mingru", 8, 8)),
    "minLSTM plain": RunOptions(CellConfig("minlstm", 8, 8, log_space=False)),
}


def backend_report(device=None) -> str:
    """A table: for each configuration, the backend "auto" picks on `device` and why; then every backend."""
    device = torch.device(device or "cpu")
    lines = [f"device {device}: the backend backend='auto' picks (rule: rnnlab/kernels/auto.py), and each backend's verdict", ""]
    for label, options in _PROBES.items():
        choice = choose("backend_report", "auto", options, device)[1]
        lines.append(f"{label}: auto -> {choice.name}  ({choice.reason.split(':')[0]})")
        for name, backend in BACKENDS.items():
            ok, reason = backend.supports(options, device)
            lines.append(f"    {name:<10} {'yes' if ok else 'no '}  {reason}")
    lines.append("")
    lines.extend(f"{b.name:<10} {b.summary}" for b in BACKENDS.values())
    if device.type == "cpu":
        ok, why = compiled.status()
        lines.append(f"fused LSTM time loops on the CPU: {'compiled C' if ok else 'torch ops from Python'} ({why})")
    return "\n".join(lines)
