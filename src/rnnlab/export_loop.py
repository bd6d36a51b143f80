"""ONNX for the layers ONNX has no operator for: each layer-direction as a Scan over the cell's own step.

ONNX's LSTM/GRU/RNN operators carry plain cells (rnnlab.export writes those through the native backend). Layer
norm, projections, the min cells, zoneout, and peepholes and coupled gates in rnnlab's parametrisation have no
such operator, so a layer with any of them is written here, from the same functions the reference backend runs:

    a   = input_part(x_d)                               (T, B, G*H): traced once, outside the loop
    for each step (ONNX Scan over a and the valid-step mask m (T, B, 1)):
        s~  = step(a_t, s)                              the family's step function, traced once
        s~  = zoneout expectation of s and s~           (evaluation: z s + (1 - z) s~, when zoneout > 0)
        s   = where(m_t, s~, s)                         a sequence's state stops at its last valid step
        y_t = where(m_t, h~, 0)                         outputs are zero past each length
    reverse direction: x_d and y_d reversed within each length (ONNX ReverseSequence), as the layers do

and layers stacked and directions concatenated as in layers/base.py (evaluation: no dropout between layers).

How: while torch's exporter traces the module, each such layer's forward is one placeholder operator
(rnnlab::Layer, an autograd.Function with a symbolic; its forward runs the layer eagerly with tracing off, so the
trace sees real outputs). Afterwards every placeholder node is replaced by the graph above, built with onnx's
helpers around the traced pieces (torch.onnx.export of input_part and of one step, batch dynamic), whose weights
become initializers of the outer graph that the Scan bodies read. Time, batch and lengths stay dynamic.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["needs_loop", "placeholders", "expand"]

DOMAIN = "rnnlab"


def needs_loop(layer: nn.Module) -> str | None:
    """Why `layer` cannot be written as ONNX's own LSTM/GRU/RNN operator (then it becomes a Scan), or None."""
    from .kernels import registry
    from .kernels.contract import RunOptions

    cfg = layer.cell_config
    ok, reason = registry.get("native").supports(RunOptions(cfg, in_loop=layer.config.in_loop(False)),
                                                 torch.device("cpu"))
    if ok and cfg.proj_size:
        return "ONNX's LSTM operator has no projection (proj_size)"
    if ok and layer.weight_ih_l0.dtype != torch.float32:
        return "onnxruntime runs ONNX's LSTM/GRU/RNN operators in float32 only"
    return None if ok else reason


@dataclass
class _Call:
    """One placeholder call: the layer and which optional inputs it got (in this order after x)."""

    layer: nn.Module
    batch_first: bool
    lengths: bool
    states: int  # 0 (zeros), 1 (h0) or 2 (h0, c0)
    outputs: tuple = ()  # the eager run's outputs (their types label the node's outputs)


@dataclass
class _Calls:
    calls: dict[int, _Call] = field(default_factory=dict)
    counter: itertools.count = field(default_factory=itertools.count)


class _Placeholder(torch.autograd.Function):
    """The layer as one node of the trace: rnnlab::Layer(x[, lengths][, h0[, c0]]) -> (output, h_n[, c_n])."""

    @staticmethod
    def forward(ctx, key: int, calls: _Calls, *inputs: Tensor):
        call = calls.calls[key]
        x, rest = inputs[0], list(inputs[1:])
        lengths = rest.pop(0) if call.lengths else None
        hx = None if not rest else (tuple(rest) if len(rest) == 2 else rest[0])
        state = torch._C._get_tracing_state()  # the eager run is not part of the trace: the node stands for it
        torch._C._set_tracing_state(None)
        try:
            layer = call.layer
            saved = layer.batch_first
            layer.batch_first = call.batch_first
            try:
                output, h_n = type(layer).forward(layer, x, hx, lengths=lengths)
            finally:
                layer.batch_first = saved
        finally:
            torch._C._set_tracing_state(state)
        outputs = (output, *h_n) if isinstance(h_n, tuple) else (output, h_n)
        call.outputs = outputs
        return outputs

    @staticmethod
    def symbolic(g, key: int, calls: _Calls, *inputs):
        call = calls.calls[key]
        values = g.op(f"{DOMAIN}::Layer", *inputs, key_i=key, outputs=len(call.outputs))
        for v, t in zip(values, call.outputs):  # dtype and rank of the example's, sizes left dynamic
            v.setType(torch._C.TensorType.create_from_tensor(t).with_sizes([None] * t.dim()))
        return values


def _placeholder_forward(layer: nn.Module, calls: _Calls, owner: str):
    def forward(input, hx=None, *, lengths=None, return_states: bool = False, record_gates: bool = False):
        name = type(layer).__name__
        if return_states or record_gates:
            raise ValueError(f"{owner}: {name}'s recordings (return_states / record_gates) are not exported to ONNX; "
                             f"export the forward without them, or use format='pt2'")
        if not isinstance(input, Tensor):
            raise TypeError(f"{owner}: {name} got a {type(input).__name__}; ONNX export takes a padded Tensor "
                            f"with lengths= instead of a PackedSequence")
        batched = input.dim() == 3
        if not batched:  # unbatched (T, I): a batch of one, time-major
            input = input.unsqueeze(1)
            hx = None if hx is None else (tuple(t.unsqueeze(1) for t in hx) if isinstance(hx, (tuple, list))
                                          else hx.unsqueeze(1))
        states = () if hx is None else (tuple(hx) if isinstance(hx, (tuple, list)) else (hx,))
        key = next(calls.counter)
        calls.calls[key] = _Call(layer, layer.batch_first and batched, lengths is not None, len(states))
        extra = () if lengths is None else (torch.as_tensor(lengths),)
        out = _Placeholder.apply(key, calls, input, *extra, *states)
        output, finals = out[0], out[1:]
        if not batched:
            output, finals = output[:, 0], tuple(t[:, 0] for t in finals)
        return output, (finals if layer.mode == "LSTM" else finals[0])

    return forward


@contextlib.contextmanager
def placeholders(layers: list[nn.Module], owner: str):
    """While the module is traced, each of `layers` runs as one rnnlab::Layer node; yields the calls for `expand`."""
    calls = _Calls()
    try:
        for layer in layers:
            layer.forward = _placeholder_forward(layer, calls, owner)
        yield calls
    finally:
        for layer in layers:
            layer.__dict__.pop("forward", None)


# ----- after the trace: each placeholder node becomes the layer's graph ---------------------------------------

class _Piece(nn.Module):
    """A traced piece holds one layer-direction's parameters as buffers (they become named initializers)."""

    def __init__(self, params: dict[str, Tensor], cfg):
        super().__init__()
        self.cfg = cfg
        for role, t in params.items():
            self.register_buffer(role, t.detach())

    @property
    def params(self) -> dict[str, Tensor]:
        return dict(self.named_buffers())


class _InputPart(_Piece):
    def forward(self, x: Tensor) -> Tensor:
        from .cells import input_part

        return input_part(x, self.params, self.cfg)


class _Step(_Piece):
    """One evaluation step as the reference backend takes it: the family's step, then zoneout's expectation."""

    def __init__(self, params: dict[str, Tensor], cfg, masks):
        super().__init__(params, cfg)
        self.masks = masks

    def forward(self, a: Tensor, *state: Tensor):
        from .cells import step_function
        from .kernels.reference import _zoneout

        cfg = self.cfg
        prev = tuple(state) if cfg.is_lstm else state[0]
        new, _ = step_function(cfg)(a, prev, self.params, cfg)
        if self.masks is not None:
            new = _zoneout(prev, new, self.masks.zone_c, self.masks.zone_h, cfg.is_lstm)
        return new if cfg.is_lstm else (new,)


def _trace(module: nn.Module, example: tuple, inputs: list[str], outputs: list[str], dynamic: dict, opset: int):
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice; tracer warnings about sizes
        torch.onnx.export(module, example, buffer, dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue()).graph


class _Builder:
    """Nodes and initializers of one expansion, with names under a prefix."""

    def __init__(self, prefix: str, dtype: int):
        self.prefix, self.dtype = prefix, dtype
        self.nodes: list = []
        self.initializers: list = []
        self._n = itertools.count()

    def name(self, what: str) -> str:
        return f"{self.prefix}{what}_{next(self._n)}"

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, **attrs) -> list[str]:
        from onnx import helper

        outs = [self.name(op_type) for _ in range(outputs)] if isinstance(outputs, int) else outputs
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs

    def const(self, value, what: str, dtype=None) -> str:
        from onnx import numpy_helper
        import numpy as np

        arr = np.asarray(value, dtype=dtype)
        name = self.name(what)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def take(self, graph, prefix: str, rename: dict[str, str]) -> list:
        """`graph`'s nodes with their inputs/outputs renamed (`rename`, else under `prefix`); its initializers go to
        the outer graph under the prefix. Returns the nodes (for a body) without adding them."""
        from onnx import helper

        def fix(name: str) -> str:
            return name if not name else rename.get(name, prefix + name)

        for init in graph.initializer:
            copy = type(init)()
            copy.CopyFrom(init)
            copy.name = prefix + init.name
            self.initializers.append(copy)
        nodes = []
        for node in graph.node:
            copy = type(node)()
            copy.CopyFrom(node)
            copy.name = prefix + node.name
            copy.input[:] = [fix(n) for n in node.input]
            copy.output[:] = [fix(n) for n in node.output]
            if copy.op_type == "LayerNormalization":
                # its mean and deviation are computed in stash_type, float32 unless told: the input's type here
                del copy.attribute[:]
                copy.attribute.extend([a for a in node.attribute if a.name != "stash_type"])
                copy.attribute.append(helper.make_attribute("stash_type", self.dtype))
            nodes.append(copy)
        return nodes


def expand(model, calls: _Calls, opset: int):
    """Replace every rnnlab::Layer node of `model` (an onnx ModelProto) by its layer's graph; returns the model."""
    graph = model.graph
    new_nodes = []
    extra_init = []
    for node in graph.node:
        if node.domain != DOMAIN:
            new_nodes.append(node)
            continue
        key = next(a.i for a in node.attribute if a.name == "key")
        b = _layer_graph(calls.calls[key], list(node.input), list(node.output), f"rnnlab_layer{key}/", opset)
        new_nodes.extend(b.nodes)
        extra_init.extend(b.initializers)
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(extra_init)
    replaced = {o for n in new_nodes for o in n.output}
    keep = [v for v in graph.value_info if v.name not in replaced]
    del graph.value_info[:]
    graph.value_info.extend(keep)
    imports = [o for o in model.opset_import if o.domain != DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(imports)
    return model


def _layer_graph(call: _Call, inputs: list[str], outputs: list[str], prefix: str, opset: int) -> _Builder:
    from onnx import TensorProto, helper

    layer = call.layer
    w = layer.weight_ih_l0
    dtype = {torch.float32: TensorProto.FLOAT, torch.float64: TensorProto.DOUBLE}.get(w.dtype)
    if dtype is None:
        raise ValueError(f"rnnlab.export: ONNX export of {type(layer).__name__} takes float32 or float64 weights, "
                         f"got {w.dtype}; convert the module with .float() first")
    b = _Builder(prefix, dtype)
    x, rest = inputs[0], inputs[1:]
    lengths = rest.pop(0) if call.lengths else None
    states = rest  # h0[, c0], (L*D, B, n)
    is_lstm = layer.mode == "LSTM"
    D, L = layer.num_directions, layer.num_layers

    x = b.op("Transpose", [x], perm=[1, 0, 2])[0] if call.batch_first else x  # (T, B, I)
    shape = b.op("Shape", [x])[0]
    T = b.op("Gather", [shape, b.const(0, "zero", "int64")], axis=0)[0]  # scalar
    B = b.op("Gather", [shape, b.const([1], "one", "int64")], axis=0)[0]  # (1,)
    if lengths is None:
        lens = b.op("Expand", [b.op("Unsqueeze", [T, b.const([0], "axes", "int64")])[0], B])[0]  # (B,) all T
    else:
        lens = b.op("Cast", [lengths], to=TensorProto.INT64)[0]
    steps = b.op("Range", [b.const(0, "start", "int64"), T, b.const(1, "delta", "int64")])[0]  # (T,)
    valid = b.op("Less", [b.op("Unsqueeze", [steps, b.const([1], "axes", "int64")])[0],
                          b.op("Unsqueeze", [lens, b.const([0], "axes", "int64")])[0]])[0]  # (T, B)
    mask = b.op("Unsqueeze", [valid, b.const([2], "axes", "int64")])[0]  # (T, B, 1) bool
    zero = b.const(0.0, "zero", str(w.dtype).removeprefix("torch."))

    from .layers.regularize import draw

    layer_input = x
    finals: list[list[str]] = [[] for _ in range(2 if is_lstm else 1)]
    for l_ in range(L):
        cfg = layer._cells[l_]
        ys = []
        for d in range(D):
            k = l_ * D + d
            params = {role: getattr(layer, name).detach() for role, name in layer._roles[k].items()}
            masks = draw(layer.config, cfg, False, 2, 2, 2, w).step
            piece = f"{prefix}l{l_}d{d}/"
            xd = layer_input if d == 0 else b.op("ReverseSequence", [layer_input, lens], batch_axis=1, time_axis=0)[0]
            I = cfg.input_size
            part = _trace(_InputPart(params, cfg), (torch.zeros(3, 2, I, dtype=w.dtype),), ["x"], ["a"],
                          {"x": {0: "T", 1: "B"}}, opset)
            a = b.name("a")
            b.nodes.extend(b.take(part, piece + "input/", {"x": xd, "a": a}))

            sizes = [cfg.state_size, cfg.hidden_size] if is_lstm else [cfg.hidden_size]
            snames = ["h", "c"][: len(sizes)]
            GH = cfg.num_blocks * cfg.hidden_size
            example = (torch.zeros(2, GH, dtype=w.dtype), *[torch.zeros(2, n, dtype=w.dtype) for n in sizes])
            step = _trace(_Step(params, cfg, masks), example, ["a_t", *snames], [f"{n}_new" for n in snames],
                          {n: {0: "B"} for n in ["a_t", *snames]}, opset)
            body_in = {"a_t": piece + "body/a_t", **{n: piece + f"body/{n}_in" for n in snames}}
            body_out = {f"{n}_new": piece + f"body/{n}_step" for n in snames}
            body_nodes = b.take(step, piece + "step/", {**body_in, **body_out})
            m_t = piece + "body/m_t"
            carried = []
            for n in snames:
                out = piece + f"body/{n}_out"
                body_nodes.append(helper.make_node("Where", [m_t, body_out[f"{n}_new"], body_in[n]], [out],
                                                   name=out))
                carried.append(out)
            y_t = piece + "body/y_t"
            body_nodes.append(helper.make_node("Where", [m_t, body_out["h_new"], zero], [y_t], name=y_t))

            def vi(name, elem, dims):
                return helper.make_tensor_value_info(name, elem, dims)

            body = helper.make_graph(
                body_nodes, piece + "body",
                [vi(body_in[n], dtype, ["B", s]) for n, s in zip(snames, sizes)]
                + [vi(body_in["a_t"], dtype, ["B", GH]), vi(m_t, TensorProto.BOOL, ["B", 1])],
                [vi(c, dtype, ["B", s]) for c, s in zip(carried, sizes)] + [vi(y_t, dtype, ["B", sizes[0]])],
            )
            init = []
            for j, n in enumerate(sizes):
                if states:
                    init.append(b.op("Gather", [states[j], b.const(k, "k", "int64")], axis=0)[0])
                else:
                    shape_j = b.op("Concat", [B, b.const([n], "n", "int64")], axis=0)[0]
                    init.append(b.op("Expand", [zero, shape_j])[0])
            scan_out = b.op("Scan", [*init, a, mask], len(sizes) + 1, body=body, num_scan_inputs=2)
            y = scan_out[-1]
            if d == 1:
                y = b.op("ReverseSequence", [y, lens], batch_axis=1, time_axis=0)[0]
            ys.append(y)
            for j in range(len(sizes)):
                finals[j].append(b.op("Unsqueeze", [scan_out[j], b.const([0], "axes", "int64")])[0])
        layer_input = ys[0] if D == 1 else b.op("Concat", ys, axis=2)[0]
    out = outputs[0]
    if call.batch_first:
        b.op("Transpose", [layer_input], [out], perm=[1, 0, 2])
    else:
        b.op("Identity", [layer_input], [out])
    for j, f in enumerate(finals):
        b.op("Concat", f, [outputs[1 + j]], axis=0)
    return b
