"""Models: task heads over rnnlab's recurrent layers."""

from .captioner import Captioner, CaptionerConfig
from ..layers import CELLS, RecurrentConfig
from .charlm import CharLM, CharLMConfig
from .classifier import POOLING, SequenceClassifier, SequenceClassifierConfig
from .ctc import CTCRecognizer, CTCRecognizerConfig, greedy_decode, prefix_beam_search
from .forecaster import Forecaster, ForecasterConfig
from .memory import MemoryNet
from .seq2seq import Decoder, DecoderConfig, Seq2Seq, Seq2SeqConfig

__all__ = [
    "CELLS", "CTCRecognizer", "CTCRecognizerConfig", "Captioner", "CaptionerConfig", "CharLM", "CharLMConfig",
    "Decoder", "DecoderConfig", "Forecaster", "ForecasterConfig", "MemoryNet", "POOLING", "RecurrentConfig", "Seq2Seq", "Seq2SeqConfig",
    "SequenceClassifier", "SequenceClassifierConfig", "greedy_decode", "prefix_beam_search",
]
