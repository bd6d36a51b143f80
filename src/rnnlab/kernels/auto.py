"""The one rule behind backend="auto": which backend is fastest for a configuration on a device.

`preference` is the only ordering of backends: registry.choose tries them in its order and runs the
first that supports the configuration (a backend it does not name is reachable only by name).

From benchmarks/layers.py on this project's 2-core CPU machine (torch 2.13; see benchmarks/README.md):
- plain LSTM: torch's fused op (oneDNN) is fastest for inference; in training the fused backend is at par
  (0.92-1.02x) -> native for both;
- LSTM with proj_size: oneDNN has no projection, torch falls back to unfused ops; the fused backend (its
  time loops compiled, kernels/fused/compiled.py) measured 0.15-0.69x torch's time in training and
  0.27-0.70x in inference -> fused for both;
- plain GRU / RNN training: torch runs them as a C++ loop of unfused ops with per-step weight-gradient
  matmuls; the fused backend's hand-written BPTT is faster (GRU 0.14-0.72x, RNN 0.33-0.84x, since its compiled
  loop 0.14-0.46x on AVX-512) -> fused; GRU and RNN inference: the compiled loops measured 0.37-0.79x (GRU) and
  0.22-0.51x (RNN, 2026-12-08, two runs) -> fused where they are built, else native (the RNN's loop of torch ops was at
  parity, 0.81-1.17x); but not for a few steps: a fused call costs 70-125 us whatever its size, torch's op
  18-80 us at one step (T = 1, B = 1: RNN 4.5x, GRU 2.9x torch's; generation calls the layer one character at a
  time), and fused wins from about 16 steps (RNN at T = 16: 0.82-1.13x, GRU 0.56x; B does not help) -> native
  below FUSED_MIN_STEPS;
- variants and recording: native cannot serve; fused is faster than reference everywhere -> fused;
- recurrent dropout and zoneout act inside the time loop: native cannot serve them -> fused;
- lengths= (a padded batch) in training on the CPU: torch's packed-sequence backward grows faster than T
  (issue 19: 18.9 s at T=2,000, B=16, H=64, against 0.11 s unpadded) -> fused, whose time is linear in T;
- inside torch.compile: fused, one registered operator that the graph keeps whole (fullgraph=True works);
  torch's kernels run eagerly between graphs there, as torch.nn's do (native.py);
- CUDA: cuDNN for plain cells; otherwise fused (torch ops, launch-bound but far ahead of the reference loop);
- minGRU / minLSTM: only the scan and the reference loop serve them -> scan, provisionally: in this session's
  (loaded machine) runs the scan was ~9x faster than the reference loop at H=16 and at par to 2x slower at
  B*H = 2,048-16,384 (kernels/scan.py); benchmarks/minrnn.py (model mingru-ref) is to settle it. The scan
  declines every classic cell, so it is first for these only.
"""

from __future__ import annotations

import torch

from .contract import RunOptions
from .fused import compiled

__all__ = ["FUSED_MIN_STEPS", "preference"]

FUSED_MIN_STEPS = 16  # plain GRU/RNN inference on CPU: fewer steps run on torch's op (see the module docstring)


def preference(options: RunOptions, device: torch.device) -> tuple[list[str], str]:
    """Backend names, fastest first, and the rule that ordered them."""
    cfg = options.cell
    if cfg.is_min:
        return ["scan", "reference"], "minGRU/minLSTM: the scan (native and fused serve the classic cells only)"
    if torch.compiler.is_compiling():
        return ["fused", "native", "reference"], ("inside torch.compile: fused (one registered operator per "
                                                  "layer-direction; native's kernels would run eagerly between graphs)")
    if options.in_loop:
        return ["fused", "reference"], f"{' / '.join(options.in_loop)}: fused (native cannot apply it in its loop)"
    plain = not cfg.variants and not options.recording
    if not plain:
        return ["fused", "reference"], "variant or recording: fused (native cannot serve it)"
    if device.type == "cuda":
        return ["native", "fused", "reference"], "plain cell on CUDA: cuDNN"
    if options.padded and options.grad and device.type == "cpu":
        return ["fused", "native", "reference"], ("lengths= in training on CPU: fused (torch's packed backward "
                                                  "grows faster than T: benchmarks/README.md)")
    if cfg.is_lstm and cfg.proj_size and device.type == "cpu":
        return ["fused", "native", "reference"], "LSTM with projection on CPU: fused measured faster (torch's oneDNN path has no projection)"
    if cfg.is_lstm:
        return ["native", "fused", "reference"], "plain LSTM on CPU: torch's fused op (oneDNN) measured fastest"
    if options.grad:
        return ["fused", "native", "reference"], "plain GRU/RNN training on CPU: fused BPTT measured faster than torch's"
    if device.type == "cpu" and 0 < options.steps < FUSED_MIN_STEPS:
        return ["native", "fused", "reference"], (f"plain GRU/RNN inference on CPU, under {FUSED_MIN_STEPS} steps: "
                                                  "torch's op (a fused call's fixed cost is larger)")
    if device.type == "cpu" and _compiled_loops():
        return ["fused", "native", "reference"], "plain GRU/RNN inference on CPU: the fused backend's compiled loop measured faster"
    return ["native", "fused", "reference"], "plain GRU/RNN inference without the compiled loops: torch's op (parity with fused)"


def _compiled_loops() -> bool:
    return compiled.status()[0]  # the first call builds the loops (a few seconds)
