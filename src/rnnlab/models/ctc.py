"""CTCRecognizer: reads a line image left to right, a bidirectional rnnlab layer over the image's columns,
trained with connectionist temporal classification (Graves et al., 2006); and the two CTC decoders.

    x        (B, 1, H=32, W)  ink 1 on background 0, padded on the right to the batch's widest image
    f        = CNN(x)                         (B, F, H/8, W/4)   3 conv blocks; pooling halves H three
                                                                 times and W twice
    z_t      = W_in [f[:, :, :, t] flattened over height]        (B, T=W/4, E)   one vector per column
    h_t      = BiRNN(z)_t                     (B, T, 2R)        config.rnn: bidirectional by default, lengths=
    scores_t = W_out h_t + b                  (B, T, C+1)       class 0 is the CTC blank
    loss     = CTCLoss(log_softmax(scores), labels)   mean over the batch of per-label-character loss

A character at column t depends on the columns on both sides (the bidirectional layer), as in the hybrid
handwriting recognisers of Graves & Schmidhuber. CTC needs T >= L + (number of adjacent repeated labels)
frames, so an image of width W can carry at most that many characters: `min_width(label)` says the width.

Decoding: `greedy_decode` (best path: argmax per frame, merge repeats, drop blanks) and
`prefix_beam_search` (the sum over all paths of each prefix, kept for the `beam` best prefixes; with a
beam as large as the number of prefixes it is exact, which the tests check against brute force).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._fields import opt
from .._validate import check_positive_ints
from ..layers import RecurrentConfig

__all__ = ["CTCRecognizer", "CTCRecognizerConfig", "WIDTH_STRIDE", "greedy_decode", "min_frames",
           "prefix_beam_search"]

WIDTH_STRIDE = 4   # image columns per frame (two 2x poolings along the width)
BLANK = 0


@dataclass(slots=True)
class CTCRecognizerConfig:
    num_classes: int = opt(0, "C: characters of the alphabet (set from the data); the model adds the blank", cli=False)
    height: int = opt(32, "H: images are scaled to this height (multiple of 8)")
    channels: int = opt(32, "F, channels of the first conv block; the next two have 2F and 3F")
    embed: int = opt(128, "E, the per-column vector fed to the recurrent layer")
    # R units per direction, both directions (a character depends on its neighbours on both sides);
    # dropout (rnn.dropout) before the recurrent layer and the output layer
    rnn: RecurrentConfig = opt(default_factory=lambda: RecurrentConfig(hidden_size=128, bidirectional=True,
                                                                       dropout=0.1))

    def check(self, owner: str = "CTCRecognizer", name=str, sizes: bool = True) -> None:
        """Raise ValueError naming the option (name(field): the keyword, or the command line's flag).
        sizes=False skips the sizes the data sets (vocabulary, classes): the command line checks the options
        before it reads the data."""
        self.rnn.check(owner, name)
        check_positive_ints(owner, self, ("num_classes", "channels", "embed")[not sizes:], name)
        if self.height < 8 or self.height % 8:
            raise ValueError(f"{owner}: {name('height')} must be a multiple of 8, got {self.height}")


def min_frames(label: list[int] | str) -> int:
    """Frames CTC needs for `label`: one per character plus a blank between each pair of equal neighbours."""
    return len(label) + sum(1 for a, b in zip(label, label[1:]) if a == b)


def _block(cin: int, cout: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.MaxPool2d(pool))


class CTCRecognizer(nn.Module):
    """forward(images, widths, labels=None, label_lengths=None) -> (log_probs (B, T, C+1), frames (B,), loss)"""

    def __init__(self, config: CTCRecognizerConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        self.cnn = nn.Sequential(_block(1, c.channels, (2, 2)), _block(c.channels, 2 * c.channels, (2, 2)),
                                 _block(2 * c.channels, 3 * c.channels, (2, 1)))
        self.proj = nn.Linear(3 * c.channels * (c.height // 8), c.embed)
        self.rnn = c.rnn.build(c.embed)
        self.drop = nn.Dropout(c.rnn.dropout)
        self.head = nn.Linear(c.rnn.output_size, c.num_classes + 1)
        self.ctc = nn.CTCLoss(blank=BLANK, zero_infinity=True, reduction="mean")

    def forward(self, images: Tensor, widths: Tensor, labels: Tensor | None = None,
                label_lengths: Tensor | None = None):
        if images.dim() != 4 or images.shape[1] != 1 or images.shape[2] != self.config.height:
            raise ValueError(f"CTCRecognizer: expected images (B, 1, {self.config.height}, W), got {tuple(images.shape)}")
        f = self.cnn(images)  # (B, 3F, H/8, W/4)
        B, Fc, Hc, T = f.shape
        z = self.proj(f.permute(3, 0, 1, 2).reshape(T, B, Fc * Hc))  # (T, B, E), time-major for the layer
        frames = (widths // WIDTH_STRIDE).clamp(1, T).to(torch.int64)
        h, _ = self.rnn(self.drop(z), lengths=frames)  # (T, B, D*R)
        log_probs = F.log_softmax(self.head(self.drop(h)).float(), dim=-1)  # (T, B, C+1)
        loss = None
        if labels is not None:
            # zero_infinity: a label longer than its image allows contributes no gradient instead of inf (the
            # data loaders reject such images up front, so this only guards hand-built batches)
            loss = self.ctc(log_probs, labels, frames, label_lengths)
        return log_probs.transpose(0, 1), frames, loss

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items() if k != "rnn")  # the layer prints itself


def greedy_decode(log_probs: Tensor, frames: Tensor | None = None) -> list[list[int]]:
    """Best-path decoding of (B, T, C+1) scores: argmax class per frame, merge repeats, drop blanks (0).
    Returns label ids 1..C per sequence (subtract 1 for alphabet indices)."""
    best = log_probs.argmax(-1).tolist()
    out = []
    for b, path in enumerate(best):
        n = len(path) if frames is None else int(frames[b])
        seq, prev = [], BLANK
        for k in path[:n]:
            if k != prev and k != BLANK:
                seq.append(k)
            prev = k
        out.append(seq)
    return out


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def prefix_beam_search(log_probs: Tensor, beam: int = 10) -> list[tuple[tuple[int, ...], float]]:
    """CTC prefix beam search over one sequence's (T, C+1) log-probabilities (blank 0).

    Each prefix keeps two log-probabilities: of the paths so far that end in a blank, and that end in its
    last label. Extending by label k from a prefix ending in k needs a blank in between. After each frame
    the `beam` most probable prefixes are kept. Returns [(labels, log P(labels))] best first; with a beam at
    least as large as the number of prefixes, every P is the exact sum over all paths that collapse to it.
    """
    if log_probs.dim() != 2:
        raise ValueError(f"prefix_beam_search: expected (T, C+1) log-probabilities, got {tuple(log_probs.shape)}")
    if beam < 1:
        raise ValueError(f"prefix_beam_search: beam must be >= 1, got {beam}")
    lp = log_probs.double().cpu().tolist()
    ninf = -math.inf
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, ninf)}  # prefix -> (log p_blank, log p_label)
    for row in lp:
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [ninf, ninf])
        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            # a blank: the prefix stays
            e = nxt[prefix]
            e[0] = _logsumexp(e[0], total + row[BLANK])
            last = prefix[-1] if prefix else None
            for k in range(1, len(row)):
                p = row[k]
                if p == ninf:
                    continue
                if k == last:
                    # repeating the last label without a blank merges into the same prefix ...
                    e[1] = _logsumexp(e[1], pnb + p)
                    # ... and after a blank it starts a new character
                    n = nxt[prefix + (k,)]
                    n[1] = _logsumexp(n[1], pb + p)
                else:
                    n = nxt[prefix + (k,)]
                    n[1] = _logsumexp(n[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:beam]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    out = [(k, _logsumexp(*v)) for k, v in beams.items()]
    return sorted(out, key=lambda kv: kv[1], reverse=True)
