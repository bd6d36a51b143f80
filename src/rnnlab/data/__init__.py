"""Data: character vocabularies, corpora (files, folders, built-ins) and batching for truncated BPTT.

Imports torch for tensors only, never torch.nn: data knows nothing about models.
"""

from .corpora import BUILTIN_PREFIX, BUILTINS, load_builtin
from .errors import DataError
from .streams import Batch, TextStreams, eval_batches, split_ids
from .text import read_corpus, read_text_file
from .vocab import CharVocab

__all__ = [
    "BUILTINS", "BUILTIN_PREFIX", "Batch", "CharVocab", "DataError", "TextStreams", "eval_batches",
    "load_builtin", "read_corpus", "read_text_file", "split_ids",
]
