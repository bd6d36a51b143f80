"""Training: config dataclasses, the one loop (`fit`), checkpoints, and the tasks it trains.

    config.py      the run config's frame (RunConfig), TrainConfig, reading configs back, overrides, presets
    task.py        the interface a task implements for `fit`, and TaskKind, a task's one registration
    registry.py    the registered tasks (TASKS), load_run and the load_<task> shortcuts, run_config
    loop.py        fit: optimizer, schedule, clipping, evaluation, early stopping, checkpoints, resume
    checkpoint.py  safetensors + JSON, atomic, verified on load
    runlog.py      metrics.csv, loss.png, TensorBoard
    charlm.py      the character-level language model task, evaluation and sampling
    classify.py    sequence classification (many-to-one): task, presets, prediction
    forecast.py    forecasting (many-to-one): task, presets, held-out scoring, future values
    recognize.py   handwriting recognition with CTC: task, transcribing, CER
    caption.py     image captioning: task, captioning, BLEU/WER
    metrics.py     accuracy / F1 / confusion matrices, MAE / RMSE / MASE
    seq_metrics.py CER, WER, sequence accuracy (rapidfuzz), BLEU (sacrebleu)
    memory.py      the memory experiment: copy memory, RNN vs GRU vs LSTM, gradient norms
"""

from .caption import CaptionRunConfig, CaptionTask, LoadedCaptioner, caption_images
from .charlm import CharLMTask, LoadedCharLM, evaluate_ids, sample_text
from .checkpoint import Checkpoint, CheckpointError, checkpoint_task, find_checkpoint, load_checkpoint, save_checkpoint
from .classify import ClassifyRunConfig, ClassifyTask, LoadedClassifier, classify_config
from .config import CharLMRunConfig, RunConfig, TextDataConfig, TrainConfig, override
from .device import resolve_device
from .forecast import ForecastRunConfig, ForecastTask, LoadedForecaster, forecast_config
from .loop import FitResult, fit, learning_rate, make_optimizer
from .memory import MemoryConfig, MemoryTask, run_memory_experiment
from .recognize import LoadedRecognizer, RecognizeRunConfig, RecognizeTask, transcribe
from .registry import (
    TASKS, load_captioner, load_charlm, load_classifier, load_forecaster, load_recognizer, load_run, run_config,
)
from .task import StepLoss, Task, TaskKind

__all__ = [
    "CharLMRunConfig", "CharLMTask", "Checkpoint", "CheckpointError", "FitResult", "LoadedCharLM", "RunConfig",
    "StepLoss", "TASKS", "Task", "TaskKind", "TextDataConfig", "TrainConfig", "checkpoint_task", "evaluate_ids",
    "find_checkpoint", "fit", "learning_rate", "load_charlm", "load_checkpoint", "load_run", "make_optimizer",
    "override", "resolve_device", "run_config", "sample_text", "save_checkpoint",
    # handwriting recognition and captioning
    "CaptionRunConfig", "CaptionTask", "LoadedCaptioner", "LoadedRecognizer", "RecognizeRunConfig", "RecognizeTask",
    "caption_images", "load_captioner", "load_recognizer", "transcribe",
    "MemoryConfig", "MemoryTask", "run_memory_experiment",
    "ClassifyRunConfig", "ClassifyTask", "LoadedClassifier", "classify_config", "load_classifier",
    "ForecastRunConfig", "ForecastTask", "LoadedForecaster", "forecast_config", "load_forecaster",
]
