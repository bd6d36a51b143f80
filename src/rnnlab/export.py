"""Export a module holding rnnlab layers for serving: ONNX (onnxruntime) or PT2 (torch.export), with a model card.

    rnnlab.export(module, example, "model.onnx")              # ONNX: ONNX's LSTM/GRU/RNN, or a Scan over the step
    rnnlab.export(module, example, "model.pt2", format="pt2")  # torch.export: rnnlab's operators

Both keep the batch and time dimensions of the input dynamic (any length, any batch size), and write a model card
`<path>.json` beside the file: format, versions, inputs and outputs with their dimensions, the rnnlab layers and
anything passed as `card=` (a vocabulary, a scaling).

ONNX. Plain float32 layers run on the native backend while exporting, so torch's exporter writes each as ONNX's
LSTM / GRU / RNN operator (with both directions and every layer, torch.nn's layout); every other layer (peephole,
coupled, layer norm, projection, zoneout, min cells, float64: `export_loop.needs_loop` says why) is written as a
Scan over the cell's own step function (export_loop.py), with the same inputs and outputs. With `kwargs={"lengths": ...}` the
file takes the valid lengths (B,) as an input: each operator gets them as its sequence_lens (the graph sorts the
batch longest first and restores its order, as rnnlab's layout does); outputs are zero past each sequence's length
and the final states are each sequence's last valid step, as rnnlab returns them. The lengths are checked on the
example only: the file does not check that 1 <= lengths <= T. Recordings (record_gates, return_states) are
refused with an error naming format="pt2". Needs the `onnx` extra (pip install 'rnnlab[onnx]').

PT2. torch.export captures the fused backend's registered operators (kernels/fused/ops.py), one per
layer-direction, so every cell and variant exports, with `lengths=` too (the operator takes them as a tensor; the
program checks 1 <= lengths <= T when it runs); the file runs in PyTorch with rnnlab imported (the
operators are registered on import): `import rnnlab; torch.export.load(path).module()(x)`.

Why not torch.jit.trace: a trace keeps the Python loop over time at the example's length (rnnlab refuses it, see
kernels/contract.py refuse_tracing); the ONNX route here traces only torch's own RNN operators and one step of a
cell, which carry no such loop.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["FORMATS", "export"]

FORMATS = ("onnx", "pt2")
ONNX_OPSET = 17  # LayerNormalization (17) is the newest operator the files use; onnxruntime >= 1.14 runs them


class _Forward(nn.Module):
    """module(*inputs) as a plain positional forward (exporters pass no keyword-only arguments): the last
    len(keywords) inputs go to the module as those keywords (lengths=)."""

    def __init__(self, module: nn.Module, keywords: tuple[str, ...] = ()):
        super().__init__()
        self.module, self.keywords = module, keywords

    def forward(self, *inputs):
        k = len(inputs) - len(self.keywords)
        return self.module(*inputs[:k], **dict(zip(self.keywords, inputs[k:])))


def _layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    from .layers.base import RecurrentBase

    return [(name or type(m).__name__, m) for name, m in module.named_modules() if isinstance(m, RecurrentBase)]


def _default_dims(module: nn.Module) -> dict[int, str]:
    """The example's dynamic dimensions: a layer's own layout, else batch-first (B, T, ...) as rnnlab's models."""
    from .layers.base import RecurrentBase

    if isinstance(module, RecurrentBase) and not module.batch_first:
        return {0: "T", 1: "B"}
    return {0: "B", 1: "T"}


@contextlib.contextmanager
def _native(layers: list[nn.Module]):
    """`layers` on the native backend while the module is traced (restored after): torch's exporter writes each as
    ONNX's LSTM / GRU / RNN operator."""
    before = [layer.backend for layer in layers]
    try:
        for layer in layers:
            layer.backend = "native"
        yield
    finally:
        for layer, b in zip(layers, before):
            layer.backend = b


def export(module: nn.Module, example: Tensor | tuple, path: str | Path, format: str = "onnx", *,
           dims: dict[int, str | tuple[str, int]] | list | None = None, card: dict | None = None,
           output_names: list[str] | None = None, kwargs: dict[str, Tensor] | None = None,
           input_names: list[str] | None = None) -> Path:
    """Write `module` (run on `example`) to `path` as ONNX or PT2, and its model card to `<path>.json`.

    example  an input tensor, or a tuple of inputs
    kwargs   keyword inputs of the module's forward, also inputs of the file under their own names: a layer's
             {"lengths": lengths (B,)} exports a padded batch (ONNX: the operators' sequence_lens)
    dims     which dimensions are dynamic, {index: name} for the first input, or a list of such dicts (or None),
             one per input, positional then keyword (a name shared between inputs is one size, e.g. "B" of the
             input and of a state); default {0: "T", 1: "B"} for a time-major rnnlab layer, else {0: "B", 1: "T"}
             (batch-first, as rnnlab's models), and {0: "B"} for a keyword input of one dimension (lengths);
             a name may be (name, least size) where a size below it cannot run (an image's width through pooling);
             otherwise PT2 accepts any size from 1
    card     extra entries for the model card (vocabulary, scaling, ...)
    input_names, output_names  the file's names for the positional inputs and the outputs (default "input",
             "input_1", ...; "output", "output_1", ...); keyword inputs keep their own names
    Returns the model card's path.

    Example (a padded batch; the ONNX file takes "input" (T, B, I) and "lengths" (B,) int64):
        >>> rnnlab.export(rnnlab.GRU(8, 16), torch.randn(5, 2, 8), "gru.onnx", kwargs={"lengths": torch.tensor([5, 3])})
    """
    owner = "rnnlab.export"
    if format not in FORMATS:
        raise ValueError(f"{owner}: format must be one of {FORMATS}, got {format!r}")
    inputs = example if isinstance(example, tuple) else (example,)
    if not inputs or not all(isinstance(t, Tensor) for t in inputs):
        raise TypeError(f"{owner}: expected example to be a Tensor or a tuple of Tensors, got {type(example).__name__}")
    kwargs = dict(kwargs or {})
    if not all(isinstance(t, Tensor) for t in kwargs.values()):
        raise TypeError(f"{owner}: expected kwargs to map names to Tensors (e.g. {{'lengths': torch.tensor([5, 3])}}), "
                        f"got {kwargs!r}")
    n_positional = len(inputs)
    inputs = (*inputs, *kwargs.values())
    if dims is None:
        dims = _default_dims(module)
    per_input = list(dims) if isinstance(dims, list) else [dims]
    per_input = [dict(d or {}) for d in per_input] + [{}] * (n_positional - len(per_input))
    per_input += [{0: "B"} if t.dim() == 1 else {} for t in list(kwargs.values())[len(per_input) - n_positional:]]
    least = {n[0]: int(n[1]) for d in per_input for n in d.values() if isinstance(n, tuple)}  # name -> least size
    per_input = [{i: n[0] if isinstance(n, tuple) else n for i, n in d.items()} for d in per_input]
    for k, (t, d) in enumerate(zip(inputs, per_input)):
        if any(i >= t.dim() for i in d):
            raise ValueError(f"{owner}: dims {d} do not fit input {k}'s shape {tuple(t.shape)}")
        small = {name: t.shape[i] for i, name in d.items() if t.shape[i] < 2}
        if small:  # torch.export would specialise a size of 0 or 1 into a constant
            raise ValueError(f"{owner}: the example's dynamic dimensions must be at least 2, got {small}; "
                             f"use a longer example with a larger batch")
    path = Path(path)
    wrapper = _Forward(module, tuple(kwargs))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            outputs = wrapper(*inputs)
        flat, _ = torch.utils._pytree.tree_flatten(outputs)
        out_names = list(output_names or []) + [f"output_{k}" for k in range(len(output_names or []), len(flat))]
        if not output_names:
            out_names[0] = "output"
        in_names = list(input_names or [])[:n_positional]
        in_names += ["input" if k == 0 else f"input_{k}" for k in range(len(in_names), n_positional)] + list(kwargs)
        path.parent.mkdir(parents=True, exist_ok=True)
        if format == "pt2":
            named = {}
            shapes = tuple({i: named.setdefault(n, torch.export.Dim(n, min=least.get(n, 1))) for i, n in d.items()}
                           or None
                           for d in per_input)
            # size-oblivious: the example's sizes (>= 2) are not taken for "not 1", so a batch of one (the usual
            # serving call) and a single step run too (without it, the recognizer's reshapes guarded on B != 1)
            import torch.fx.experimental._config as fx_config

            with fx_config.patch(backed_size_oblivious=True):
                program = torch.export.export(wrapper, inputs, dynamic_shapes=(shapes,))  # forward(*inputs): one group
            torch.export.save(program, str(path))
        else:
            try:
                import onnx  # noqa: F401  (torch's exporter needs it)
            except ImportError as e:
                raise ImportError(f"{owner}: format='onnx' needs the onnx package: pip install 'rnnlab[onnx]'") from e
            import io

            import onnx

            from .export_loop import DOMAIN, expand, needs_loop, placeholders

            layers = [layer for _, layer in _layers(module)]
            loops = [layer for layer in layers if needs_loop(layer)]
            buffer = io.BytesIO()
            with _native([m for m in layers if m not in loops]), placeholders(loops, owner) as calls, \
                    torch.no_grad(), warnings.catch_warnings():
                # rnnlab's own shape checks and its lengths' layout read sizes in Python while the exporter traces;
                # what the graph keeps is torch's RNN operators (or rnnlab's placeholders), the lengths and the
                # sizes as operators
                warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"rnnlab\.")
                # torch's notice that a batch other than the example's may fail: the layers make their initial
                # state from the input's batch size inside the graph (tested at other batch sizes)
                warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
                warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
                torch.onnx.export(wrapper, inputs, buffer, dynamo=False, input_names=in_names,
                                  output_names=out_names, opset_version=ONNX_OPSET, custom_opsets={DOMAIN: 1},
                                  dynamic_axes={n: d for n, d in zip(in_names, per_input) if d})
            model = onnx.load_from_string(buffer.getvalue())
            if loops:
                model = expand(model, calls, ONNX_OPSET)
                onnx.checker.check_model(model)
            onnx.save(model, str(path))
    finally:
        module.train(was_training)
    card_path = path.with_name(path.name + ".json")
    from . import __version__

    def describe(name, t, dynamic):
        return {"name": name, "dtype": str(t.dtype).replace("torch.", ""),
                "shape": [dynamic.get(d, n) for d, n in enumerate(t.shape)]}

    entry = {
        "format": format, "file": path.name, "rnnlab": __version__, "torch": torch.__version__,
        "inputs": [describe(n, t, d) for n, t, d in zip(in_names, inputs, per_input)],
        "outputs": [describe(n, t, {}) for n, t in zip(out_names, flat)],
        "layers": [f"{name}: {layer!r}" for name, layer in _layers(module)],
        "load": ("onnxruntime.InferenceSession(file)" if format == "onnx"
                 else "import rnnlab; torch.export.load(file).module()  (rnnlab registers its operators)"),
        "note": "output shapes are the example's; the dimensions named in inputs are dynamic",
        **(card or {}),
    }
    card_path.write_text(json.dumps(entry, indent=2) + "\n")
    return card_path
