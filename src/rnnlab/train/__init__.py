"""Training: config dataclasses, the one loop (`fit`), checkpoints, and the tasks it trains.

    config.py      every default, in one place
    task.py        the interface a task implements for `fit`
    loop.py        fit: optimizer, schedule, clipping, evaluation, early stopping, checkpoints, resume
    checkpoint.py  safetensors + JSON, atomic, verified on load
    runlog.py      metrics.csv, loss.png, TensorBoard
    charlm.py      the character-level language model task, loading, evaluation and sampling
    classify.py    sequence classification (many-to-one): task, presets, loading, prediction
    forecast.py    forecasting (many-to-one): task, presets, loading, held-out scoring, future values
    metrics.py     accuracy / F1 / confusion matrices, MAE / RMSE / MASE, and their pictures
    recognize.py   handwriting recognition with CTC: task, loading, transcribing, CER
    caption.py     image captioning: task, loading, captioning, BLEU/WER, contact sheet
    seq_metrics.py CER, WER, sequence accuracy (rapidfuzz), BLEU (sacrebleu)
    memory.py      the memory experiment: copy memory, RNN vs GRU vs LSTM, gradient norms
"""

from .caption import CaptionRunConfig, CaptionTask, LoadedCaptioner, caption_images, load_captioner
from .charlm import CharLMTask, LoadedCharLM, evaluate_ids, load_charlm, sample_text
from .classify import ClassifyRunConfig, ClassifyTask, LoadedClassifier, classify_config, load_classifier
from .forecast import ForecastRunConfig, ForecastTask, LoadedForecaster, forecast_config, load_forecaster
from .checkpoint import Checkpoint, CheckpointError, checkpoint_task, find_checkpoint, load_checkpoint, save_checkpoint
from .config import CharLMRunConfig, TextDataConfig, TrainConfig
from .device import resolve_device
from .loop import FitResult, fit, learning_rate, make_optimizer
from .memory import MemoryConfig, MemoryTask, run_memory_experiment
from .recognize import LoadedRecognizer, RecognizeRunConfig, RecognizeTask, load_recognizer, transcribe
from .task import StepLoss, Task

__all__ = [
    "CharLMRunConfig", "CharLMTask", "Checkpoint", "CheckpointError", "FitResult", "LoadedCharLM", "StepLoss",
    "Task", "TextDataConfig", "TrainConfig", "checkpoint_task", "evaluate_ids", "find_checkpoint", "fit", "learning_rate",
    "load_charlm", "load_checkpoint", "make_optimizer", "resolve_device", "sample_text", "save_checkpoint",
    # handwriting recognition and captioning
    "CaptionRunConfig", "CaptionTask", "LoadedCaptioner", "LoadedRecognizer", "RecognizeRunConfig", "RecognizeTask",
    "caption_images", "load_captioner", "load_recognizer", "transcribe",
    "MemoryConfig", "MemoryTask", "run_memory_experiment",
]
__all__ += [
    "ClassifyRunConfig", "ClassifyTask", "LoadedClassifier", "classify_config", "load_classifier",
    "ForecastRunConfig", "ForecastTask", "LoadedForecaster", "forecast_config", "load_forecaster",
]
