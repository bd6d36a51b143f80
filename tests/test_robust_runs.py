"""A diverged run never writes a non-finite checkpoint: last/ stays the last good one, the stop message names it,
and a checkpoint holding NaN (written by an older rnnlab, or by hand) is refused in one line."""

import math

import pytest
import torch
from safetensors.torch import save_file

from rnnlab.train import CharLMTask, CheckpointError, fit, load_charlm, load_checkpoint, save_checkpoint
from rnnlab.train.checkpoint import _sha256
from charlm_helpers import TINY_CLI, TINY_TEXT, tiny_config, write_tiny
from helpers import assert_user_error, run_cli

pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")


def _fit(task, cfg, run, **kw):
    return fit(task, cfg.train, run, progress=False, log=lambda s: None, **kw)


def test_a_nan_validation_keeps_the_previous_last_and_names_it(tmp_path):
    cfg = tiny_config(max_steps=40, eval_every=10)
    task = CharLMTask(cfg, text=TINY_TEXT)
    evaluate, calls = task.evaluate, []

    def second_is_nan():
        calls.append(1)
        return {k: (math.nan if len(calls) == 2 else v) for k, v in evaluate().items()}

    task.evaluate = second_is_nan
    r = _fit(task, cfg, tmp_path / "run")
    assert r.stopped == "nan" and r.step == 20
    assert "the validation loss became nan at step 20" in r.message
    assert f"the last good checkpoint is {tmp_path / 'run' / 'last'} (step 10)" in r.message
    assert f"--resume {tmp_path / 'run'}" in r.message
    assert load_checkpoint(tmp_path / "run", prefer=("last",)).state["step"] == 10
    # and the advice works: resuming from it runs
    again = _fit(CharLMTask(cfg, text=TINY_TEXT), cfg, tmp_path / "run", resume=tmp_path / "run")
    assert again.stopped == "max_steps" and again.step == 40


def test_non_finite_weights_with_a_finite_validation_are_not_saved(tmp_path):
    cfg = tiny_config(max_steps=40, eval_every=10)
    task = CharLMTask(cfg, text=TINY_TEXT)
    evaluate = task.evaluate
    task.evaluate = lambda: {k: 1.0 for k in evaluate()}  # a task whose metrics hide the damage

    def poison(step, loss):
        if step == 20:  # after the step, before the evaluation
            with torch.no_grad():
                next(task.model.parameters()).fill_(math.inf)

    r = _fit(task, cfg, tmp_path / "run", on_step=poison)
    assert r.stopped == "nan"
    assert "became NaN or inf" in r.message and "(step 10)" in r.message
    assert load_checkpoint(tmp_path / "run", prefer=("last",)).state["step"] == 10


def test_divergence_before_any_checkpoint_says_so(tmp_path):
    cfg = tiny_config(max_steps=40, eval_every=10)
    task = CharLMTask(cfg, text=TINY_TEXT)
    task.evaluate = lambda: {"loss": math.inf, "bpc": math.inf}
    r = _fit(task, cfg, tmp_path / "run")
    assert r.stopped == "nan" and "no good checkpoint yet" in r.message and "start again" in r.message
    assert not (tmp_path / "run" / "last").exists()


def test_huge_lr_on_the_command_line_never_leaves_a_bad_checkpoint(tmp_path, capsys):
    data = write_tiny(tmp_path)
    code, out, err = run_cli(capsys, "train", "charlm", "--data", data, "--out", tmp_path / "run", *TINY_CLI,
                             "--lr", "1e30", "--eval-every", "1", "--warmup-steps", "0")
    assert code == 1, (out, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("rnnlab train: stopped:"), err
    for name in ("last", "best"):
        if (tmp_path / "run" / name).exists():  # whatever was saved loads and is finite
            loaded = load_charlm(tmp_path / "run" / name)
            assert all(torch.isfinite(p).all() for p in loaded.model.parameters())


def test_save_refuses_non_finite_weights_and_keeps_the_old_folder(tmp_path):
    save_checkpoint(tmp_path / "last", model={"w": torch.ones(3)}, optimizer={}, carry={}, config={},
                    state={"step": 1})
    with pytest.raises(CheckpointError, match="'w' holds NaN or inf"):
        save_checkpoint(tmp_path / "last", model={"w": torch.tensor([1.0, math.nan])}, optimizer={}, carry={},
                        config={}, state={"step": 2})
    assert load_checkpoint(tmp_path / "last").state["step"] == 1


def _poison_checkpoint(folder):
    """Put a NaN into a checkpoint's weights and recompute the hash, as an older rnnlab would have saved it."""
    ck = load_checkpoint(folder)
    name = next(iter(ck.model))
    ck.model[name] = ck.model[name].clone().fill_(math.nan)
    save_file(ck.model, str(folder / "model.safetensors"))
    import json
    state = json.loads((folder / "state.json").read_text())
    state["files"]["model.safetensors"] = _sha256(folder / "model.safetensors")
    (folder / "state.json").write_text(json.dumps(state))
    return name


def test_sample_on_a_checkpoint_with_nan_weights_is_one_line(tmp_path, capsys):
    data = write_tiny(tmp_path)
    code, _, err = run_cli(capsys, "train", "charlm", "--data", data, "--out", tmp_path / "run", *TINY_CLI)
    assert code == 0, err
    name = _poison_checkpoint(tmp_path / "run" / "last")
    code, _, err = run_cli(capsys, "sample", tmp_path / "run" / "last", "--length", "5")
    assert_user_error(code, err, "model.safetensors", name, "NaN or inf", "best/")
    code, _, err = run_cli(capsys, "train", "charlm", "--resume", tmp_path / "run", "--max-steps", "30", "--quiet")
    assert_user_error(code, err, "NaN or inf")
