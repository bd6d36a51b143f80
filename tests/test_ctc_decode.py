"""CTC decoding against oracles: greedy on hand-made score matrices, prefix beam search against brute force
(every path enumerated), and the model's loss against torch's CTCLoss definition on a case worked by hand."""

import itertools
import math

import pytest
import torch

from rnnlab.layers import RecurrentConfig
from rnnlab.models.ctc import CTCRecognizer, CTCRecognizerConfig, greedy_decode, min_frames, prefix_beam_search


def onehot_scores(path, C=4):
    """(1, T, C) log-probabilities whose argmax follows `path`."""
    lp = torch.full((len(path), C), math.log(0.1 / (C - 1)))
    for t, k in enumerate(path):
        lp[t, k] = math.log(0.9)
    return lp.unsqueeze(0)


@pytest.mark.parametrize("path, expected", [
    ([0, 1, 1, 0, 2, 2, 2, 0], [1, 2]),        # repeats merge, blanks drop
    ([1, 0, 1, 1, 0, 0, 1], [1, 1, 1]),        # a blank separates equal labels
    ([0, 0, 0], []),                           # all blank: empty
    ([3, 2, 1], [3, 2, 1]),
    ([2, 2, 0, 2, 3, 3, 0, 0, 3], [2, 2, 3, 3]),
])
def test_greedy_decode_hand_made(path, expected):
    assert greedy_decode(onehot_scores(path)) == [expected]


def test_greedy_decode_respects_frames():
    scores = torch.cat([onehot_scores([1, 0, 2, 3]), onehot_scores([2, 2, 0, 0])])
    assert greedy_decode(scores, torch.tensor([2, 4])) == [[1], [2]]


def collapse(path):
    out, prev = [], 0
    for k in path:
        if k != prev and k != 0:
            out.append(k)
        prev = k
    return tuple(out)


def brute_force(log_probs):
    """{label sequence: log P} summing exp(path score) over all C^T paths."""
    T, C = log_probs.shape
    totals = {}
    for path in itertools.product(range(C), repeat=T):
        p = math.exp(sum(float(log_probs[t, k]) for t, k in enumerate(path)))
        totals[collapse(path)] = totals.get(collapse(path), 0.0) + p
    return {k: math.log(v) for k, v in totals.items()}


@pytest.mark.parametrize("T, C, seed", [(1, 2, 0), (3, 2, 1), (4, 3, 2), (5, 3, 3), (6, 3, 4), (4, 4, 5)])
def test_prefix_beam_search_equals_brute_force(T, C, seed):
    g = torch.Generator().manual_seed(seed)
    log_probs = torch.log_softmax(torch.randn(T, C, generator=g) * 2, -1).double()
    exact = brute_force(log_probs)
    # with a beam as large as the number of label sequences, every probability is exact
    found = dict(prefix_beam_search(log_probs, beam=len(exact)))
    assert found.keys() == exact.keys()
    for k, v in exact.items():
        assert found[k] == pytest.approx(v, abs=1e-9)
    assert max(exact, key=exact.get) == prefix_beam_search(log_probs, beam=len(exact))[0][0]
    assert sum(math.exp(v) for v in found.values()) == pytest.approx(1.0)


def test_beam_search_beats_greedy_where_paths_add_up():
    # best path is blank-blank (p .36) but label 1 has total probability 1 - .36 = .64 over its paths
    p = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()
    assert greedy_decode(p.unsqueeze(0)) == [[]]
    best, logp = prefix_beam_search(p, beam=4)[0]
    assert best == (1,) and math.exp(logp) == pytest.approx(0.64)


def test_beam_one_is_a_valid_search():
    g = torch.Generator().manual_seed(9)
    log_probs = torch.log_softmax(torch.randn(7, 4, generator=g), -1)
    (labels, logp), = prefix_beam_search(log_probs, beam=1)
    assert brute_force(log_probs)[labels] >= logp - 1e-9  # a lower bound on its own prefix's probability


def test_min_frames():
    assert min_frames("123") == 3 and min_frames("1123") == 5 and min_frames("111") == 5 and min_frames("") == 0


def test_recognizer_shapes_loss_and_frames():
    torch.manual_seed(0)
    model = CTCRecognizer(CTCRecognizerConfig(num_classes=10, channels=4, embed=8,
                                              rnn=RecurrentConfig(hidden_size=8, bidirectional=True)))
    images = torch.rand(2, 1, 32, 64)
    images[1, :, :, 40:] = 0  # the batch's padding
    widths = torch.tensor([64, 40])
    log_probs, frames, loss = model(images, widths, torch.tensor([1, 2, 3, 4, 5]), torch.tensor([3, 2]))
    assert log_probs.shape == (2, 16, 11) and frames.tolist() == [16, 10]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 16), atol=1e-5)
    expected = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), torch.tensor([1, 2, 3, 4, 5]), frames,
                                            torch.tensor([3, 2]), reduction="mean")
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # padding past an image's width does not change its scores (lengths= in the bidirectional layer)
    model.eval()
    with torch.no_grad():
        full, _, _ = model(images[1:], widths[1:])
        cut, _, _ = model(images[1:, :, :, :40], widths[1:])
    # the CNN's batch norm makes padding non-zero next to the edge, so compare away from it
    assert torch.allclose(full[0, :8], cut[0, :8], atol=1e-4)
