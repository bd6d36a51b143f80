"""rnnlab.train: the loop (loss goes down, exact resume, NaN stop, early stop), checkpoints (atomic, verified)."""

import json
import math
import os
import signal

import pytest
import torch

import rnnlab.train.checkpoint as checkpoint_module
from rnnlab.train import CharLMTask, CheckpointError, fit, learning_rate, load_charlm, load_checkpoint, sample_text
from rnnlab.train.config import TrainConfig, check_ranges
from rnnlab.train.loop import may_stop_early
from charlm_helpers import TINY_TEXT, tiny_config


def run_fit(cfg, run=None, **kw):
    return fit(CharLMTask(cfg, text=TINY_TEXT), cfg.train, run, progress=False, log=lambda s: None, **kw)


def test_loss_decreases_on_a_tiny_corpus():
    r = run_fit(tiny_config(max_steps=60))
    first, last = sum(r.losses[:5]) / 5, sum(r.losses[-5:]) / 5
    assert r.stopped == "max_steps" and r.step == 60
    assert last < first - 0.7, (first, last)
    assert r.last["val_bpc"] < math.log2(len(set(TINY_TEXT))) - 1  # well below guessing uniformly


def test_run_folder_holds_config_metrics_plot_and_checkpoints(tmp_path):
    run_fit(tiny_config(), tmp_path / "run")
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "charlm" and config["model"]["rnn"]["hidden_size"] == 24 and "torch" in config["versions"]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,elapsed_s,lr,chars_per_s,train_loss,train_bpc,val_loss,val_bpc")
    assert [r.split(",")[0] for r in rows[1:]] == ["10", "20", "30"]
    for name in ("last", "best"):
        assert {"model.safetensors", "optimizer.safetensors", "carry.safetensors", "config.json",
                "state.json"} <= {p.name for p in (run / name).iterdir()}
    pytest.importorskip("matplotlib")
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_interrupted_and_resumed_run_has_the_same_losses(tmp_path, dropout):
    """Ctrl-C (a real SIGINT) at step 13, then --resume: every later loss equals the uninterrupted run's."""
    def config():
        cfg = tiny_config(max_steps=40, eval_every=10)
        cfg.model.rnn.num_layers, cfg.model.rnn.dropout = 2, dropout  # dropout draws random numbers: RNG state must resume
        return cfg

    full = run_fit(config(), tmp_path / "full")

    def interrupt(step, loss):
        if step == 13:
            os.kill(os.getpid(), signal.SIGINT)

    first = run_fit(config(), tmp_path / "cut", on_step=interrupt)
    assert first.stopped == "interrupted" and first.step == 13
    assert load_checkpoint(tmp_path / "cut", prefer=("last",)).state["step"] == 13
    second = run_fit(config(), tmp_path / "cut", resume=tmp_path / "cut")
    assert second.step == 40
    assert first.losses + second.losses == full.losses  # exactly, not approximately
    steps = [r.split(",")[0] for r in (tmp_path / "cut" / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["10", "20", "30", "40"]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = tiny_config(max_steps=40, eval_every=10)
    task = CharLMTask(cfg, text=TINY_TEXT)
    step_loss = task.step_loss
    calls = []

    def poisoned(batch, state):
        out = step_loss(batch, state)
        calls.append(1)
        return out._replace(loss=out.loss * float("nan")) if len(calls) == 15 else out

    task.step_loss = poisoned
    r = fit(task, cfg.train, tmp_path / "run", progress=False, log=lambda s: None)
    assert r.stopped == "nan" and r.step == 14
    assert "became nan at step 15" in r.message and "last" in r.message
    kept = load_charlm(tmp_path / "run" / "last")
    assert kept.checkpoint.state["step"] == 10
    assert all(torch.isfinite(p).all() for p in kept.model.parameters())


def test_early_stopping_after_patience(tmp_path):
    cfg = tiny_config(max_steps=500, eval_every=2, patience=2, lr=1e-7, warmup_steps=0, decay="none")
    cfg.train.min_delta = 1.0  # nothing improves by a whole bit
    r = run_fit(cfg)
    assert r.stopped == "early_stop" and r.step == 6  # the first evaluation sets the best, two more fail


def test_learning_rate_warms_up_then_decays():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, max_time=None, min_lr_ratio=0.1)
    lrs = [learning_rate(cfg, s, 0.0) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[109] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    timed = TrainConfig(lr=1.0, warmup_steps=0, max_time=100.0, min_lr_ratio=0.0)
    assert learning_rate(timed, 5, 50.0) == pytest.approx(0.5)


def test_wsd_early_stopping_waits_for_the_decay():
    # nothing improves (lr 1e-7, min_delta 1 bit): with cosine patience 2 stops at the third evaluation; under wsd
    # a plateau at the peak rate is not the end, so the run goes on until the decay (the last 20 of 50 steps)
    cfg = tiny_config(max_steps=50, eval_every=2, patience=2, lr=1e-7, warmup_steps=0, decay="cosine")
    cfg.train.min_delta = 1.0
    assert run_fit(cfg).step == 6
    cfg.train.decay = "wsd"
    # the 41st step is the first below the peak rate (steps 40-49 decay): the evaluation after step 42 is patience's
    # first, after 44 its second
    r = run_fit(cfg)
    assert r.stopped == "early_stop" and r.step == 44
    rate = [learning_rate(cfg.train, s, 0.0) for s in range(50)]
    assert rate[40] == cfg.train.lr and rate[41] < cfg.train.lr
    assert not may_stop_early(cfg.train, 40, rate[39]) and may_stop_early(cfg.train, 42, rate[41])
    cfg.train.decay_fraction = 0.0  # wsd without a decay is a constant rate: patience counts throughout
    assert may_stop_early(cfg.train, 1, cfg.train.lr) and run_fit(cfg).step == 6


def test_wsd_with_both_budgets_decays_before_either_ends():
    both = TrainConfig(lr=1.0, warmup_steps=0, max_steps=1000, max_time=100.0, decay="wsd", min_lr_ratio=0.0)
    assert learning_rate(both, 10, 10.0) == 1.0 and learning_rate(both, 10, 100.0) == pytest.approx(0.0)
    assert learning_rate(both, 900, 0.0) == pytest.approx(0.5) and learning_rate(both, 10, 85.0) < 1.0
    cosine = TrainConfig(lr=1.0, warmup_steps=0, max_steps=1000, max_time=100.0, min_lr_ratio=0.0)
    assert learning_rate(cosine, 0, 99.0) == 1.0  # cosine follows the steps when given: reproducible runs


def test_wsd_holds_the_rate_then_decays_over_the_last_fraction():
    steps = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, max_time=None, decay="wsd", decay_fraction=0.2,
                        min_lr_ratio=0.1)
    lrs = [learning_rate(steps, s, 0.0) for s in range(111)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10:91] == [1.0] * 81  # stable until the last 20 of the 100 steps after warm-up
    assert lrs[100] == pytest.approx(0.55) and lrs[110] == pytest.approx(0.1)  # cosine: halfway, then the floor
    assert all(a > b for a, b in zip(lrs[90:110], lrs[91:111]))
    timed = TrainConfig(lr=1.0, warmup_steps=0, max_time=100.0, decay="wsd", decay_fraction=0.5, min_lr_ratio=0.0)
    assert [learning_rate(timed, 5, e) for e in (10.0, 50.0, 75.0, 100.0)] == pytest.approx([1.0, 1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="--decay-fraction must be >= 0 and <= 1"):
        check_ranges(TrainConfig(decay="wsd", decay_fraction=1.5), "training")


def test_crash_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run_fit(tiny_config(max_steps=10), run)
    before = load_checkpoint(run, prefer=("last",))
    real_save = checkpoint_module.save_file

    def crash_midway(tensors, path):  # write half a file, then "lose power"
        real_save(tensors, path)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        raise OSError("simulated crash")

    monkeypatch.setattr(checkpoint_module, "save_file", crash_midway)
    with pytest.raises(OSError, match="simulated crash"):
        checkpoint_module.save_checkpoint(run / "last", model={"w": torch.zeros(3)}, optimizer={}, carry={},
                                          config={}, state={"step": 99})
    after = load_checkpoint(run, prefer=("last",))
    assert after.state["step"] == before.state["step"] == 10
    assert after.path == run / "last"


def test_crash_between_the_renames_falls_back_to_the_old_folder(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run_fit(tiny_config(max_steps=10), run)
    real_replace, calls = os.replace, []

    def crash_on_second_rename(src, dst):
        calls.append(src)
        if len(calls) == 2:  # the old folder was moved aside, the new one not yet in place
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint_module.os, "replace", crash_on_second_rename)
    with pytest.raises(OSError):
        checkpoint_module.save_checkpoint(run / "last", model={"w": torch.zeros(3)}, optimizer={}, carry={},
                                          config={}, state={"step": 99})
    monkeypatch.undo()
    assert not (run / "last").exists()
    loaded = load_checkpoint(run, prefer=("last",))
    assert loaded.state["step"] == 10 and loaded.path.name == ".last.old"
    r = run_fit(tiny_config(max_steps=20), run, resume=run)  # and training resumes from it
    assert r.step == 20 and load_checkpoint(run, prefer=("last",)).path.name == "last"


@pytest.mark.parametrize("damage,match", [
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100]),
     "corrupt or truncated"),
    (lambda d: (d / "optimizer.safetensors").unlink(), "optimizer.safetensors is missing"),
    (lambda d: (d / "state.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "state.json").unlink(), "incomplete checkpoint, state.json is missing"),
])
def test_damaged_checkpoint_gives_a_clear_error(tmp_path, damage, match):
    run = tmp_path / "run"
    run_fit(tiny_config(max_steps=10), run)
    damage(run / "best")
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(run / "best")


def test_checkpoint_whose_weights_do_not_match_its_config(tmp_path):
    run = tmp_path / "run"
    run_fit(tiny_config(max_steps=10), run)
    config = json.loads((run / "best" / "config.json").read_text())
    config["model"]["rnn"]["hidden_size"] = 32
    from rnnlab.train.checkpoint import save_checkpoint
    ck = load_checkpoint(run / "best")
    save_checkpoint(run / "bad", model=ck.model, optimizer=ck.optimizer, carry=ck.carry, config=config,
                    state={k: v for k, v in ck.state.items() if k not in ("format", "version", "files")})
    with pytest.raises(CheckpointError, match="weights do not match the checkpoint's config"):
        load_charlm(run / "bad")


def test_sampling_from_a_checkpoint_is_reproducible(tmp_path):
    run_fit(tiny_config(max_steps=30), tmp_path / "run")
    m = load_charlm(tmp_path / "run")
    a = "".join(sample_text(m.model, m.vocab, "def ", 60, seed=1))
    b = "".join(sample_text(m.model, m.vocab, "def ", 60, seed=1))
    assert a == b and len(a) == 60 and set(a) <= set(TINY_TEXT)
