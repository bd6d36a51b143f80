"""Training on several processes (issue 15): torch.distributed.run, gloo, 2 processes, tiny models, float64.

The oracle: a 2-process run whose ranks take --batch B each equals, step for step, a 1-process run with --batch
2B (and one process with --accumulate 2 equals it too): the global batch is cut exactly as one process would
draw it, and DDP's averaged gradient of two equal parts' mean losses is the whole batch's. Launched runs go
through tests/dist_worker.py, which runs `rnnlab train` in float64 and records every step's loss.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rnnlab.cli.runopts as runopts
from rnnlab.cli import main
from rnnlab.data.batching import ShuffledBatches, SplitBatches, part
from rnnlab.data.sequences import LengthBuckets
from rnnlab.data.streams import TextStreams

pytestmark = pytest.mark.usefixtures("in_tmp", "one_thread")

WORKER = Path(__file__).with_name("dist_worker.py")
TOL = dict(rtol=1e-9, atol=1e-9)
FIT = runopts.fit  # the real one, whatever a test's recording wrapper put in its place


# ----- data and runs ----------------------------------------------------------------------------------------
def _text(path: Path) -> Path:
    r = random.Random(0)
    words = ["def", "class", "return", "self", "import", "for", "in", "if", "else", "x", "y", "print"]
    path.write_text(" ".join(r.choice(words) for _ in range(1500)))
    return path


def _csv(path: Path) -> Path:
    r = random.Random(1)
    rows = ["text,label"]
    for i in range(63):  # 51 training rows: global batches of 8, then one of 3 cut unevenly
        label = i % 2
        vocab = ["good", "fine", "great"] if label else ["bad", "poor", "awful"]
        words = [r.choice(vocab) for _ in range(r.randint(2, 7))]
        rows.append(f"{' '.join(words + [r.choice(['a', 'the', 'it'])])},{'pos' if label else 'neg'}")
    path.write_text("\n".join(rows) + "\n")
    return path


def charlm_args(data: Path, out: Path, batch: int, steps: int = 8) -> list[str]:
    return ["charlm", "--data", str(data), "--hidden", "12", "--embed", "8", "--batch", str(batch), "--seq-len", "10",
            "--max-steps", str(steps), "--eval-every", "4", "--eval-chars", "100", "--warmup-steps", "2",
            "--sample-length", "0", "--quiet", "--threads", "1", "--out", str(out)]


def classify_args(data: Path, out: Path, batch: int, steps: int = 10) -> list[str]:
    # no dropout: its masks are drawn per micro-batch, so split batches could not equal the whole one
    return ["classify", "--data", str(data), "--hidden", "8", "--embed", "8", "--batch", str(batch), "--min-count", "1",
            "--dropout", "0", "--embed-dropout", "0",
            "--max-steps", str(steps), "--eval-every", "5", "--warmup-steps", "2", "--patience", "none",
            "--quiet", "--threads", "1", "--out", str(out)]


def run_here(args: list[str], monkeypatch) -> tuple[int, list[float], dict]:
    """`rnnlab train ARGS` in this process, in float64: (exit code, every step's loss, the final weights)."""
    losses, weights = [], {}
    fit = FIT

    def recording_fit(task, cfg, run, **kw):
        kw.pop("on_step", None)
        result = fit(task, cfg, run, on_step=lambda step, loss: losses.append(loss), **kw)
        weights.update({k: v.detach().clone() for k, v in task.model.state_dict().items()})
        return result

    monkeypatch.setattr(runopts, "fit", recording_fit)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        code = main(["train", *args])
    finally:
        torch.set_default_dtype(default)
    return code, losses, weights


def launch(out: Path, args: list[str], *, kill_at: int = 0, restarts: int = 0, wait: bool = True):
    """Two ranks of `rnnlab train ARGS` under torch.distributed.run (--standalone: a free port of its own)."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "--max-restarts", str(restarts), "--monitor-interval", "0.2", str(WORKER), str(out), str(kill_at), "--",
           "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RNNLAB_DIST_TIMEOUT": "60"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if not wait:
        return proc
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


def losses_of(out: Path, rank: int, attempt: int = 0) -> dict[int, float]:
    return dict(json.loads((out / f"losses-rank{rank}-attempt{attempt}.json").read_text()))


def close(a: dict[int, float], b: dict[int, float]) -> None:
    assert sorted(a) == sorted(b)
    for step in a:
        assert math.isclose(a[step], b[step], rel_tol=1e-9, abs_tol=1e-9), (step, a[step], b[step])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """1-process runs with the doubled batch, in float64: the losses every other run must reproduce."""
    root = tmp_path_factory.mktemp("ref")
    text, table = _text(root / "t.txt"), _csv(root / "c.csv")
    mp = pytest.MonkeyPatch()
    torch.set_num_threads(1)
    try:
        cl = run_here(charlm_args(text, root / "charlm", 6), mp)
        cc = run_here(classify_args(table, root / "classify", 8), mp)
    finally:
        mp.undo()
    assert cl[0] == 0 and cc[0] == 0
    return {"text": text, "csv": table, "charlm": cl, "classify": cc}


# ----- the data's parts -------------------------------------------------------------------------------------
def test_text_streams_parts_are_the_global_batch():
    ids = torch.arange(2000, dtype=torch.int16)
    whole = TextStreams(ids, 6, 5, seed=3)
    parts = [TextStreams(ids, 2, 5, seed=3) for _ in range(3)]
    for r, p in enumerate(parts):
        p.distribute(r, 3)
    for _ in range(2 * whole.chunks_per_epoch + 3):  # across two epoch ends (the offsets change)
        b = next(whole)
        got = [next(p) for p in parts]
        assert torch.equal(torch.cat([g.x for g in got]), b.x) and torch.equal(torch.cat([g.y for g in got]), b.y)
        assert all(g.reset_state == b.reset_state for g in got)


def test_accumulated_parts_and_uneven_batches():
    # rank 1 of 2 with accumulate 2 takes parts 2 and 3 of each global batch of 8; shares weigh uneven parts
    make = lambda size: LengthBuckets(list(range(1, 12)), size, seed=0)  # noqa: E731
    whole, mine = make(8), SplitBatches(make, 2)
    mine.distribute(1, 2, accumulate=2)
    for _ in range(5):
        g = next(whole)
        a, b = next(mine), next(mine)
        cuts = [len(g) * j // 4 for j in range(5)]
        assert list(a) == list(g[cuts[2]:cuts[3]]) and list(b) == list(g[cuts[3]:cuts[4]])
    assert part([7], 4, 2) == ([7], 0.0) and part([7, 8, 9, 10], 4, 1) == ([8], 0.25)
    # shuffled samples: the ranks' parts, in rank order, are one process's batch, epoch after epoch
    whole = ShuffledBatches(list(range(10)), 4, list, seed=0)
    ranks = [ShuffledBatches(list(range(10)), 2, list, seed=0) for _ in range(2)]
    for r, s in enumerate(ranks):
        s.distribute(r, 2)
    for _ in range(7):
        assert next(ranks[0]) + next(ranks[1]) == next(whole)
    assert ranks[1].state_dict() == whole.state_dict()


def test_a_failed_collective_is_one_line_and_other_errors_pass(monkeypatch):
    from rnnlab.train.distributed import DistributedError, World, collective, timeout_s

    world = World(rank=1, size=4)
    with pytest.raises(DistributedError) as e:
        with collective("waiting for rank 0's evaluation", world):
            raise RuntimeError("[../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:1727. "
                               "This is typically caused by a remote worker crash\nmore")
    text = str(e.value)
    assert "\n" not in text and text.startswith("rank 1 of 4: waiting for rank 0's evaluation failed")
    assert "(Connection closed by peer [127.0.0.1]:1727)" in text and "--resume" in text
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes") as e:  # a model's own error is not a peer's
        with collective("training step 3", world):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)")
    assert not isinstance(e.value, DistributedError)
    monkeypatch.setenv("RNNLAB_DIST_TIMEOUT", "7.5")
    assert timeout_s() == 7.5
    monkeypatch.setenv("RNNLAB_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="RNNLAB_DIST_TIMEOUT='soon' must be a number of seconds"):
        timeout_s()
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"RANK=2 must be in \[0, WORLD_SIZE=2\)"):
        World.from_env()


# ----- one process, accumulating --------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["charlm", "classify"])
def test_accumulate_2_equals_a_double_batch(task, reference, monkeypatch, tmp_path):
    make, batch = (charlm_args, 3) if task == "charlm" else (classify_args, 4)
    data = reference["text"] if task == "charlm" else reference["csv"]
    code, losses, weights = run_here([*make(data, tmp_path / "acc", batch), "--accumulate", "2"], monkeypatch)
    assert code == 0
    _, ref_losses, ref_weights = reference[task]
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(ref_losses), **TOL)
    for k in ref_weights:
        torch.testing.assert_close(weights[k], ref_weights[k], **TOL)


def test_resume_must_keep_the_global_batch(reference, monkeypatch, tmp_path, capsys):
    run = tmp_path / "acc"
    code, *_ = run_here([*charlm_args(reference["text"], run, 3, steps=4), "--accumulate", "2"], monkeypatch)
    assert code == 0
    capsys.readouterr()
    code = main(["train", "charlm", "--resume", str(run), "--max-steps", "8", "--accumulate", "1", "--quiet",
                 "--sample-length", "0", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "trained on 1 process(es) with --accumulate 2" in err and "--accumulate 2" in err


# ----- two processes ----------------------------------------------------------------------------------------
def test_charlm_two_processes_equal_one_with_the_double_batch(reference, tmp_path):
    out, run = tmp_path / "rec", tmp_path / "run"
    code, stdout, stderr = launch(out, charlm_args(reference["text"], run, 3))
    assert code == 0, stderr[-2000:]
    _, ref_losses, ref_weights = reference["charlm"]
    ref = dict(enumerate(ref_losses, 1))
    close(losses_of(out, 0), ref)
    close(losses_of(out, 1), ref)
    # the parameters are the same on both ranks (and the 1-process run's)
    w0, w1 = load_file(str(out / "weights-rank0.safetensors")), load_file(str(out / "weights-rank1.safetensors"))
    for k in ref_weights:
        assert torch.equal(w0[k], w1[k]), k
        torch.testing.assert_close(w0[k], ref_weights[k], **TOL)
    # one run folder, written once: one log line and one CSV row per evaluation, every rank's state saved
    assert stdout.count("step      4 ") == 1 and stdout.count("step      8 ") == 1 and stdout.count("reading ") == 1
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["4", "8"]
    state = json.loads((run / "last" / "state.json").read_text())
    assert state["distributed"]["world"] == 2 and len(state["distributed"]["ranks"]) == 2
    assert state["distributed"]["ranks"][0]["rng"] != state["distributed"]["ranks"][1]["rng"]
    assert sorted(p.name for p in run.iterdir()) == [".lock", "best", "config.json", "last", "loss.png", "metrics.csv"]


def test_classify_two_processes_equal_one_with_the_double_batch(reference, tmp_path):
    # 51 training rows in global batches of 8, then 3 (cut 1 + 2: weighed by their shares), across an epoch end
    out = tmp_path / "rec"
    code, _, stderr = launch(out, classify_args(reference["csv"], tmp_path / "run", 4))
    assert code == 0, stderr[-2000:]
    ref = dict(enumerate(reference["classify"][1], 1))
    close(losses_of(out, 0), ref)
    close(losses_of(out, 1), ref)
    w0, w1 = load_file(str(out / "weights-rank0.safetensors")), load_file(str(out / "weights-rank1.safetensors"))
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


def test_a_killed_rank_stops_the_other_and_resume_continues_exactly(reference, tmp_path, monkeypatch):
    out, run = tmp_path / "rec", tmp_path / "run"
    t0 = time.monotonic()
    code, _, stderr = launch(out, charlm_args(reference["text"], run, 3), kill_at=6)
    assert code != 0 and time.monotonic() - t0 < 90
    mine = [line for line in stderr.splitlines() if line.startswith("rnnlab train: error:")]
    assert len(mine) == 1 and "rank 0 of 2" in mine[0] and "another rank stopped" in mine[0], stderr[-2000:]
    assert "rnnlab/" not in stderr  # no frame of rnnlab's code (torchrun prints a traceback of its own)
    assert json.loads((run / "last" / "state.json").read_text())["step"] == 4  # the last checkpoint, intact
    # one process with --accumulate 2 keeps the global batch: it continues the 2-process run exactly
    code, losses, _ = run_here(["charlm", "--resume", str(run), "--quiet", "--sample-length", "0", "--threads", "1"],
                               monkeypatch)
    assert code == 0
    close(dict(enumerate(losses, 5)), {s: v for s, v in enumerate(reference["charlm"][1], 1) if s > 4})


def test_a_restart_resumes_by_itself(reference, tmp_path):
    out, run = tmp_path / "rec", tmp_path / "run"
    code, stdout, stderr = launch(out, charlm_args(reference["text"], run, 3), kill_at=6, restarts=1)
    assert code == 0, "\n".join(line for line in stderr.splitlines() if "rnnlab" in line)
    assert "restart 1 by torchrun: resuming from" in stdout
    ref = dict(enumerate(reference["charlm"][1], 1))
    close(losses_of(out, 0, attempt=1), {s: v for s, v in ref.items() if s > 4})
    close(losses_of(out, 1, attempt=0), {s: v for s, v in ref.items() if s <= 6})


def test_a_second_training_on_the_folder_is_refused(reference, tmp_path, capsys):
    # started with the shortcut, `rnnlab train ... --nproc 2` (torch.distributed.run's API in that process)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", *charlm_args(reference["text"], run, 3, 100_000),
                             "--nproc", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (run / "last").exists():
            time.sleep(0.2)
        holder = json.loads((run / ".lock").read_text())
        if Path("/proc").is_dir():  # a worker of the launcher holds it (rank 0), not the launcher
            stat = Path(f"/proc/{holder['pid']}/stat").read_text()
            assert int(stat.rpartition(")")[2].split()[1]) == proc.pid
        code = main(["train", *charlm_args(reference["text"], run, 3)])
        err = capsys.readouterr().err
        assert code == 2 and f"pid {holder['pid']}" in err and len(err.strip().splitlines()) == 1
    finally:
        proc.send_signal(signal.SIGTERM)  # the launcher stops its workers: they save last/ and end
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in stderr, stderr[-2000:]
    assert "interrupted (SIGTERM) after" in stdout
    step = json.loads((run / "last" / "state.json").read_text())["step"]
    assert f"interrupted (SIGTERM) after {step} steps" in stdout  # saved where it stopped
