"""One recurrent config from flag to cell: RecurrentConfig builds the layers, every task's command line offers
every one of its fields, a bad value of each reaches the user as one error naming the flag (command line) or
the keyword (Python), and run configs read back by their fields' types (old flat ones included)."""

import dataclasses

import pytest
import torch

import rnnlab
from rnnlab._fields import flag_of
from rnnlab.layers import RecurrentConfig
from rnnlab.models import CharLMConfig, SequenceClassifierConfig
from rnnlab.train import TASKS, CharLMRunConfig, ClassifyRunConfig, override
from rnnlab.train.config import from_dict

from helpers import assert_user_error, run_cli

TASK_NAMES = list(TASKS)


def test_build_gives_the_layer_the_options_describe():
    cfg = RecurrentConfig(cell="lstm", hidden_size=6, num_layers=2, bidirectional=True, proj_size=3, peephole=True,
                          layer_norm=True, dropout=0.25, init="orthogonal")
    layer = cfg.build(4)
    torch.manual_seed(0)
    direct = rnnlab.LSTM(4, 6, 2, dropout=0.25, bidirectional=True, proj_size=3, peephole=True, layer_norm=True,
                         init="orthogonal")
    assert {k: v.shape for k, v in layer.state_dict().items()} == {k: v.shape for k, v in direct.state_dict().items()}
    out, _ = layer(torch.randn(5, 2, 4))
    assert out.shape == (5, 2, cfg.output_size) and cfg.output_size == 2 * 3
    # the between-layers dropout is passed only where there are layers in between (no warning for one layer)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert RecurrentConfig(dropout=0.5).build(3).dropout == 0.0
    relu = RecurrentConfig(cell="rnn", nonlinearity="relu", bias=False, hidden_size=5).build(2)
    assert isinstance(relu, rnnlab.RNN) and relu.nonlinearity == "relu" and not relu.bias


# one bad value per option: (field, value, what the message says after the option's name)
BAD = [
    ("cell", "lstmm", "lstmm"),
    ("hidden_size", 0, "must be > 0"),
    ("num_layers", 0, "must be an int >= 1"),
    ("dropout", 1.5, "must be a probability in [0, 1]"),
    ("proj_size", 300, "must be smaller than"),
    ("proj_size", -1, "must be >= 0"),
    ("init", "xavier", "xavier"),
    ("backend", "warp", "warp"),
    ("segment_steps", 0, "must be None or an int >= 1"),
    ("nonlinearity", "relu", "only defined for the RNN cell"),
    ("nonlinearity", "sigmoid", "must be 'tanh' or 'relu'"),
]
LSTM_ONLY = [("peephole", "gru"), ("coupled", "rnn"), ("proj_size", "gru")]


@pytest.mark.parametrize("field,value,says", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_a_bad_value_from_python_names_the_keyword(field, value, says):
    with pytest.raises((ValueError, TypeError)) as e:
        RecurrentConfig(**{field: value}).check("LSTM")
    assert str(e.value).startswith("LSTM: ") and field in str(e.value) and says in str(e.value)
    with pytest.raises((ValueError, TypeError)) as e:  # the same check, through a model config
        CharLMConfig(vocab_size=5, rnn=RecurrentConfig(**{field: value})).check()
    assert field in str(e.value) and says in str(e.value)


@pytest.mark.parametrize("field,cell", LSTM_ONLY)
def test_an_lstm_option_on_another_cell_names_the_keyword(field, cell):
    with pytest.raises(ValueError, match=rf"{field} is only defined for the LSTM"):
        RecurrentConfig(cell=cell, **{field: 2 if field == "proj_size" else True}).check()


def _flag(field: str) -> str:
    return flag_of(next(f for f in dataclasses.fields(RecurrentConfig) if f.name == field))


@pytest.mark.parametrize("task", TASK_NAMES)
@pytest.mark.parametrize("field,value,says", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_a_bad_value_from_the_command_line_names_the_flag(tmp_path, capsys, monkeypatch, task, field, value, says):
    monkeypatch.chdir(tmp_path)  # checked before any data is read: nothing is written, no data set is needed
    flag = _flag(field)
    extra = ["--cell", "lstm"] if field == "nonlinearity" and value == "relu" else []
    code, out, err = run_cli(capsys, "train", task, flag, str(value), *extra, "--quiet")
    assert_user_error(code, err, flag)
    assert "reading" not in out and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("task", TASK_NAMES)
@pytest.mark.parametrize("field,cell", LSTM_ONLY)
def test_an_lstm_option_on_another_cell_names_the_flag(tmp_path, capsys, monkeypatch, task, field, cell):
    monkeypatch.chdir(tmp_path)
    flag = _flag(field)
    code, out, err = run_cli(capsys, "train", task, "--cell", cell, flag, *(["2"] if field == "proj_size" else []),
                             "--quiet")
    assert_user_error(code, err, f"{flag} is only defined for the LSTM")
    assert "reading" not in out


@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_recurrent_option_is_an_option_of_every_task(capsys, task):
    code, out, _ = run_cli(capsys, "train", task, "--help")
    assert code == 0
    for f in dataclasses.fields(RecurrentConfig):
        shown = f.metadata["negative"] if getattr(TASKS[task].config().model.rnn, f.name) is True else flag_of(f)
        assert (shown or "--no-" + flag_of(f)[2:]) in out, (task, f.name)


def test_a_language_model_cannot_be_bidirectional(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train", "charlm", "--bidirectional", "--quiet")
    assert_user_error(code, err, "--bidirectional", "left to right")


def test_a_run_config_reads_back_by_its_types_and_rejects_unknown_keys():
    cfg = override(ClassifyRunConfig(), {"model.rnn.cell": "gru", "model": {"pooling": "max"}, "train.seed": 3})
    assert (cfg.model.rnn.cell, cfg.model.pooling, cfg.train.seed) == ("gru", "max", 3)
    back = ClassifyRunConfig.from_dict(cfg.to_dict())
    assert back == cfg and isinstance(back.model.rnn, RecurrentConfig)
    bad = cfg.to_dict()
    bad["model"]["rnn"]["hiddden"] = 3
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['hiddden'\] in RecurrentConfig"):
        ClassifyRunConfig.from_dict(bad)
    with pytest.raises(ValueError, match="task is 'classify', expected 'charlm'"):
        CharLMRunConfig.from_dict(cfg.to_dict())
    with pytest.raises(ValueError, match="unknown option"):
        override(cfg, {"model.rnn.size": 3})
    with pytest.raises(AttributeError):  # a typo in Python is an error too, not a silently ignored attribute
        cfg.model.hidden = 3


def test_a_flat_model_config_from_before_recurrent_config_is_read_nested():
    old = {"num_classes": 2, "vocab_size": 9, "n_features": 0, "embed": 4, "cell": "gru", "hidden": 6, "layers": 2,
           "bidirectional": True, "pooling": "mean", "dropout": 0.1, "peephole": False, "coupled": False,
           "layer_norm": False, "proj_size": 0, "backend": "auto", "init": "orthogonal"}
    cfg = from_dict(SequenceClassifierConfig, old)
    assert cfg.rnn == RecurrentConfig(cell="gru", hidden_size=6, num_layers=2, bidirectional=True, dropout=0.1,
                                      init="orthogonal")
    assert (cfg.embed, cfg.pooling, cfg.vocab_size) == (4, "mean", 9)
