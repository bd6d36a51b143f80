"""The default thread count: from the usable cores, their load and the work per step; --threads overrides;
`rnnlab env` and `rnnlab train` say what was chosen and why."""

import pytest
import torch

from rnnlab.layers import RecurrentConfig
from rnnlab.train.threads import SMALL_WORK, choose_threads, step_work, usable_cores
from charlm_helpers import TINY_CLI, write_tiny
from helpers import run_cli

pytestmark = pytest.mark.usefixtures("in_tmp")

BIG = 10 * SMALL_WORK


@pytest.mark.parametrize("cores,load,ceiling,expected,why", [
    (2, 0.1, 2, 2, "2 usable cores, load 0.1"),      # idle: recognize is 1.5x faster on 2 threads than on 1
    (2, 1.0, 2, 1, "busy machine: load 1.0"),        # another job holds a core
    (2, 3.5, 2, 1, "busy machine"),
    (16, 4.0, 8, 8, "16 usable cores"),              # never more than torch's own default
    (16, 10.2, 16, 6, "load 10.2"),                  # the free cores
    (1, 0.0, 4, 1, "busy machine"),                  # affinity limits to one core
])
def test_choice_follows_cores_and_load(cores, load, ceiling, expected, why):
    c = choose_threads(BIG, cores=cores, load=load, ceiling=ceiling)
    assert c.threads == expected and why in c.reason


def test_small_steps_take_one_thread_even_when_idle():
    forecast = step_work(32, RecurrentConfig(hidden_size=64))
    charlm = step_work(32, RecurrentConfig(hidden_size=256))
    assert forecast < SMALL_WORK < charlm
    c = choose_threads(forecast, cores=8, load=0.0, ceiling=8)
    assert c.threads == 1 and "too little" in c.reason


def test_unknown_load_uses_the_cores(monkeypatch):
    import rnnlab.train.threads as threads

    monkeypatch.setattr(threads, "_load", lambda: None)  # a system without getloadavg
    c = choose_threads(BIG, cores=4, ceiling=4)
    assert c.threads == 4 and "load unknown" in c.reason
    assert 1 <= usable_cores()


def test_train_says_its_choice_and_threads_overrides(tmp_path, capsys):
    data = write_tiny(tmp_path)
    code, out, err = run_cli(capsys, "train", "charlm", "--data", data, "--out", tmp_path / "a", *TINY_CLI)
    assert code == 0, err
    assert "threads 1 (" in out and "too little" in out  # the tiny model's steps are small
    code, out, err = run_cli(capsys, "train", "charlm", "--data", data, "--out", tmp_path / "b", *TINY_CLI,
                             "--threads", "1")  # 2 would crawl on a busy machine: the reason tells them apart
    assert code == 0, err
    assert "threads 1 (--threads)" in out and torch.get_num_threads() == 1


def test_env_reports_the_default(capsys):
    code, out, _ = run_cli(capsys, "env")
    assert code == 0 and "rnnlab train's default: threads " in out


def test_thread_watch_drops_to_one_thread_when_others_take_the_cores(monkeypatch):
    """Another training starting beside this one: the cores others keep busy rise, the watch sets 1 thread once."""
    import torch

    from rnnlab.train import threads

    before = torch.get_num_threads()
    logs = []
    clock = [100.0]
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    stat = [(1000, 2000)]  # (idle, total) jiffies
    monkeypatch.setattr(threads, "_cpu_times", lambda: stat[0])
    own = [0.0]
    monkeypatch.setattr(threads, "_own_cpu", lambda: own[0])
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    try:
        watch = threads.ThreadWatch(2, logs.append, every=5.0)
        clock[0], stat[0], own[0] = 103.0, (1300, 2600), 3.0
        watch(10, 0.0)  # before `every`: nothing looked at
        assert not logs
        clock[0], stat[0], own[0] = 106.0, (1600, 3200), 6.0  # half idle, all of it ours: nobody else
        watch(20, 0.0)
        assert not logs and torch.get_num_threads() == before
        clock[0], stat[0], own[0] = 112.0, (1600, 4400), 12.0  # no idle left, we used 1 core: others 1 core
        watch(30, 0.0)
        assert torch.get_num_threads() == 1 and len(logs) == 1 and "threads 1 from step 30" in logs[0]
        watch(40, 0.0)
        assert len(logs) == 1  # once
    finally:
        torch.set_num_threads(before)


def test_thread_watch_is_off_for_one_thread_or_where_proc_stat_is_missing(monkeypatch):
    from rnnlab.train import threads

    assert threads.ThreadWatch(1, print).done
    monkeypatch.setattr(threads, "_cpu_times", lambda: None)
    assert threads.ThreadWatch(2, print).done
