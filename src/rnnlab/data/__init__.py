"""Data: vocabularies, corpora and data sets (files, folders, built-ins), splits and batching.

    vocab.py          CharVocab: characters <-> ids (a char model's vocabulary, a recognizer's alphabet)
    tokens.py         TokenVocab: words or characters <-> ids with special tokens, for a classifier or a decoder
    corpora.py        the built-in corpora (builtin:NAME), read from files installed with Python or a package
    text.py           reading a corpus: a text file, a folder of them, or a built-in
    streams.py        a corpus cut into batches for truncated BPTT, and its evaluation batches
    sequences.py      labelled sequences for classification: built-ins, user files, stratified splits,
                      batches of similar lengths (LengthBuckets), padding (collate)
    series.py         time series for forecasting: built-ins, user CSVs, the held-out tail, scaling
    images.py         images with text: a folder plus a TSV/CSV of `filename, text`
    mnist_strings.py  builtin:mnist-strings, handwritten digit strings made of MNIST digits
    emoji.py          builtin:emoji, rendered emoji captioned with their Unicode names
    memory.py         the copy-memory problem's batches
    batching.py       a seeded train/validation split of rows, endless reshuffled batches over a list
    errors.py         DataError, what a user's bad data raises

Imports torch for tensors only, never torch.nn: data knows nothing about models.
"""

from .batching import ShuffledBatches, split_rows
from .corpora import BUILTIN_PREFIX, BUILTINS, load_builtin
from .errors import DataError
from .streams import Batch, TextStreams, eval_batches, split_ids
from .text import read_corpus, read_corpus_ids, read_text_file
from .tokens import TokenVocab
from .vocab import CharVocab

__all__ = [
    "BUILTINS", "BUILTIN_PREFIX", "Batch", "CharVocab", "DataError", "ShuffledBatches", "TextStreams", "TokenVocab",
    "eval_batches", "load_builtin", "read_corpus", "read_corpus_ids", "read_text_file", "split_ids", "split_rows",
]
