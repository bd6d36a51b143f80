"""Layers: the loop over time, lengths, reverse direction, stacking; drop-in torch.nn classes."""

from .base import RecurrentBase
from .modules import GRU, LSTM, RNN
from .sequence import check_lengths, reverse_index, reverse_time

__all__ = ["GRU", "LSTM", "RNN", "RecurrentBase", "check_lengths", "reverse_index", "reverse_time"]
