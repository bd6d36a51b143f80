"""Training: config dataclasses, the one loop (`fit`), checkpoints, and the tasks it trains.

    config.py      every default, in one place
    task.py        the interface a task implements for `fit`
    loop.py        fit: optimizer, schedule, clipping, evaluation, early stopping, checkpoints, resume
    checkpoint.py  safetensors + JSON, atomic, verified on load
    runlog.py      metrics.csv, loss.png, TensorBoard
    charlm.py      the character-level language model task, loading, evaluation and sampling
    memory.py      the memory experiment: copy memory, RNN vs GRU vs LSTM, gradient norms
"""

from .charlm import CharLMTask, LoadedCharLM, evaluate_ids, load_charlm, sample_text
from .checkpoint import Checkpoint, CheckpointError, checkpoint_task, find_checkpoint, load_checkpoint, save_checkpoint
from .config import CharLMRunConfig, TextDataConfig, TrainConfig
from .device import resolve_device
from .loop import FitResult, fit, learning_rate, make_optimizer
from .memory import MemoryConfig, MemoryTask, run_memory_experiment
from .task import StepLoss, Task

__all__ = [
    "CharLMRunConfig", "CharLMTask", "Checkpoint", "CheckpointError", "FitResult", "LoadedCharLM", "StepLoss",
    "Task", "TextDataConfig", "TrainConfig", "checkpoint_task", "evaluate_ids", "find_checkpoint", "fit", "learning_rate",
    "load_charlm", "load_checkpoint", "make_optimizer", "resolve_device", "sample_text", "save_checkpoint",
    "MemoryConfig", "MemoryTask", "run_memory_experiment",
]
