"""segment_steps: recomputation in segments equals full backprop through time, in less kept memory."""

import pytest
import torch

import rnnlab
from helpers import RNNLAB_LAYER, assert_close_dict, flat_state, grads, loss_of


def saved_bytes(fn) -> int:
    """Bytes of distinct storages autograd keeps for backward while fn runs."""
    seen = {}

    def pack(t):
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


@pytest.mark.parametrize("backend", ["reference", "fused", "native"])
@pytest.mark.parametrize("family,kw", [("lstm", {}), ("lstm", {"peephole": True, "layer_norm": True, "proj_size": 2}),
                                       ("gru", {}), ("rnn", {})], ids=["lstm", "lstm-variants", "gru", "rnn"])
@pytest.mark.parametrize("lengths", [None, [11, 3, 7, 1]], ids=["full", "lengths"])
def test_segments_equal_full_bptt(family, kw, lengths, backend):
    if backend == "native" and kw:
        pytest.skip("native serves plain cells only")
    torch.manual_seed(0)
    full = RNNLAB_LAYER[family](3, 4, 2, bidirectional=True, dtype=torch.float64, backend=backend, **kw)
    seg = RNNLAB_LAYER[family](3, 4, 2, bidirectional=True, dtype=torch.float64, backend=backend,
                               segment_steps=4, **kw)
    seg.load_state_dict(full.state_dict())
    x = torch.randn(11, 4, 3, dtype=torch.float64, requires_grad=True)
    results = []
    for m in (full, seg):
        out, st = m(x, lengths=lengths)
        results.append(([out, *flat_state(st)], grads(m, [x], loss_of(out, st))))
    for a, b in zip(results[0][0], results[1][0]):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    assert_close_dict(results[1][1], results[0][1], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_segments_record_the_same_trace(backend):
    torch.manual_seed(0)
    full = rnnlab.LSTM(3, 4, bidirectional=True, backend=backend)
    seg = rnnlab.LSTM(3, 4, bidirectional=True, backend=backend, segment_steps=3)
    seg.load_state_dict(full.state_dict())
    x = torch.randn(10, 2, 3, requires_grad=True)
    a = full(x, lengths=[10, 4], record_gates=True, return_states=True)[2]
    b = seg(x, lengths=[10, 4], record_gates=True, return_states=True)[2]
    for key in a.keys():
        assert_close_dict(b[key].gates, a[key].gates, rtol=1e-6, atol=1e-6)
        assert_close_dict(b[key].states, a[key].states, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_segments_keep_less_memory(backend):
    x = torch.randn(2000, 1, 8, requires_grad=True)
    full = rnnlab.LSTM(8, 16, backend=backend)
    seg = rnnlab.LSTM(8, 16, backend=backend, segment_steps=50)
    seg.load_state_dict(full.state_dict())
    kept_full, _ = saved_bytes(lambda: full(x)[0])
    kept_seg, _ = saved_bytes(lambda: seg(x)[0])
    # full BPTT keeps every step's gates and states; segments keep x and the boundaries (and the output)
    assert kept_seg < kept_full / 3, (kept_seg, kept_full)


def test_segment_steps_validation():
    with pytest.raises(ValueError, match="segment_steps must be None or an int >= 1, got 0"):
        rnnlab.GRU(3, 4, segment_steps=0)
    assert "segment_steps=8" in repr(rnnlab.LSTM(3, 4, segment_steps=8))
