"""Models: task heads over rnnlab's recurrent layers."""

from .charlm import CELLS, CharLM, CharLMConfig

__all__ = ["CELLS", "CharLM", "CharLMConfig"]
