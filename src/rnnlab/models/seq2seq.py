"""Decoder (one class, two uses) and Seq2Seq: generating a token sequence from a context vector.

Decoder: a conditional language model. A context vector c (an image's features for the Captioner, the
encoded source sequence for Seq2Seq) starts the recurrent state; then each step reads the previous token.

    h_0 (and c_0) = tanh(W_h c + b_h)  per layer            (L, B, H)
    e_t           = E[y_{t-1}]        (y_0 = <bos>)          (B, T, embed)
    h_t           = RNN(e_t, h_{t-1})                        rnnlab LSTM or GRU
    p(y_t | y_<t, c) = softmax(W_o h_t + b_o)                (B, T, V)

Training uses teacher forcing: the true previous token is fed at every step, and the loss is the mean
cross-entropy of the targets (<pad> ignored). Generation feeds back its own tokens: `greedy`, `sample`
(temperature; 0 is greedy) and `beam` (the `beam` best partial sequences by total log-probability; finished
ones are ranked by log-probability / length**length_penalty).

Seq2Seq (Sutskever et al., 2014, without attention): an embedding and a bidirectional rnnlab layer read the
source with lengths=; the final forward and backward states of the top layer, concatenated, are the context
that starts the Decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.tokens import BOS, EOS, PAD
from ..kernels import backend_names
from ..layers import GRU, LSTM

__all__ = ["Decoder", "DecoderConfig", "Seq2Seq", "Seq2SeqConfig"]

_CELLS = {"lstm": LSTM, "gru": GRU}


@dataclass
class DecoderConfig:
    vocab_size: int = 0     # V, set from the data (including the 4 special tokens)
    cell: str = "lstm"      # lstm | gru
    embed: int = 64
    hidden: int = 256       # H
    layers: int = 1         # L
    dropout: float = 0.0    # on embeddings and before the output layer (and between layers)
    backend: str = "auto"

    def check(self, who: str = "Decoder") -> None:
        if self.cell not in _CELLS:
            raise ValueError(f"{who}: cell must be one of {', '.join(_CELLS)}, got {self.cell!r}")
        for name in ("vocab_size", "embed", "hidden", "layers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{who}: {name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"{who}: dropout must be in [0, 1), got {self.dropout}")
        if self.backend not in backend_names():
            raise ValueError(f"{who}: unknown backend {self.backend!r}; expected one of {', '.join(backend_names())}")


class Decoder(nn.Module):
    """forward(context (B, K), tokens_in (B, T), lengths=None) -> logits (B, T, V)"""

    def __init__(self, config: DecoderConfig, context_size: int) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed, padding_idx=PAD)
        self.rnn = _CELLS[c.cell](c.embed, c.hidden, c.layers, dropout=c.dropout if c.layers > 1 else 0.0,
                                  backend=c.backend)
        n_states = 2 if c.cell == "lstm" else 1
        self.init_state = nn.Linear(context_size, n_states * c.layers * c.hidden)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, c.vocab_size)

    def initial_state(self, context: Tensor):
        """The recurrent state the context starts: h (L, B, H), or (h, c) for the LSTM."""
        c = self.config
        s = torch.tanh(self.init_state(context)).view(context.shape[0], -1, c.layers, c.hidden)
        s = s.permute(1, 2, 0, 3).contiguous()  # (states, L, B, H)
        return (s[0], s[1]) if c.cell == "lstm" else s[0]

    def step(self, tokens: Tensor, state) -> tuple[Tensor, object]:
        """One step: tokens (B,) -> log-probabilities (B, V), new state."""
        out, state = self.rnn(self.embed(tokens).unsqueeze(0), state)  # (1, B, H)
        return F.log_softmax(self.head(out[0]).float(), dim=-1), state

    def forward(self, context: Tensor, tokens_in: Tensor, lengths: Tensor | None = None) -> Tensor:
        x = self.drop(self.embed(tokens_in.t()))  # (T, B, E)
        out, _ = self.rnn(x, self.initial_state(context), lengths=lengths)
        return self.head(self.drop(out)).transpose(0, 1)  # (B, T, V)

    def loss(self, context: Tensor, targets: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher forcing. targets (B, T): the tokens, <eos> last, <pad> after; lengths (B,) including <eos>.
        Returns (logits (B, T, V), mean cross-entropy over the non-pad targets)."""
        bos = torch.full_like(targets[:, :1], BOS)
        logits = self(context, torch.cat([bos, targets[:, :-1]], 1), lengths)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=PAD)
        return logits, loss

    # ----- generation -------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, context: Tensor, max_len: int = 20, *, method: str = "greedy", temperature: float = 1.0,
                 beam: int = 5, length_penalty: float = 0.7, generator: torch.Generator | None = None) -> list[list[int]]:
        """Token ids (without <bos>/<eos>) for each of the B contexts (B, K)."""
        if method == "beam":
            return [self.beam_search(context[i: i + 1], max_len, beam, length_penalty)[0][0] for i in range(len(context))]
        if method not in ("greedy", "sample"):
            raise ValueError(f"Decoder.generate: method must be greedy, sample or beam, got {method!r}")
        if method == "sample" and temperature < 0:
            raise ValueError(f"Decoder.generate: temperature must be >= 0, got {temperature}")
        B = context.shape[0]
        state = self.initial_state(context)
        tokens = torch.full((B,), BOS, dtype=torch.long, device=context.device)
        out = [[] for _ in range(B)]
        done = [False] * B
        for _ in range(max_len):
            logp, state = self.step(tokens, state)
            if method == "greedy" or temperature == 0:
                tokens = logp.argmax(-1)
            else:
                probs = F.softmax(logp / temperature, dim=-1).cpu()
                tokens = torch.multinomial(probs, 1, generator=generator)[:, 0].to(context.device)
            for b, t in enumerate(tokens.tolist()):
                if not done[b]:
                    if t == EOS:
                        done[b] = True
                    else:
                        out[b].append(t)
            if all(done):
                break
        return out

    @torch.no_grad()
    def beam_search(self, context: Tensor, max_len: int = 20, beam: int = 5,
                    length_penalty: float = 0.7) -> list[tuple[list[int], float]]:
        """Beam search for one context (1, K): [(tokens, log-probability)] best first by
        log-probability / len**length_penalty (len counts <eos>).

        Each step extends every running sequence, ranks all extensions by log-probability, moves those that
        end (<eos>) within the first `beam` ranks to the finished list and keeps the best `beam` that run on.
        The search stops when `beam` sequences have finished or at max_len (running sequences end there).
        beam=1 is greedy decoding; a beam as wide as the number of sequences is exhaustive (tests check both)."""
        if beam < 1:
            raise ValueError(f"Decoder.beam_search: beam must be >= 1, got {beam}")
        state = self.initial_state(context)
        hyps: list[tuple[list[int], float]] = [([], 0.0)]
        finished: list[tuple[list[int], float]] = []

        def norm(h):
            return h[1] / max(1, len(h[0]) + 1) ** length_penalty

        for t in range(max_len):
            tokens = torch.tensor([h[0][-1] if h[0] else BOS for h in hyps], device=context.device)
            logp, state = self.step(tokens, state)  # (N, V)
            cand = []
            for n, (seq, score) in enumerate(hyps):
                top = logp[n].topk(min(beam + 1, logp.shape[1]))
                for lp, k in zip(top.values.tolist(), top.indices.tolist()):
                    cand.append((score + lp, n, k))
            cand.sort(key=lambda c: c[0], reverse=True)
            keep = []
            for rank, (score, n, k) in enumerate(cand):
                if k == EOS:
                    if rank < beam:  # an ending counts only if it ranks among the beam's best (beam 1 = greedy)
                        finished.append((hyps[n][0], score))
                elif len(keep) < beam:
                    keep.append((hyps[n][0] + [k], score, n))
                if len(keep) >= beam and rank >= beam:
                    break
            # stop once `beam` sequences have ended (early stopping), or when nothing runs on
            if not keep or len(finished) >= beam:
                break
            if t == max_len - 1:
                finished += [(s, sc) for s, sc, _ in keep]
                break
            idx = torch.tensor([n for _, _, n in keep], device=context.device)
            state = tuple(s.index_select(1, idx) for s in state) if isinstance(state, tuple) else state.index_select(1, idx)
            hyps = [(s, sc) for s, sc, _ in keep]
        return sorted(finished, key=norm, reverse=True)


@dataclass
class Seq2SeqConfig:
    src_vocab: int = 0       # source tokens (including the specials)
    tgt_vocab: int = 0       # target tokens (including the specials)
    cell: str = "lstm"
    embed: int = 32
    hidden: int = 128        # encoder units per direction; the decoder has 2x (it starts from both directions)
    layers: int = 1
    dropout: float = 0.0
    backend: str = "auto"


class Seq2Seq(nn.Module):
    """forward(src (B, S), src_lengths (B,), targets (B, T), target_lengths (B,)) -> (logits, loss)"""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        DecoderConfig(c.src_vocab, c.cell, c.embed, c.hidden, c.layers, c.dropout, c.backend).check("Seq2Seq")
        self.src_embed = nn.Embedding(c.src_vocab, c.embed, padding_idx=PAD)
        self.encoder = _CELLS[c.cell](c.embed, c.hidden, c.layers, bidirectional=True,
                                      dropout=c.dropout if c.layers > 1 else 0.0, backend=c.backend)
        self.decoder = Decoder(DecoderConfig(c.tgt_vocab, c.cell, c.embed, 2 * c.hidden, c.layers, c.dropout,
                                             c.backend), context_size=2 * c.hidden)

    def encode(self, src: Tensor, src_lengths: Tensor) -> Tensor:
        """The context (B, 2H): the top layer's final forward and backward states."""
        _, state = self.encoder(self.src_embed(src.t()), lengths=src_lengths)
        h = state[0] if isinstance(state, tuple) else state  # (L*2, B, H)
        return torch.cat([h[-2], h[-1]], dim=-1)

    def forward(self, src: Tensor, src_lengths: Tensor, targets: Tensor, target_lengths: Tensor):
        return self.decoder.loss(self.encode(src, src_lengths), targets, target_lengths)

    @torch.no_grad()
    def generate(self, src: Tensor, src_lengths: Tensor, max_len: int = 20, **kw) -> list[list[int]]:
        """Target ids for each source; kw as Decoder.generate (method greedy | sample | beam)."""
        return self.decoder.generate(self.encode(src, src_lengths), max_len, **kw)
