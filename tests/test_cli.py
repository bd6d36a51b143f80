"""The `rnnlab` command, in-process: a tiny train -> checkpoint -> resume -> sample -> eval, and every user
error as one line on stderr with exit code 2 and no traceback."""

import json

import pytest

from charlm_helpers import TINY_CLI, TINY_TEXT, write_tiny
from helpers import assert_user_error, run_cli as run  # noqa: E402


pytestmark = pytest.mark.usefixtures("in_tmp")





@pytest.fixture
def trained(tmp_path, capsys):
    """A tiny run folder trained by the CLI (20 steps)."""
    data = write_tiny(tmp_path)
    code, out, err = run(capsys, "train", "charlm", "--data", data, "--out", tmp_path / "run", *TINY_CLI)
    assert code == 0, err
    return tmp_path / "run", data, out


def test_train_resume_sample_eval_end_to_end(trained, capsys):
    run_dir, data, out = trained
    assert "reached --max-steps after 20 steps" in out and "--- sample of 40 characters" in out
    assert (run_dir / "best" / "model.safetensors").exists() and (run_dir / "metrics.csv").exists()

    code, out, err = run(capsys, "train", "charlm", "--resume", run_dir, "--max-steps", "30", "--quiet",
                         "--sample-length", "0")
    assert code == 0, err
    assert "resuming from" in out and "after 30 steps" in out
    assert json.loads((run_dir / "last" / "state.json").read_text())["step"] == 30

    code, out1, err = run(capsys, "sample", run_dir, "--prime", "def ", "--length", "50", "--seed", "4")
    assert code == 0, err
    assert out1.startswith("def ") and len(out1.rstrip("\n")) >= 50
    code, out2, _ = run(capsys, "sample", run_dir / "last", "--prime", "def ", "--length", "50", "--seed", "4",
                        "--top-k", "5", "--temperature", "0.5")
    assert code == 0

    code, out, err = run(capsys, "eval", run_dir, "--data", data)
    assert code == 0, err
    bpc = float(out.strip().splitlines()[-1].split()[0])
    assert 0 < bpc < 5
    code, out, err = run(capsys, "eval", run_dir)  # default: the run's validation split
    assert code == 0 and "bits per character" in out


def test_same_seed_same_sample(trained, capsys):
    run_dir = trained[0]
    outs = [run(capsys, "sample", run_dir, "--length", "60", "--seed", "11")[1] for _ in range(2)]
    assert outs[0] == outs[1]


@pytest.mark.parametrize("argv", [[], ["train"], ["train", "charlm"], ["sample"], ["eval"], ["env"]])
def test_every_help_shows_examples(capsys, argv):
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0 and "examples:" in out


def test_missing_file(tmp_path, capsys):
    code, _, err = run(capsys, "train", "charlm", "--data", tmp_path / "nope.txt", *TINY_CLI)
    assert_user_error(code, err, "nope.txt", "no such file")


def test_empty_file(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    code, _, err = run(capsys, "train", "charlm", "--data", tmp_path / "empty.txt", *TINY_CLI)
    assert_user_error(code, err, "is empty")


def test_binary_file(tmp_path, capsys):
    (tmp_path / "model.bin").write_bytes(bytes(range(256)) * 40)
    code, _, err = run(capsys, "train", "charlm", "--data", tmp_path / "model.bin", *TINY_CLI)
    assert_user_error(code, err, "binary")


def test_undecodable_file_and_the_encoding_fix(tmp_path, capsys):
    path = tmp_path / "latin.txt"
    path.write_bytes(TINY_TEXT.replace("return", "r\xe9turn").encode("latin-1"))
    code, _, err = run(capsys, "train", "charlm", "--data", path, *TINY_CLI)
    assert_user_error(code, err, "not valid utf-8", "--encoding latin-1")
    code, _, err = run(capsys, "train", "charlm", "--data", path, "--encoding", "latin-1", "--out",
                       tmp_path / "run", *TINY_CLI)
    assert code == 0, err


def test_corpus_smaller_than_one_batch(tmp_path, capsys):
    (tmp_path / "small.txt").write_text("just a few words\n" * 3)
    code, _, err = run(capsys, "train", "charlm", "--data", tmp_path / "small.txt", *TINY_CLI)
    assert_user_error(code, err, "fewer than one batch", "--batch")


@pytest.mark.parametrize("option,value,fragment", [
    ("--cell", "lstmm", "invalid choice: 'lstmm'"),
    ("--backend", "warp", "invalid choice: 'warp'"),
    ("--hidden", "many", "invalid int value"),
    ("--device", "tpu", "device"),
    ("--lr", "-1", "lr"),
    ("--data", "builtin:nope", "builtin:pystdlib"),
    ("--threads", "0", "--threads must be >= 1"),
])
def test_unknown_option_values(tmp_path, capsys, option, value, fragment):
    data = write_tiny(tmp_path)
    # the option comes last, so it overrides TINY_CLI's value of it
    code, _, err = run(capsys, "train", "charlm", "--data", data, "--out", tmp_path / "run", *TINY_CLI, option, value)
    assert_user_error(code, err, fragment)


def test_variant_on_the_wrong_cell(tmp_path, capsys):
    code, _, err = run(capsys, "train", "charlm", "--data", write_tiny(tmp_path), "--cell", "gru", "--peephole",
                       *TINY_CLI)
    assert_user_error(code, err, "--peephole is only defined for the LSTM")


def test_prime_with_unseen_characters(trained, capsys):
    code, out, err = run(capsys, "sample", trained[0], "--prime", "Ωmega")
    assert_user_error(code, err, "prime text", "'Ω'", "never saw")
    assert out == ""  # nothing printed before the error


def test_bad_sampling_options(trained, capsys):
    assert_user_error(*run(capsys, "sample", trained[0], "--temperature", "-1")[::2], "temperature")
    assert_user_error(*run(capsys, "sample", trained[0], "--top-k", "0")[::2], "top-k")


def test_eval_on_text_with_unseen_characters(trained, tmp_path, capsys):
    (tmp_path / "other.txt").write_text("Ünïcödé text the model never saw\n")
    code, _, err = run(capsys, "eval", trained[0], "--data", tmp_path / "other.txt")
    assert_user_error(code, err, "never saw")


def test_missing_or_corrupt_checkpoint(trained, tmp_path, capsys):
    run_dir = trained[0]
    assert_user_error(*run(capsys, "sample", tmp_path / "nowhere")[::2], "no such run or checkpoint")
    assert_user_error(*run(capsys, "sample", tmp_path)[::2], "holds no checkpoint")
    weights = run_dir / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    assert_user_error(*run(capsys, "sample", run_dir / "best")[::2], "corrupt or truncated")


def test_resume_with_a_different_model_is_refused(trained, capsys):
    code, _, err = run(capsys, "train", "charlm", "--resume", trained[0], "--hidden", "32", "--max-steps", "40")
    assert_user_error(code, err, "--hidden 24", "not 32")


def test_resume_of_a_finished_run_asks_for_a_larger_budget(trained, capsys):
    code, _, err = run(capsys, "train", "charlm", "--resume", trained[0], "--quiet")
    assert_user_error(code, err, "already used its budget", "--max-steps")


def test_out_folder_that_holds_a_run(trained, capsys):
    run_dir, data, _ = trained
    code, _, err = run(capsys, "train", "charlm", "--data", data, "--out", run_dir, *TINY_CLI)
    assert_user_error(code, err, "already holds a run", "--resume")


def test_env_reports_backends(capsys):
    code, out, _ = run(capsys, "env")
    assert code == 0 and "torch" in out
    assert "LSTM: auto -> native" in out and "GRU layer_norm: auto -> fused" in out


def test_env_without_cuda_is_a_user_error(capsys):
    if __import__("torch").cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = run(capsys, "env", "--device", "cuda")
    assert_user_error(code, err, "no CUDA device")
