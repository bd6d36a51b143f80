"""Layers: the loop over time, lengths, reverse direction, stacking; drop-in torch.nn classes; RecurrentConfig,
the one description of a recurrent stack that the models nest and the command line's options come from."""

from .base import RecurrentBase
from .config import RecurrentConfig
from .modules import CELLS, GRU, LSTM, RNN, MinGRU, MinLSTM
from .sequence import check_lengths, reverse_index, reverse_time

__all__ = ["CELLS", "GRU", "LSTM", "MinGRU", "MinLSTM", "RNN", "RecurrentBase", "RecurrentConfig", "check_lengths", "reverse_index",
           "reverse_time"]
