"""A run folder is data: its schema (schema.py) holds every file name, JSON field and size before anything is
read or built from it. Hand-made attacks one by one, then hypothesis mutating a tiny run's JSON (with the hashes
recomputed, as a crafter would): always a clean one-line error (exit 2) or success, in bounded time."""

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rnnlab.cli import main
from rnnlab.train import CharLMTask, CheckpointError, fit, load_checkpoint, load_run
from charlm_helpers import TINY_TEXT, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, one_thread_module):
    """A tiny charlm run folder (10 steps) and the text file it was trained on."""
    root = tmp_path_factory.mktemp("pristine")
    data = root / "tiny.txt"
    data.write_text(TINY_TEXT, encoding="utf-8")
    cfg = tiny_config(max_steps=10)
    cfg.data.data = str(data)
    fit(CharLMTask(cfg, text=TINY_TEXT), cfg.train, root / "run", progress=False, log=lambda s: None)
    return root / "run"


@pytest.fixture
def run(pristine, tmp_path):
    shutil.copytree(pristine, tmp_path / "run")
    return tmp_path / "run"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _edit(folder, config=None, state=None):
    """Rewrite a checkpoint's JSON through the given functions, hashes recomputed."""
    cfg = json.loads((folder / "config.json").read_text())
    st_ = json.loads((folder / "state.json").read_text())
    if config:
        cfg = config(cfg) or cfg
    (folder / "config.json").write_text(json.dumps(cfg))
    if isinstance(st_.get("files"), dict) and "config.json" in st_["files"]:
        st_["files"]["config.json"] = _sha(folder / "config.json")
    if state:
        st_ = state(st_) or st_
    (folder / "state.json").write_text(json.dumps(st_))


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _refused(folder, *fragments):
    t0 = time.monotonic()
    with pytest.raises(CheckpointError) as e:
        load_run(folder)
    assert time.monotonic() - t0 < 10
    msg = str(e.value)
    assert "\n" not in msg and all(f in msg for f in fragments), msg
    code, _, err = _cli("sample", folder, "--length", "3")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return msg


@pytest.mark.parametrize("name", ["../../etc/passwd", "/dev/zero", "/etc/passwd", "model.safetensors/..", "x.json"])
def test_state_json_cannot_name_a_file_outside_the_checkpoint(run, name):
    _edit(run / "best", state=lambda s: s["files"].update({name: "0" * 64}))
    _refused(run / "best", "state.json", "'files'", repr(name))


def test_a_checkpoint_file_that_is_a_link_or_a_device_is_refused(run):
    (run / "best" / "carry.safetensors").unlink()
    (run / "best" / "carry.safetensors").symlink_to("/dev/zero")
    _refused(run / "best", "carry.safetensors", "a link")


def test_a_fifo_in_place_of_state_json_does_not_hang(run):
    (run / "best" / "state.json").unlink()
    os.mkfifo(run / "best" / "state.json")
    _refused(run / "best", "state.json", "not a regular file")


def test_a_huge_state_json_is_refused_before_it_is_read(run, monkeypatch):
    import rnnlab.train.schema as schema
    monkeypatch.setitem(schema.JSON_LIMITS, "state.json", 1000)
    _refused(run / "best", "state.json", "bytes, more than")


def test_a_huge_hidden_size_is_refused_before_anything_is_allocated(run, monkeypatch):
    _edit(run / "best", config=lambda c: c["model"]["rnn"].update(hidden_size=30_000))
    _refused(run / "best", "config.json", "model.rnn.hidden_size is 30000", "RNNLAB_MAX_SIZES")
    # with the cap raised, the shapes in model.safetensors still refuse it, before the real model is built
    monkeypatch.setenv("RNNLAB_MAX_SIZES", "hidden_size=40000")
    _refused(run / "best", "do not match", "asks for [120000, 8]")


def test_a_million_layers_is_refused_at_once(run):
    _edit(run / "best", config=lambda c: c["model"]["rnn"].update(num_layers=10**6))
    _refused(run / "best", "model.rnn.num_layers is 1000000", "limit 64")


@pytest.mark.parametrize("edit,fragment", [
    (lambda c: c["model"]["rnn"].update(hidden_size="24"), "model.rnn.hidden_size must be an integer"),
    (lambda c: c["model"].update(embed=8.5), "model.embed must be an integer"),
    (lambda c: c["train"].update(lr="fast"), "train.lr must be a finite number"),
    (lambda c: c["model"]["rnn"].pop("hidden_size") and None, "do not match"),
    (lambda c: c["model"]["rnn"].update(dropout=-1), "dropout"),
    (lambda c: c.update(model=[]), "model must be a JSON object"),
])
def test_wrong_types_and_ranges_in_config_json(run, edit, fragment):
    _edit(run / "best", config=edit)
    _refused(run / "best", "config.json", fragment)


def test_nan_in_config_json_is_refused(run):
    text = (run / "best" / "config.json").read_text()
    cfg = json.loads(text)
    cfg["train"]["lr"] = math.nan
    _edit(run / "best", config=lambda c: c["train"].update(lr=math.nan))
    _refused(run / "best", "train.lr is nan")


@pytest.mark.parametrize("edit,fragment", [
    (lambda s: s.update(step=-3), "'step' must be an integer >= 0"),
    (lambda s: s["loop"].update(units="many"), "loop.units must be"),
    (lambda s: s.update(carry="lots"), "'carry'"),
    (lambda s: s.update(rng=5), "'rng'"),
    (lambda s: s["optimizer"].update(param_groups="x"), "'optimizer'"),
    (lambda s: s["files"].update({"model.safetensors": "abc"}), "64 hex"),
    (lambda s: s["files"].pop("model.safetensors") and None, "lacks model.safetensors"),
    (lambda s: s["optimizer"]["param_groups"][0].update(betas=[0.9]), "param_groups[0]"),
    (lambda s: s["optimizer"]["param_groups"][0].update(amsgrad="yes"), "param_groups[0]"),
    (lambda s: s["data"].update(epoch=[1]), "'data' must be an object of integers"),
])
def test_wrong_types_and_ranges_in_state_json(run, edit, fragment):
    _edit(run / "best", state=edit)
    with pytest.raises(CheckpointError, match="state.json") as e:
        load_checkpoint(run / "best")
    assert fragment in str(e.value)


# ----- fuzz ------------------------------------------------------------------------------------------------
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 30_000, 10**6, 10**9, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", "lstm", "nan", "../../etc/passwd", "/dev/zero", "/", "a" * 5000]),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.sampled_from(["a", "0", "step"]), st.integers(), max_size=2),
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            if k != "vocab" or not isinstance(v, dict):  # the vocabulary's 60 characters would drown the rest
                yield from _paths(v, prefix + (k,))
            else:
                yield prefix + (k,)


def _mutate(data, doc):
    paths = [p for p in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths), label="path")
    op = data.draw(st.sampled_from(["set", "delete", "add", "files"]), label="op")
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if op == "delete":
        del parent[path[-1]]
    elif op == "add":
        target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
        target[data.draw(st.sampled_from(["extra", "step", "../x"]), label="key")] = data.draw(VALUES, label="value")
    elif op == "files" and isinstance(doc.get("files"), dict):
        doc["files"][data.draw(st.sampled_from(["../../etc/passwd", "/dev/zero", "state.json", ".", ""]))] = "0" * 64
    else:
        parent[path[-1]] = data.draw(VALUES, label="value")


def _fuzz(pristine, tmp_path_factory, data, command):
    folder = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(pristine, folder)
    ck = folder / "last"
    which = data.draw(st.sampled_from(["config.json", "state.json"]), label="file")
    if which == "config.json":
        _edit(ck, config=lambda c: _mutate(data, c))
    else:
        _edit(ck, state=lambda s: _mutate(data, s))
    t0 = time.monotonic()
    code, out, err = _cli(*command(folder))
    assert time.monotonic() - t0 < 20, "took too long"
    assert code in (0, 1, 2), (code, err)
    if code:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow], derandomize=True)


@FUZZ
@given(data=st.data())
def test_fuzzed_run_folders_sample_or_fail_in_one_line(pristine, tmp_path_factory, data):
    _fuzz(pristine, tmp_path_factory, data, lambda f: ["sample", f / "last", "--length", "3", "--seed", "0"])


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_fuzzed_run_folders_resume_or_fail_in_one_line(pristine, tmp_path_factory, data):
    _fuzz(pristine, tmp_path_factory, data,
          lambda f: ["train", "charlm", "--resume", f, "--max-steps", "12", "--quiet", "--threads", "1",
                     "--sample-length", "3"])


def test_a_garbled_rng_state_is_one_line_on_resume(run):
    _edit(run / "last", state=lambda s: s["rng"].update(torch="AAAA"))
    code, _, err = _cli("train", "charlm", "--resume", run, "--max-steps", "12", "--quiet", "--threads", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not match" in err, err


# ----- a forecaster's scaler and series end: wrong types used to give silent NaN forecasts ---------------------
FORECAST = os.path.join(os.path.dirname(__file__), "fixtures", "runs-bfeb559", "forecast")


@pytest.mark.parametrize("edit,fragment", [
    (lambda s: s["scaler"].update(std=0), "std > 0"),
    (lambda s: s["scaler"].update(mean=math.nan), "finite mean"),
    (lambda s: s["scaler"].update(mean="1.5"), "finite mean"),
    (lambda s: s["scaler"].update(log="no"), "log true/false"),
    (lambda s: s.update(tail_values=[1.0, math.inf]), "tail_values"),
    (lambda s: s.update(tail_values="abc"), "tail_values"),
])
def test_a_forecasters_state_is_checked_not_turned_into_nan(tmp_path, edit, fragment):
    shutil.copytree(FORECAST, tmp_path / "run")
    _edit(tmp_path / "run" / "best", state=edit)
    code, out, err = _cli("forecast", tmp_path / "run", "--steps", "3", "--out", "-")
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert "nan" not in out.lower()


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_fuzzed_forecast_runs_forecast_or_fail_in_one_line(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzzf") / "run"
    shutil.copytree(FORECAST, folder)
    which = data.draw(st.sampled_from(["config.json", "state.json"]), label="file")
    _edit(folder / "best", **{"config" if which == "config.json" else "state": lambda d: _mutate(data, d)})
    code, out, err = _cli("forecast", folder, "--steps", "3", "--out", "-")
    assert code in (0, 2), (code, err)
    if code:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    else:
        assert "nan" not in out.lower() and "inf" not in out.lower(), out
