"""lengths= equals packed torch.nn on random lengths (outputs, final states, gradients), for both backends."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from helpers import RNNLAB_LAYER, TORCH_LAYER, assert_close_dict, flat_state, grads, loss_of


@st.composite
def cases(draw):
    B = draw(st.integers(1, 5))
    T = draw(st.integers(1, 7))
    lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
    family = draw(st.sampled_from(["lstm", "lstm-proj", "gru", "rnn"]))
    return dict(
        B=B, T=T, lengths=lengths, family=family,
        layers=draw(st.integers(1, 2)), bidir=draw(st.booleans()), batch_first=draw(st.booleans()),
        backend=draw(st.sampled_from(["reference", "auto"])), seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=40, deadline=None)
@given(cases())
def test_lengths_equal_packed_torch(case):
    family, kw = case["family"], {}
    if family == "lstm-proj":
        family, kw = "lstm", {"proj_size": 2}
    I, H = 3, 4
    torch.manual_seed(case["seed"])
    ours = RNNLAB_LAYER[family](I, H, case["layers"], batch_first=case["batch_first"],
                                bidirectional=case["bidir"], dtype=torch.float64, backend=case["backend"], **kw)
    ref = TORCH_LAYER[family](I, H, case["layers"], batch_first=case["batch_first"],
                              bidirectional=case["bidir"], dtype=torch.float64, **kw)
    ref.load_state_dict(ours.state_dict())
    B, T, lengths, bf = case["B"], case["T"], case["lengths"], case["batch_first"]
    x = torch.randn((B, T, I) if bf else (T, B, I), dtype=torch.float64, requires_grad=True)

    out_a, st_a = ours(x, lengths=torch.tensor(lengths))
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=bf, enforce_sorted=False)
    out_b, st_b = ref(packed)
    out_b = pad_packed_sequence(out_b, batch_first=bf, total_length=T)[0]

    tol = dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out_a, out_b, **tol)
    for a, b in zip(flat_state(st_a), flat_state(st_b)):
        torch.testing.assert_close(a, b, **tol)
    assert_close_dict(grads(ours, [x], loss_of(out_a, st_a)), grads(ref, [x], loss_of(out_b, st_b)), **tol)
