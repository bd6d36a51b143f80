"""rnnlab: recurrent neural networks (RNN, LSTM, GRU and their variants; minGRU, minLSTM) from their equations.

Shape vocabulary, used in every docstring and shape comment:
    B batch, T time steps, I input features, H hidden units, R state features (proj_size or H),
    G gate blocks in a packed weight, D directions (1 or 2), L layers, C classes / vocabulary size.
Inside the library tensors are time-major (T, B, I); layers convert batch_first at the boundary.

    cells/    the math of one step: RNNCell, LSTMCell, GRUCell and their variants; MinGRUCell, MinLSTMCell
    layers/   RNN, LSTM, GRU (drop-in for torch.nn), MinGRU, MinLSTM: the loop over time, lengths, directions, stacking;
              RecurrentConfig, the one description of a recurrent stack
    kernels/  backends that run one layer-direction ("reference", "native", "fused", "scan"), chosen by "auto"
    trace     gates and states recorded as a value
    data/     vocabularies, corpora, data sets (built-in and the user's files), batching
    models/   task heads over the layers: CharLM, SequenceClassifier, Forecaster, CTCRecognizer, Captioner,
              Seq2Seq, MemoryNet
    train/    run configs, the one training loop `fit`, checkpoints, the tasks and their registry
    viz/      recordings and results -> pages and pictures
    cli/      the `rnnlab` command (train, sample, eval, predict, forecast, recognize, caption, inspect, ...)
"""

from ._validate import InputShapeError
from .cells import CellConfig, GRUCell, LSTMCell, MinGRUCell, MinLSTMCell, RNNCell
from .kernels import backend_report
from .layers import GRU, LSTM, RNN, MinGRU, MinLSTM, RecurrentConfig
from .trace import DirectionTrace, Trace
from .data import CharVocab
from .models import CharLM, CharLMConfig
from .train import fit, load_charlm
from .export import export  # noqa: E402  (the function; rnnlab.export.FORMATS via `from rnnlab.export import`)

__version__ = "0.1.0"

__all__ = [
    "CellConfig", "CharLM", "CharLMConfig", "CharVocab", "DirectionTrace", "GRU", "GRUCell", "InputShapeError", "LSTM",
    "LSTMCell",
    "MinGRU", "MinGRUCell", "MinLSTM", "MinLSTMCell", "RNN", "RNNCell", "RecurrentConfig", "Trace", "__version__", "backend_report", "export", "fit", "load_charlm",
]
