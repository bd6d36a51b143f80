"""Decoder (one class, two uses) and Seq2Seq: generating a token sequence from a context vector.

Decoder: a conditional language model. A context vector c (an image's features for the Captioner, the
encoded source sequence for Seq2Seq) starts the recurrent state; then each step reads the previous token.

    h_0 (and c_0) = tanh(W_h c + b_h)  per layer            (L, B, R) (and (L, B, H))
    e_t           = E[y_{t-1}]        (y_0 = <bos>)          (B, T, embed)
    h_t           = RNN(e_t, h_{t-1})                        config.rnn: any rnnlab cell and variant
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

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._fields import opt
from .._validate import check_positive_ints
from ..data.tokens import BOS, EOS, PAD
from ..layers import RecurrentConfig

__all__ = ["Decoder", "DecoderConfig", "Seq2Seq", "Seq2SeqConfig"]


@dataclass(slots=True)
class DecoderConfig:
    vocab_size: int = opt(0, "V, set from the data (including the 4 special tokens)", cli=False)
    embed: int = opt(64, "token embedding width")
    # H, L; dropout (rnn.dropout) on embeddings and before the output layer (and between layers)
    rnn: RecurrentConfig = opt(default_factory=lambda: RecurrentConfig(hidden_size=256))

    def check(self, owner: str = "Decoder", name=str, sizes: bool = True) -> None:
        """Raise ValueError naming the option (name(field): the keyword, or the command line's flag).
        sizes=False skips the sizes the data sets (vocabulary, classes): the command line checks the options
        before it reads the data."""
        self.rnn.check(owner, name, one_way="a decoder writes left to right, one token after another")
        check_positive_ints(owner, self, ("vocab_size", "embed")[not sizes:], name)


class Decoder(nn.Module):
    """forward(context (B, K), tokens_in (B, T), lengths=None) -> logits (B, T, V)"""

    def __init__(self, config: DecoderConfig, context_size: int) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        r = c.rnn
        self.embed = nn.Embedding(c.vocab_size, c.embed, padding_idx=PAD)
        self.rnn = r.build(c.embed)
        # h_0 of every layer (R each), and c_0 (H each) for the LSTM
        self.state_sizes = (r.state_size, r.hidden_size) if r.cell == "lstm" else (r.hidden_size,)
        self.init_state = nn.Linear(context_size, r.num_layers * sum(self.state_sizes))
        self.drop = nn.Dropout(r.dropout)
        self.head = nn.Linear(r.state_size, c.vocab_size)

    def initial_state(self, context: Tensor):
        """The recurrent state the context starts: h (L, B, H), or (h, c) for the LSTM."""
        B, L = context.shape[0], self.config.rnn.num_layers
        s = torch.tanh(self.init_state(context)).split([L * n for n in self.state_sizes], dim=1)
        states = [part.view(B, L, n).transpose(0, 1).contiguous() for part, n in zip(s, self.state_sizes)]
        return tuple(states) if len(states) == 2 else states[0]  # (L, B, R) [, (L, B, H)]

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


@dataclass(slots=True)
class Seq2SeqConfig:
    src_vocab: int = opt(0, "source tokens (including the specials)", cli=False)
    tgt_vocab: int = opt(0, "target tokens (including the specials)", cli=False)
    embed: int = opt(32, "token embedding width (source and target)")
    # the encoder: H units per direction, both directions; the decoder has 2H (it starts from both directions)
    rnn: RecurrentConfig = opt(default_factory=lambda: RecurrentConfig(hidden_size=128))

    def encoder(self) -> RecurrentConfig:
        return dataclasses.replace(self.rnn, bidirectional=True)

    def decoder(self) -> DecoderConfig:
        r = self.rnn
        return DecoderConfig(self.tgt_vocab, self.embed, dataclasses.replace(
            r, hidden_size=2 * r.hidden_size, proj_size=2 * r.proj_size, bidirectional=False))

    def check(self, owner: str = "Seq2Seq", name=str) -> None:
        self.encoder().check(owner, name)
        check_positive_ints(owner, self, ("src_vocab", "tgt_vocab", "embed"), name)


class Seq2Seq(nn.Module):
    """forward(src (B, S), src_lengths (B,), targets (B, T), target_lengths (B,)) -> (logits, loss)"""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        self.src_embed = nn.Embedding(c.src_vocab, c.embed, padding_idx=PAD)
        self.encoder = c.encoder().build(c.embed)
        self.decoder = Decoder(c.decoder(), context_size=c.encoder().output_size)

    def encode(self, src: Tensor, src_lengths: Tensor) -> Tensor:
        """The context (B, 2R): the top layer's final forward and backward states."""
        _, state = self.encoder(self.src_embed(src.t()), lengths=src_lengths)
        h = state[0] if isinstance(state, tuple) else state  # (L*2, B, H)
        return torch.cat([h[-2], h[-1]], dim=-1)

    def forward(self, src: Tensor, src_lengths: Tensor, targets: Tensor, target_lengths: Tensor):
        return self.decoder.loss(self.encode(src, src_lengths), targets, target_lengths)

    @torch.no_grad()
    def generate(self, src: Tensor, src_lengths: Tensor, max_len: int = 20, **kw) -> list[list[int]]:
        """Target ids for each source; kw as Decoder.generate (method greedy | sample | beam)."""
        return self.decoder.generate(self.encode(src, src_lengths), max_len, **kw)
