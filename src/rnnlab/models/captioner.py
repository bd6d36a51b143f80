"""Captioner: one-to-many. A small CNN, trained from scratch, turns an image into a feature vector that starts
the shared rnnlab Decoder (models/seq2seq.py), which then writes the caption one token at a time.

    x   (B, 3, S, S)   RGB in [0, 1], S = 64
    v   = CNN(x)       4 conv blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool) -> global average -> linear
                       (B, K)
    caption ~ Decoder(context = v)   teacher forcing in training; greedy, sampling or beam search after
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import Tensor, nn

from .._fields import opt
from .._validate import check_positive_ints
from ..layers import RecurrentConfig
from .seq2seq import Decoder, DecoderConfig

__all__ = ["Captioner", "CaptionerConfig"]


@dataclass(slots=True)
class CaptionerConfig:
    vocab_size: int = opt(0, "V, set from the captions (including the 4 special tokens)", cli=False)
    image_size: int = opt(64, "S: images are scaled to S x S (a multiple of 16)")
    channels: int = opt(32, "F, channels of the first conv block; then 2F, 4F, 4F")
    features: int = opt(256, "K, the image's feature vector")
    embed: int = opt(64, "token embedding width")
    # the decoder; dropout (rnn.dropout) on the image features, the embeddings and before the output layer
    rnn: RecurrentConfig = opt(default_factory=lambda: RecurrentConfig(hidden_size=256, dropout=0.2))

    def decoder(self) -> DecoderConfig:
        return DecoderConfig(self.vocab_size, self.embed, self.rnn)

    def check(self, owner: str = "Captioner", name=str, sizes: bool = True) -> None:
        """Raise ValueError naming the option (name(field): the keyword, or the command line's flag).
        sizes=False skips the sizes the data sets (vocabulary, classes): the command line checks the options
        before it reads the data."""
        self.decoder().check(owner, name, sizes)
        check_positive_ints(owner, self, ("image_size", "channels", "features"), name)
        if self.image_size % 16:
            raise ValueError(f"{owner}: {name('image_size')} must be a multiple of 16, got {self.image_size}")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.MaxPool2d(2))


class Captioner(nn.Module):
    """forward(images (B, 3, S, S), targets (B, T), lengths (B,)) -> (logits (B, T, V), loss)"""

    def __init__(self, config: CaptionerConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        f = c.channels
        self.cnn = nn.Sequential(_block(3, f), _block(f, 2 * f), _block(2 * f, 4 * f), _block(4 * f, 4 * f),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(c.rnn.dropout),
                                 nn.Linear(4 * f, c.features), nn.ReLU())
        self.decoder = Decoder(c.decoder(), context_size=c.features)

    def encode(self, images: Tensor) -> Tensor:
        S = self.config.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, S, S):
            raise ValueError(f"Captioner: expected images (B, 3, {S}, {S}), got {tuple(images.shape)}")
        return self.cnn(images)  # (B, K)

    def forward(self, images: Tensor, targets: Tensor, lengths: Tensor):
        return self.decoder.loss(self.encode(images), targets, lengths)

    def generate(self, images: Tensor, max_len: int = 20, **kw) -> list[list[int]]:
        """Token ids per image; kw as Decoder.generate (method greedy | sample | beam, temperature, beam)."""
        return self.decoder.generate(self.encode(images), max_len, **kw)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items() if k != "rnn")  # the layer prints itself
