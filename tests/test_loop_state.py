"""rnnlab.train.loop.LoopState: the loop's counters keep the names checkpoints have stored under "loop" since
bfeb559, so old checkpoints resume and new ones read the same."""

import json
import math
from pathlib import Path

import pytest

from rnnlab.train.loop import LoopState

OLD = Path(__file__).parent / "fixtures" / "runs-bfeb559"
COUNTERS = ["step", "elapsed", "train_time", "units", "sum_loss", "n_loss", "best", "bad_evals", "last_eval_step"]


def test_a_fresh_state_writes_the_counters_under_their_old_names():
    loop = LoopState().to_dict()
    assert list(loop) == COUNTERS
    assert loop["step"] == 0 and loop["best"] == math.inf and loop["last_eval_step"] == -1


@pytest.mark.parametrize("task", ["charlm", "classify", "forecast"])
def test_a_bfeb559_loop_dict_reads_back_unchanged(task):
    state = json.loads((OLD / task / "last" / "state.json").read_text())
    loop = LoopState.from_dict(state["loop"], state["metrics"], state["best_metrics"])
    assert loop.to_dict() == state["loop"]
    assert loop.step == state["step"] == 2
    assert loop.last_metrics == state["metrics"] and loop.best_metrics == state["best_metrics"]


def test_round_trip_through_json_keeps_an_infinite_best():
    loop = LoopState(step=7, elapsed=1.5, units=70, sum_loss=3.0, n_loss=2, bad_evals=1, last_eval_step=5)
    again = LoopState.from_dict(json.loads(json.dumps(loop.to_dict())))
    assert again == loop and again.best == math.inf


def test_a_counter_missing_from_the_dict_keeps_its_default():
    loop = LoopState.from_dict({"step": 4, "elapsed": 2.0})
    assert (loop.step, loop.elapsed, loop.best, loop.last_eval_step) == (4, 2.0, math.inf, -1)
    assert loop.last_metrics == {} and loop.best_metrics == {}
