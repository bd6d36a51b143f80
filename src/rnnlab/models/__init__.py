"""Models: task heads over rnnlab's recurrent layers."""

from .charlm import CELLS, CharLM, CharLMConfig
from .memory import MemoryNet

__all__ = ["CELLS", "CharLM", "CharLMConfig", "MemoryNet"]
