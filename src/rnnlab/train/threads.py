"""How many CPU threads a training should use, decided from the machine as it is.

torch's default is one thread per physical core, whatever else runs. Beside other jobs that is the worst
choice: two default `rnnlab train forecast` runs side by side on a 2-core machine did 249 and 238 windows/s,
with one thread each 3,000 and 3,300 (issue 19), because each step's small parallel regions wait on threads
whose cores are busy. Yet idle, two threads are 1.5x faster than one for recognize. So the default looks at:

    cores   the cores this process may run on (os.sched_getaffinity: a container's or taskset's limit)
    load    the cores busy now: the busy share of the CPUs over 0.2 s (/proc/stat), or the 1-minute load
            average (os.getloadavg) where that is missing or every core is busy; ours not yet among them
    work    multiply-adds of the recurrent matrix product of one time step (B x G x H x H x D x L): below
            SMALL_WORK a step is too small for threads to pay for their synchronisation

    threads = 1                           when work < SMALL_WORK, or fewer than 2 cores are free (cores - load)
            = min(free cores, torch's)    otherwise

`--threads N` overrides it; `rnnlab env` and `rnnlab train` say what was chosen and why. OpenMP's waiting
policy: with OMP_WAIT_POLICY=PASSIVE waiting threads sleep instead of spinning, which is what a shared machine
wants; it must be in the environment before torch starts (export it for sweeps), and `choose_threads` reports
whether it is.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

__all__ = ["SMALL_WORK", "ThreadChoice", "ThreadWatch", "choose_threads", "step_work", "usable_cores"]

SMALL_WORK = 1_000_000  # multiply-adds per time step; forecast's default (32 x 4 x 64 x 64) is 0.5 M


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str      # one clause for people: why this many

    def line(self) -> str:
        wait = os.environ.get("OMP_WAIT_POLICY", "")
        omp = f"; OMP_WAIT_POLICY={wait}" if wait else ""
        return f"threads {self.threads} ({self.reason}{omp})"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's limit), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _load() -> float | None:
    """Cores busy now. The 1-minute load average lags: a minute after other work ended it still reads ~1.6 on
    an idle 2-core machine, and a lone charlm run then took 1 thread at 0.57x the speed of 2
    (benchmarks/contention.py). So on Linux the busy share of the CPUs over 0.2 s (/proc/stat) is what counts;
    when that shows every core busy, the load average (which also counts the jobs waiting for a core) can say
    how oversubscribed the machine is. Elsewhere: the load average."""
    try:
        average = os.getloadavg()[0]
    except (AttributeError, OSError):
        average = None
    now = _busy_cores()
    if now is None:
        return average
    cpus = os.cpu_count() or 1
    if average is not None and now >= cpus - 0.5:
        return max(now, average)
    return now


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs from /proc/stat's first line."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 4:
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)  # idle + iowait


def _busy_cores(seconds: float = 0.2) -> float | None:
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(seconds)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return None
    idle = (second[0] - first[0]) / (second[1] - first[1])
    return (1.0 - idle) * (os.cpu_count() or 1)


def step_work(batch: int, rnn) -> int:
    """Multiply-adds of one time step's recurrent products for a RecurrentConfig `rnn` at batch size `batch`."""
    gates = {"lstm": 4, "gru": 3}.get(getattr(rnn, "cell", "lstm"), 1)
    h = rnn.hidden_size
    return batch * gates * h * h * (2 if rnn.bidirectional else 1) * rnn.num_layers


def choose_threads(work: int | None = None, *, cores: int | None = None, load: float | None = None,
                   ceiling: int | None = None) -> ThreadChoice:
    """The thread count for a training with `work` multiply-adds per time step (None: unknown) on this machine
    (cores, load and torch's own default `ceiling` are read when not given)."""
    cores = cores if cores is not None else usable_cores()
    load = load if load is not None else _load()
    if ceiling is None:
        import torch

        ceiling = torch.get_num_threads()
    if work is not None and work < SMALL_WORK:
        return ThreadChoice(1, f"{work / 1e6:.2g} M multiply-adds per time step is too little for threads to pay")
    if load is None:
        return ThreadChoice(max(1, min(cores, ceiling)), f"{cores} usable cores, load unknown")
    free = cores - load
    if free < 1.5:
        return ThreadChoice(1, f"busy machine: load {load:.1f} on {cores} usable core{'s' * (cores > 1)}; more "
                               f"threads would wait on cores other jobs hold")
    n = max(1, min(int(free + 0.5), cores, ceiling))
    return ThreadChoice(n, f"{cores} usable cores, load {load:.1f}")


class ThreadWatch:
    """Watches a run whose thread count was chosen (not given with --threads) and drops it to 1 thread when
    other processes come to hold the cores: called after every step (fit's on_step), it looks every `every`
    seconds at the cores busy over the interval (/proc/stat) minus this process's own CPU time (os.times).

    Why: trainings started at the same moment on an idle machine each see it idle and take every core; two charlm
    runs so started did 0.08x the characters/s of --threads 1 each, their OpenMP threads spinning on cores the
    other held (benchmarks/README.md, contention). One-way (never back up) and once: changing the thread count
    changes float rounding, so a run changes it at most once, and says so in its log."""

    def __init__(self, threads: int, log, every: float = 5.0) -> None:
        self.threads, self.log, self.every = threads, log, every
        self.done = threads <= 1 or _cpu_times() is None
        self._mark()

    def _mark(self) -> None:
        self.t0, self.cpu0, self.own0 = time.monotonic(), _cpu_times(), _own_cpu()

    def others_busy(self) -> float | None:
        """Cores other processes kept busy since the last look; None when it cannot be read."""
        cpu, own, now = _cpu_times(), _own_cpu(), time.monotonic()
        if cpu is None or self.cpu0 is None or cpu[1] <= self.cpu0[1] or now <= self.t0:
            return None
        busy = (1.0 - (cpu[0] - self.cpu0[0]) / (cpu[1] - self.cpu0[1])) * (os.cpu_count() or 1)
        return max(0.0, busy - (own - self.own0) / (now - self.t0))

    def __call__(self, step: int, loss: float) -> None:
        if self.done or time.monotonic() - self.t0 < self.every:
            return
        others = self.others_busy()
        self._mark()
        free = usable_cores() - others if others is not None else None
        if free is not None and free < 1.5:
            import torch

            torch.set_num_threads(1)
            self.done = True
            self.log(f"threads 1 from step {step} (other processes now keep {others:.1f} cores busy; "
                     f"{self.threads} threads would wait on them; --threads N fixes the count)")


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system
