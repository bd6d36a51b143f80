"""The kernels' plumbing: the batch layout the layer computes once per forward, the explicit backend list with
one ordering rule, and the backend name checked once (at construction, not per forward)."""

import pytest
import torch

import rnnlab
from rnnlab.kernels import BatchLayout, RunOptions, auto, registry
from rnnlab.cells.config import CellConfig


def test_layout_without_lengths_is_the_plain_path():
    layout = BatchLayout.of(None, 5)
    assert (layout.T, layout.T_run, layout.padded, layout.perm, layout.valid) == (5, 5, False, None, None)
    t = torch.randn(5, 2, 3)
    assert layout.zero_padding(t) is t and layout.full_length(t) is t


def test_layout_of_full_lengths_is_not_padded_but_keeps_them():
    layout = BatchLayout.of(torch.tensor([4, 4, 4]), 4)
    assert not layout.padded and layout.T_run == 4 and layout.batch_sizes is None
    assert layout.sorted_lengths.tolist() == [4, 4, 4]  # what native packs with


def test_layout_sorts_longest_first_stably_and_counts_rows_per_step():
    lengths = torch.tensor([2, 4, 1, 4])
    layout = BatchLayout.of(lengths, 6)
    assert layout.padded and layout.T_run == 4
    assert layout.perm.tolist() == [1, 3, 0, 2]  # ties keep their order
    assert layout.sorted_lengths.tolist() == [4, 4, 2, 1]
    assert layout.batch_sizes == (4, 3, 2, 2)
    assert layout.last.tolist() == [3, 3, 1, 0]
    assert layout.inverse.tolist() == [2, 0, 3, 1]
    valid = layout.valid[..., 0]  # (T_run, B) in the caller's order
    assert valid.tolist() == [[True] * 4, [True, True, False, True], [False, True, False, True], [False, True, False, True]]


def test_layout_sorted_batch_has_no_permutation():
    assert BatchLayout.of(torch.tensor([3, 2, 2]), 3).perm is None


def test_zero_padding_and_full_length():
    layout = BatchLayout.of(torch.tensor([1, 3]), 5)
    y = torch.ones(3, 2, 2)  # (T_run, B, n): backends may leave anything finite at padded steps
    out = layout.full_length(layout.zero_padding(y))
    assert out.shape == (5, 2, 2)
    assert out[:, 0, 0].tolist() == [1, 0, 0, 0, 0] and out[:, 1, 0].tolist() == [1, 1, 1, 0, 0]


@pytest.mark.parametrize("backend", ["reference", "native", "fused"])
def test_padded_steps_read_as_zero_on_every_backend(backend):
    torch.manual_seed(0)
    m = rnnlab.GRU(3, 4, bidirectional=True, backend=backend)
    lengths = torch.tensor([2, 5, 3])
    out, _ = m(torch.randn(6, 3, 3), lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        assert torch.count_nonzero(out[n:, b]) == 0 and torch.count_nonzero(out[:n, b]) > 0


def test_backends_are_listed_once_and_ordered_by_one_rule():
    assert set(registry.BACKENDS) == {"reference", "native", "fused", "scan"}
    assert rnnlab.kernels.backend_names() == ("auto", *registry.BACKENDS)
    options = RunOptions(CellConfig("lstm", 3, 4, peephole=True))
    order, _ = auto.preference(options, torch.device("cpu"))
    assert registry.choose("t", "auto", options, torch.device("cpu"))[0].name == order[0]


def test_backend_name_is_checked_at_construction_not_in_forward(monkeypatch):
    with pytest.raises(ValueError, match="unknown backend 'warp'"):
        rnnlab.LSTM(3, 4, backend="warp")
    m = rnnlab.LSTM(3, 4, backend="fused")

    def fail(*args):
        raise AssertionError("forward re-validated the backend name")

    monkeypatch.setattr(registry, "backend_names", fail)
    m(torch.randn(2, 1, 3))
