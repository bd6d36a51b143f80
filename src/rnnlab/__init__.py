"""rnnlab: recurrent neural networks (RNN, LSTM, GRU and their variants) from their equations.

Shape vocabulary, used in every docstring and shape comment:
    B batch, T time steps, I input features, H hidden units, R state features (proj_size or H),
    G gate blocks in a packed weight, D directions (1 or 2), L layers, C classes / vocabulary size.
Inside the library tensors are time-major (T, B, I); layers convert batch_first at the boundary.

    cells/    the math of one step: RNNCell, LSTMCell, GRUCell and their variants
    layers/   RNN, LSTM, GRU: the loop over time, lengths, directions, stacking; drop-in for torch.nn
    kernels/  backends that run one layer-direction ("reference", "native"), chosen by "auto"
    trace     gates and states recorded as a value
    data/     character vocabularies, corpora (files, folders, built-ins), batching for truncated BPTT
    models/   task heads over the layers: CharLM
    train/    config dataclasses, the one training loop `fit`, checkpoints, the charlm task
    cli/      the `rnnlab` command (train, sample, eval)
"""

from .cells import CellConfig, GRUCell, LSTMCell, RNNCell
from .kernels import backend_report
from .layers import GRU, LSTM, RNN
from .trace import DirectionTrace, Trace
from .data import CharVocab
from .models import CharLM, CharLMConfig
from .train import fit, load_charlm

__version__ = "0.1.0"

__all__ = [
    "CellConfig", "CharLM", "CharLMConfig", "CharVocab", "DirectionTrace", "GRU", "GRUCell", "LSTM", "LSTMCell",
    "RNN", "RNNCell", "Trace", "__version__", "backend_report", "fit", "load_charlm",
]
