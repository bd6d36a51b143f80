"""The native backend: torch's own fused RNN kernels (oneDNN on the CPU for the LSTM, cuDNN on CUDA).

Serves what torch.nn.RNN/LSTM/GRU serve: the plain cells, with or without bias, LSTM projections,
`lengths` (a packed sequence built in the layout's order). No variant, no recording: these kernels expose neither.

`train` is passed as "gradients are being recorded", not as the module's training flag: with dropout 0
inside a single layer-direction it changes no number, and it keeps cuDNN's workspace so that backward
also works for a module in eval mode.
"""

from __future__ import annotations

import sys

import warnings

import torch
from torch import Tensor, _VF

from .contract import Backend, BatchLayout, RunOptions

__all__ = ["BACKEND", "run_native"]

_KERNELS = {"lstm": _VF.lstm, "gru": _VF.gru, "rnn_tanh": _VF.rnn_tanh, "rnn_relu": _VF.rnn_relu}


def run_native(x: Tensor, params: dict[str, Tensor], h0, layout: BatchLayout, options: RunOptions):
    cfg = options.cell
    kernel = _KERNELS[cfg.family]
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if cfg.bias else [])
    if cfg.proj_size > 0:
        names.append("weight_hr")
    flat = [params[n] for n in names]
    train = torch.is_grad_enabled()
    hx = tuple(s.unsqueeze(0) for s in h0) if cfg.is_lstm else h0.unsqueeze(0)  # (1, B, n): one layer
    if torch.compiler.is_exporting():
        _refuse_export(x, layout)

    if layout.lengths is None:
        if cfg.proj_size > 0:
            with warnings.catch_warnings():
                # torch's notice that oneDNN lacks projections (it falls back by itself): nothing to act on
                warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
                out = kernel(x, hx, flat, cfg.bias, 1, 0.0, train, False, False)
        else:
            out = kernel(x, hx, flat, cfg.bias, 1, 0.0, train, False, False)
        y, h_n = out[0], out[1:]
    else:  # a packed sequence in the layout's order (longest first), as torch.nn.utils.rnn would build it
        order, undo = layout.perm, layout.inverse
        if order is not None:
            x = x.index_select(1, order)
            hx = tuple(s.index_select(1, order) for s in hx) if cfg.is_lstm else hx.index_select(1, order)
        data, batch_sizes = _VF._pack_padded_sequence(x, layout.sorted_lengths, False)
        out = kernel(data, batch_sizes, hx, flat, cfg.bias, 1, 0.0, train, False)
        y = _VF._pad_packed_sequence(out[0], batch_sizes, False, 0.0, x.shape[0])[0]
        h_n = out[1:]
        if undo is not None:
            y = y.index_select(1, undo)
            h_n = tuple(s.index_select(1, undo) for s in h_n)
    h_n = (h_n[0][0], h_n[1][0]) if cfg.is_lstm else h_n[0][0]
    return y, h_n, None


def _refuse_export(x: Tensor, layout: BatchLayout) -> None:
    """torch.export decomposes torch's RNN kernels into a loop over the example's steps, and cannot size a packed
    sequence without the lengths' values: refuse both, naming the backends whose one operator takes any T."""
    why = ("lengths= (a packed sequence's size depends on the lengths' values)" if layout.lengths is not None else
           "a dynamic time dimension (export unrolls torch's kernels over the example's steps)"
           if isinstance(x.shape[0], torch.SymInt) else None)
    if why:
        raise RuntimeError(
            f"rnnlab native backend: torch.export cannot capture torch's RNN kernels with {why}; use backend='auto' "
            f"or 'fused' (one registered operator per layer-direction: any T, lengths as a tensor), or rnnlab.export"
            f"(..., format='onnx') for ONNX's own operators")


# Inside torch.compile the native kernels run eagerly, between compiled graphs, as torch.nn.LSTM/GRU/RNN do
# (dynamo does not trace them): traced, inductor's lowering gave the GRU wrong weight gradients (off by ~1 at
# H=4, issue 13). backend="auto" picks the fused backend inside torch.compile instead (auto.py): one operator,
# no graph break, fullgraph=True works.
# The wrapper is made on first use: torch.compiler.disable imports torch._dynamo, 2.3 s at every `import rnnlab`
# (every CLI start, every torchrun worker) when made at import time. It must exist before dynamo traces a call:
# made inside a trace, dynamo traces torch.compiler.disable itself and fullgraph=True failed with torch's
# "function marked as skipped" instead of this reason. So an eager run makes it as soon as torch._dynamo is loaded
# (free then), and a first call inside a trace breaks the graph with the reason (fullgraph=True: an error naming it).
_REASON = ("rnnlab native backend: torch's RNN kernels run eagerly inside torch.compile, as torch.nn's do (a graph "
           "break); use backend='fused' (or 'auto') for a single graph (fullgraph=True)")
_EAGER: list = []


def _eager_native():
    if not _EAGER:
        _EAGER.append(torch.compiler.disable(run_native, reason=_REASON))
    return _EAGER[0]


def _run_eager(*args, **kwargs):
    if not torch.compiler.is_compiling():
        if not _EAGER and "torch._dynamo" in sys.modules:
            _eager_native()
        return run_native(*args, **kwargs)
    if _EAGER:
        return _EAGER[0](*args, **kwargs)
    torch._dynamo.graph_break(msg=_REASON)
    return _eager_native()(*args, **kwargs)


def _supports(options: RunOptions, device: torch.device) -> tuple[bool, str]:
    cfg = options.cell
    if cfg.is_min:
        return False, f"torch has no {cfg.family} kernel (use the scan backend)"
    if cfg.variants:
        return False, f"torch's kernels have no {' / '.join(cfg.variants)}"
    if options.recording:
        return False, "torch's kernels do not expose gates or per-step states (recording was asked for)"
    if options.in_loop:
        return False, f"torch's kernels cannot apply {' / '.join(options.in_loop)} inside their time loop"
    if (device.type == "cpu" and cfg.is_lstm and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.float16):
        return False, ("oneDNN has no float16 LSTM on the CPU (torch.nn.LSTM fails under float16 autocast there: "
                       "'could not create a primitive descriptor'); the fused backend runs it in float32")
    where = "cuDNN" if device.type == "cuda" else f"torch's {device.type} kernel"
    return True, f"plain {cfg.family} runs in torch's own fused RNN op ({where})"


BACKEND = Backend("native", _run_eager, _supports, "torch's fused kernels (oneDNN/cuDNN); plain cells only")
