"""One rank of a distributed test run (tests/test_distributed.py starts it under torch.distributed.run).

    python tests/dist_worker.py OUT KILL_AT -- rnnlab-train-arguments...

runs `rnnlab train ...` in float64 (so that a 2-process run can be compared with a 1-process one at 1e-9),
recording every step's (step, loss) to OUT/losses-rank{R}-attempt{A}.json and this rank's final weights to
OUT/weights-rank{R}.safetensors; rank 1 of the first attempt kills itself with SIGKILL after step KILL_AT
(0: never), as a crash would."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch

torch.set_default_dtype(torch.float64)

from safetensors.torch import save_file  # noqa: E402

import rnnlab.cli.runopts as runopts  # noqa: E402
from rnnlab.cli import main  # noqa: E402


def _wrap(out: Path, kill_at: int):
    fit = runopts.fit
    rank, attempt = int(os.environ["RANK"]), int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    losses: list[list[float]] = []
    path = out / f"losses-rank{rank}-attempt{attempt}.json"

    def recording_fit(task, cfg, run, **kw):
        watch = kw.pop("on_step", None)

        def on_step(step: int, loss: float) -> None:
            losses.append([step, loss])
            path.write_text(json.dumps(losses))
            if watch is not None:
                watch(step, loss)
            if rank == 1 and attempt == 0 and step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        result = fit(task, cfg, run, on_step=on_step, **kw)
        save_file({k: v.detach().contiguous() for k, v in task.model.state_dict().items()},
                  str(out / f"weights-rank{rank}.safetensors"))
        return result

    runopts.fit = recording_fit


if __name__ == "__main__":
    out, kill_at, sep, *args = sys.argv[1:]
    if sep != "--":
        raise SystemExit("usage: dist_worker.py OUT KILL_AT -- rnnlab arguments")
    _wrap(Path(out), int(kill_at))
    sys.exit(main(args))
