"""`rnnlab export RUN --format onnx|pt2 --out FILE`: a trained run as a file for serving, with a model card beside it.

What each task exports (rnnlab.export does the work; batch and time stay dynamic):
    charlm    the step function with its state in and out: (ids (B, T), h0[, c0]) -> (logits (B, T, C), h_n[, c_n]),
              so that generation runs outside PyTorch (feed the state back); the card holds the vocabulary
    forecast  the network's forward: window (B, lookback) of scaled values -> (B, horizon); the card holds the scaling
    classify  the forward on token ids (B, T) (or features (B, T, F)) and their valid lengths (B,) -> logits (B, classes),
              as `rnnlab predict` runs it on a padded batch; the card holds the labels
    recognize the forward on line images (B, 1, H, W) padded on the right and their widths (B,) -> (log_probs (B, W/4,
              C+1), frames (B,)): CTC scores per frame (class 0 the blank) and each image's valid frames; the card
              holds the alphabet and how to decode (greedy: argmax per frame, merge repeats, drop blanks)
The captioner is not exported by this command yet (its generation feeds words back through a decoder with
attention): use rnnlab.export on the model with an example of your own.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch
from torch import Tensor, nn

from ..export import FORMATS, export
from .common import UserError, run_parser

__all__ = ["add_parser"]

EXAMPLES = """
examples:
  rnnlab export runs/charlm-DATE-TIME --out charlm.onnx          # plain cells as ONNX's LSTM/GRU/RNN, variants as a Scan
  rnnlab export runs/charlm-DATE-TIME --format pt2 --out lm.pt2  # torch.export (load with rnnlab imported)
"""


def add_parser(commands) -> None:
    p = run_parser(commands, "export", help="write a trained run as ONNX or PT2 for serving", epilog=EXAMPLES,
                   description="Export a trained run's model with dynamic batch and length, and write a model card "
                               "(inputs, outputs, vocabulary or scaling) as FILE.json beside it.")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (default) or pt2")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.set_defaults(run=run)


class CharLMStep(nn.Module):
    """The CharLM with its recurrent state as inputs and outputs: (ids, h0[, c0]) -> (logits, h_n[, c_n])."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, *state: Tensor):
        logits, _, new = self.model(x, state=state if len(state) == 2 else state[0], return_state=True)
        return (logits, *new) if isinstance(new, tuple) else (logits, new)


class Logits(nn.Module):
    """A task model's forward without targets: its first output only (inputs: x, and the lengths if it takes them)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, *lengths: Tensor):
        return self.model(x, *lengths)[0]


class Recognize(nn.Module):
    """The CTC recognizer without labels: (images, widths) -> (log_probs (B, T, C+1), frames (B,))."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor, widths: Tensor):
        log_probs, frames, _ = self.model(images, widths)
        return log_probs, frames


def run(args: argparse.Namespace) -> int:
    from ..train import registry

    loaded = registry.load_run(args.checkpoint, args.device)
    task = loaded.checkpoint.config.get("task")
    model = loaded.model
    dev = next(model.parameters()).device
    if task == "charlm":
        rnn = model.rnn
        states = 2 if rnn.mode == "LSTM" else 1
        LD = rnn.num_layers * rnn.num_directions
        sizes = [rnn.cell_config.state_size, rnn.hidden_size][:states]
        example = (torch.zeros(2, 8, dtype=torch.long, device=dev), *[torch.zeros(LD, 2, n, device=dev) for n in sizes])
        dims = [{0: "B", 1: "T"}] + [{1: "B"}] * states
        names = ["logits", "h_n", "c_n"][: 1 + states]
        card = {"task": task, "vocabulary": loaded.vocab.to_json(), "state": "feed h_n (and c_n) back as the "
                "next call's inputs; zeros to start"}
        target = CharLMStep(model)
    elif task == "forecast" and not hasattr(loaded, "scaler"):  # a many-series run (train/panel.py)
        raise UserError(f"rnnlab export: {args.checkpoint} is a many-series forecaster (series id, calendar and "
                        f"covariate inputs, a scaling per series), which this command does not export yet; use "
                        f"rnnlab.export(model, example, path) in Python with its four inputs, or `rnnlab forecast`")
    elif task == "forecast":
        c = model.config
        example, dims, names = (torch.zeros(2, c.lookback, device=dev),), [{0: "B"}], ["forecast"]
        card = {"task": task, "scaling": dataclasses.asdict(loaded.scaler),
                "note_scaling": "the window is scaled values (scaling.transform); the forecast is scaled too"}
        target = Logits(model)
    elif task == "classify":
        x = _classify_example(loaded).to(dev)
        lengths = torch.tensor([x.shape[1], x.shape[1] - 3], device=dev)  # a padded batch: lengths are an input
        example, dims, names = (x, lengths), [{0: "B", 1: "T"}, {0: "B"}], ["logits"]
        card = {"task": task, "labels": list(loaded.labels),
                "lengths": "the valid steps of each sequence (B,), 1 <= lengths <= T; steps past them are "
                           "padding and do not change the logits"}
        target = Logits(model)
    elif task == "recognize":
        from ..models.ctc import BLANK, WIDTH_STRIDE

        c = model.config
        example = (torch.zeros(2, 1, c.height, 16 * WIDTH_STRIDE, device=dev),
                   torch.tensor([16 * WIDTH_STRIDE, 11 * WIDTH_STRIDE], device=dev))
        # the CNN pools the width twice: at least 8 columns leave two frames (torch.export asks for that bound)
        dims, names = [{0: "B", 3: ("W", 2 * WIDTH_STRIDE)}, {0: "B"}], ["log_probs", "frames"]
        card = {"task": task, "alphabet": loaded.vocab.to_json(), "height": c.height, "blank": BLANK,
                "widths": f"each image's width in pixels before right padding (B,); frames = widths // {WIDTH_STRIDE}",
                "decode": "greedy: argmax of log_probs per frame over the first `frames` frames, merge repeats, drop "
                          "the blank (0); class k >= 1 is the alphabet's character k"}
        target = Recognize(model)
    else:
        raise UserError(f"rnnlab export: {task} runs are not exported by this command yet (the captioner generates "
                        f"through a decoder with attention); use rnnlab.export(model, example, path) in Python")
    try:
        card_path = export(target, example, args.out, args.format, dims=dims, card=card, output_names=names,
                       input_names={"classify": ["input", "lengths"], "recognize": ["images", "widths"]}.get(task))
    except ImportError as e:
        raise UserError(str(e)) from None
    print(f"wrote {args.out} ({args.format}) and its model card {card_path}")
    return 0


def _classify_example(loaded) -> Tensor:
    """Two sequences of 8 steps as the classifier reads them: token ids (B, T), or features (B, T, F)."""
    F = loaded.model.config.n_features
    return torch.zeros(2, 8, F) if F else torch.zeros(2, 8, dtype=torch.long)
