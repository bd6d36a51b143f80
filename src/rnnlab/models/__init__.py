"""Models: task heads over rnnlab's recurrent layers."""

from .charlm import CELLS, CharLM, CharLMConfig
from .classifier import POOLING, SequenceClassifier, SequenceClassifierConfig
from .forecaster import Forecaster, ForecasterConfig

__all__ = ["CELLS", "CharLM", "CharLMConfig"]
__all__ += ["POOLING", "SequenceClassifier", "SequenceClassifierConfig", "Forecaster", "ForecasterConfig"]
