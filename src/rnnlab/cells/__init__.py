"""Cells: the math of one time step of each family (RNN, LSTM, GRU, minGRU, minLSTM) and their variants. No loop
over time."""

from .base import CellBase
from .config import FAMILIES, GATE_NAMES, MIN_FAMILIES, CellConfig, check_config
from .gru import GRUCell, gru_step
from .initialize import INIT_SCHEMES, init_parameters_
from .lstm import LSTMCell, lstm_step
from .minrnn import MinGRUCell, MinLSTMCell, mingru_step, minlstm_step
from .projection import input_part, recurrent_part
from .rnn import RNNCell, rnn_step

__all__ = [
    "CellBase", "CellConfig", "FAMILIES", "GATE_NAMES", "INIT_SCHEMES", "MIN_FAMILIES", "GRUCell", "LSTMCell",
    "MinGRUCell", "MinLSTMCell", "RNNCell", "check_config", "gru_step", "init_parameters_", "input_part", "lstm_step",
    "mingru_step", "minlstm_step", "recurrent_part", "rnn_step", "step_function",
]

_STEPS = {"rnn_tanh": rnn_step, "rnn_relu": rnn_step, "lstm": lstm_step, "gru": gru_step, "mingru": mingru_step,
          "minlstm": minlstm_step}


def step_function(cfg: CellConfig):
    """The step function of cfg's family: (a, state, params, cfg) -> (state, gates)."""
    return _STEPS[cfg.family]
