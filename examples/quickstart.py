"""rnnlab in one minute: a character-level LSTM learns to write English from Python's own documentation.

Uses the pydoc topics that ship with every Python (nothing to download), trains for --seconds on the CPU,
prints a sample, then shows what no torch.nn layer shows: the gates and cell state at every step.

    python examples/quickstart.py --seconds 60
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from pydoc_data.topics import topics

import rnnlab


class CharLSTM(torch.nn.Module):
    def __init__(self, vocab: int, hidden: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 32)
        self.rnn = rnnlab.LSTM(32, hidden, batch_first=True, init="orthogonal")
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, x, state=None, **record):
        out = self.rnn(self.embed(x), state, **record)
        return (self.head(out[0]), *out[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="training time budget (default 60)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)

    text = "".join(topics[k] for k in sorted(topics))
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text])
    model = CharLSTM(len(chars), args.hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    B, T = 32, 64
    # B parallel streams through the text; the state is carried from chunk to chunk (truncated BPTT)
    streams = data[: len(data) // B * B].view(B, -1)
    state, pos, step, start = None, 0, 0, time.time()
    while time.time() - start < args.seconds:
        if pos + T + 1 > streams.shape[1]:
            state, pos = None, 0
        x, y = streams[:, pos : pos + T], streams[:, pos + 1 : pos + T + 1]
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)  # carry the state, cut the gradient at the chunk boundary
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        pos, step = pos + T, step + 1
        if step % 50 == 0:
            print(f"step {step:5d}  {time.time() - start:5.0f}s  loss {loss.item():.3f}  "
                  f"bits/char {loss.item() / 0.6931:.2f}", flush=True)

    # sample, stepping the layer one character at a time
    model.eval()
    prime = "The "
    out, state = list(prime), None
    with torch.no_grad():
        logits, state = model(torch.tensor([[index[c] for c in prime]]))
        for _ in range(300):
            probs = F.softmax(logits[0, -1] / 0.8, dim=-1)
            c = chars[int(torch.multinomial(probs, 1))]
            out.append(c)
            logits, state = model(torch.tensor([[index[c]]]), state)
    print("\n--- sample ---\n" + "".join(out) + "\n")

    # look inside: gates and cell state of every step (the native backend steps aside for recording)
    phrase = "for example, (a, b)"
    with torch.no_grad():
        _, _, trace = model(torch.tensor([[index[c] for c in phrase if c in index]]),
                            record_gates=True, return_states=True)
    f, c = trace[0, 0].gates["f"][0], trace[0, 0].states["c"][0]  # (T, H)
    unit = int(c.abs().mean(0).argmax())
    print(f"unit {unit}, the one with the largest cell state on {phrase!r}:")
    for ch, fv, cv in zip(phrase, f[:, unit].tolist(), c[:, unit].tolist()):
        print(f"  {ch!r:5} forget gate {fv:5.2f}   cell state {cv:+6.2f}")
    sat = ((trace[0, 0].gates["f"] < 0.1) | (trace[0, 0].gates["f"] > 0.9)).float().mean()
    print(f"forget gate saturated (<0.1 or >0.9) on {100 * sat:.0f}% of steps and units")


if __name__ == "__main__":
    main()
