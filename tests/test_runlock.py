"""One training per run folder (a lock naming its holder; stale locks of dead processes taken over), and SIGTERM
handled like Ctrl-C: save last/, exit with the usual words, and --resume continues exactly."""

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from rnnlab.train import CharLMTask, fit
from rnnlab.train.runlock import RunLock, RunLockedError, check_unlocked
from charlm_helpers import TINY_CLI, TINY_TEXT, tiny_config, write_tiny
from helpers import assert_user_error, run_cli

pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")

HOLD = ("import sys, time; from rnnlab.train.runlock import RunLock; RunLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(60)")


@pytest.fixture
def held(tmp_path):
    """A run folder whose lock another live process holds: (folder, its pid)."""
    run = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    yield run, p.pid
    p.kill()
    p.wait()


def _fit(run, **kw):
    cfg = tiny_config(max_steps=10)
    return fit(CharLMTask(cfg, text=TINY_TEXT), cfg.train, run, progress=False, **kw)


def test_a_second_training_on_a_locked_folder_is_refused_naming_the_pid(held, tmp_path, capsys):
    run, pid = held
    with pytest.raises(RunLockedError, match=f"pid {pid} on {socket.gethostname()}"):
        _fit(run, log=lambda s: None)
    data = write_tiny(tmp_path)
    code, _, err = run_cli(capsys, "train", "charlm", "--data", data, "--out", run, *TINY_CLI)
    assert_user_error(code, err, str(run), f"pid {pid}", "another --out")
    assert not (run / "config.json").exists()  # nothing of the refused run was written


def test_the_lock_is_released_at_the_end_and_the_folder_can_be_resumed(tmp_path):
    _fit(tmp_path / "run", log=lambda s: None)
    assert (tmp_path / "run" / ".lock").read_text() == ""
    check_unlocked(tmp_path / "run")
    cfg = tiny_config(max_steps=20)
    r = fit(CharLMTask(cfg, text=TINY_TEXT), cfg.train, tmp_path / "run", resume=tmp_path / "run", progress=False,
            log=lambda s: None)
    assert r.step == 20


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_note(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pid = _dead_pid()
    (run / ".lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": 0}))
    notes = []
    r = _fit(run, log=notes.append)
    assert r.step == 10
    assert any(f"pid {pid}" in n and "no longer running" in n for n in notes), notes


@pytest.mark.parametrize("holder", [
    {"pid": 1, "host": socket.gethostname()},       # alive here, though without the flock: refused, not guessed
    {"pid": 12345, "host": "another-host"},          # cannot be checked from here
])
def test_a_lock_naming_a_live_or_remote_process_is_refused(tmp_path, holder):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text(json.dumps(holder))
    with pytest.raises(RunLockedError, match=f"pid {holder['pid']} on {holder['host']}.*delete"):
        check_unlocked(run)
    with pytest.raises(RunLockedError):
        RunLock(run).acquire()


def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to("/dev/zero")
    with pytest.raises(RunLockedError, match="not a regular file"):
        RunLock(run).acquire()


def _weights(run):
    return load_file(str(run / "last" / "model.safetensors"))


def test_sigterm_saves_and_resume_continues_exactly(tmp_path, capsys):
    data = write_tiny(tmp_path)
    same = ["--data", str(data), "--batch", "4", "--seq-len", "16", "--hidden", "24", "--embed", "8",
            "--eval-chars", "400", "--val-fraction", "0.1", "--warmup-steps", "0", "--decay", "none", "--lr", "0.01",
            "--threads", "1", "--quiet", "--sample-length", "10", "--eval-every", "5"]
    cut = tmp_path / "cut"
    p = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", "charlm", *same, "--out", str(cut),
                          "--max-steps", "1000000", "--max-time", "none"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the first evaluation line: training is under way
        line = p.stdout.readline()
        if line.startswith("step") or not line:
            break
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 143, (out, err)
    assert "interrupted (SIGTERM)" in out and f"--resume {cut}" in out, out
    step = json.loads((cut / "last" / "state.json").read_text())["step"]
    assert step >= 5 and (cut / ".lock").read_text() == ""

    total = str(step + 7)
    code, _, err = run_cli(capsys, "train", "charlm", "--resume", cut, "--max-steps", total, "--threads", "1",
                           "--quiet")
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "charlm", *same, "--out", tmp_path / "full", "--max-steps", total,
                           "--max-time", "none")
    assert code == 0, err
    resumed, full = _weights(cut), _weights(tmp_path / "full")
    assert resumed.keys() == full.keys()
    assert all((resumed[k] == full[k]).all() for k in full)  # exactly, not approximately
