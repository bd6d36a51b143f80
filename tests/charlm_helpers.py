"""Tiny corpora and configs for the character-LM tests: small enough that a run takes well under a second."""

from __future__ import annotations

from pathlib import Path

from rnnlab.models import CharLMConfig, RecurrentConfig
from rnnlab.train import CharLMRunConfig, TextDataConfig, TrainConfig

# A text with structure a tiny model picks up in a few dozen steps (about 4,000 characters).
TINY_TEXT = "".join(
    f"def f{i}(x):\n    return x * {i % 7} + {i % 3}\n\n" for i in range(120)
)


def tiny_config(**train) -> CharLMRunConfig:
    t = dict(max_steps=30, max_time=None, eval_every=10, warmup_steps=3, lr=1e-2, patience=None)
    t.update(train)
    return CharLMRunConfig(
        data=TextDataConfig(data="tiny", batch=4, seq_len=16, eval_chars=400, val_fraction=0.1),
        model=CharLMConfig(embed=8, rnn=RecurrentConfig(hidden_size=24, init="orthogonal")),
        train=TrainConfig(**t),
    )


def write_tiny(tmp_path: Path, name: str = "tiny.txt") -> Path:
    path = tmp_path / name
    path.write_text(TINY_TEXT, encoding="utf-8")
    return path


# The options that make `rnnlab train charlm` tiny and fast on TINY_TEXT.
TINY_CLI = ["--batch", "4", "--seq-len", "16", "--hidden", "24", "--embed", "8", "--eval-chars", "400",
            "--val-fraction", "0.1", "--max-steps", "20", "--eval-every", "10", "--warmup-steps", "3",
            "--lr", "0.01", "--quiet", "--sample-length", "40"]
