"""s23 · Encoder-decoder with attention: Bahdanau and Luong scores, teacher forcing, greedy search.

You build
    masked_softmax(scores, mask)                 weights over the real source positions only
    AdditiveAttention / MultiplicativeAttention  score each encoder state against a query
    Seq2Seq.encode / .forward / .greedy_decode   a GRU encoder-decoder that attends
    sequence_loss(logits, targets), exact_match(pred, targets), train(model, data, ...)

How it differs from the previous steps
    s22's recurrent layers squeeze a whole input into one final state. A decoder that must
    write a long output from that single vector forgets the beginning. Attention lets the
    decoder look back at EVERY encoder state at every output step and take a weighted
    average of them (the context), with weights it computes itself. s22 built the cell;
    here torch's nn.GRUCell stands in for it.

The math (B batch, S source positions, encoder states k_j (B, S, H), decoder state s (B, H))
    additive (Bahdanau 2015):   e_j = v^T tanh(W_q s + W_k k_j)       W_q, W_k -> A, v: A -> 1
    multiplicative (Luong 2015): e_j = s^T W k_j ("general"), or s^T k_j ("dot")
    alpha = masked_softmax(e, mask): alpha_j = exp(e_j) / sum_{real i} exp(e_i) on real
            positions and EXACTLY 0 on padding (fill -inf before the softmax; never after)
    context = sum_j alpha_j k_j                  (B, H)
    Decoder step t (the same placement for both scores, so only the score differs):
        c_t = attention(s_{t-1}, encoder states);  s_t = GRUCell([emb(y_in_t); c_t], s_{t-1})
        logits_t = out([s_t; c_t])               s_{-1} = the encoder's final state
    The encoder skips padding: at a padded step its state is carried unchanged, so the final
    state of every sequence is the state after its last real token.

Teacher forcing vs free running
    Training feeds the decoder the TRUE previous token (teacher forcing): every step learns
    from a correct prefix, and the whole target is scored in one pass. At generation time
    there is no true token: the decoder reads its own previous prediction (free running), so
    one early mistake puts it in states it never saw in training (exposure bias). The lab
    measures the gap between the two. greedy_decode takes the argmax at every step.

Tokens: PAD = 0, BOS = 1, EOS = 2, symbols from 3. tgt_in = [BOS, y...], tgt_out = [y..., EOS],
both right-padded with PAD; the loss ignores PAD.

You should be able to explain
    - what attention computes, in one sentence, and why it helps a decoder with long inputs;
    - additive vs multiplicative scoring (a small network vs a bilinear form; the second is
      one matrix product for all positions, which is why transformers use it, scaled);
    - why the mask goes in before the softmax with -inf, and what -1e9 gets wrong;
    - teacher forcing and why generation differs from training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PAD, BOS, EOS = 0, 1, 2


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax of scores (B, S) over S where mask (bool, True = real) is True; 0 elsewhere."""
    if not bool(mask.any(dim=-1).all()):
        raise ValueError("every row of the mask needs at least one real (True) position")
    raise NotImplementedError("s23 seq2seq attention: fill the padding with -inf, then softmax over the last axis")


class AdditiveAttention(nn.Module):
    """Bahdanau: e_j = v(tanh(W_q(query) + W_k(keys_j))); W_q, v without bias, W_k with."""

    def __init__(self, query_size: int, key_size: int, attn_size: int) -> None:
        super().__init__()
        self.W_q = nn.Linear(query_size, attn_size, bias=False)
        self.W_k = nn.Linear(key_size, attn_size)
        self.v = nn.Linear(attn_size, 1, bias=False)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(context (B, Dk), weights (B, S)) for query (B, Dq), keys (B, S, Dk), mask (B, S)."""
        raise NotImplementedError("s23 seq2seq attention: broadcast the projected query over S, tanh, v, masked softmax, average")


class MultiplicativeAttention(nn.Module):
    """Luong: e_j = query . W(keys_j) ("general", W without bias) or query . keys_j ("dot")."""

    def __init__(self, query_size: int, key_size: int, kind: str = "general") -> None:
        super().__init__()
        if kind not in ("general", "dot"):
            raise ValueError(f"kind must be 'general' or 'dot', got {kind!r}")
        if kind == "dot" and query_size != key_size:
            raise ValueError(f"'dot' needs query_size == key_size, got {query_size}, {key_size}")
        self.kind = kind
        self.W = nn.Linear(key_size, query_size, bias=False) if kind == "general" else None

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(context (B, Dk), weights (B, S)) for query (B, Dq), keys (B, S, Dk), mask (B, S)."""
        raise NotImplementedError("s23 seq2seq attention: project the keys (general), dot with the query, masked softmax, average")


class Seq2Seq(nn.Module):
    """GRU encoder, attention ("additive" or "multiplicative"), GRU decoder, linear read-out."""

    def __init__(self, src_vocab: int, tgt_vocab: int, emb_size: int = 16, hidden_size: int = 32,
                 attention: str = "additive") -> None:
        super().__init__()
        self.src_emb = nn.Embedding(src_vocab, emb_size)
        self.tgt_emb = nn.Embedding(tgt_vocab, emb_size)
        self.encoder = nn.GRUCell(emb_size, hidden_size)
        self.decoder = nn.GRUCell(emb_size + hidden_size, hidden_size)
        self.attention = (AdditiveAttention(hidden_size, hidden_size, hidden_size)
                          if attention == "additive"
                          else MultiplicativeAttention(hidden_size, hidden_size))
        self.out = nn.Linear(2 * hidden_size, tgt_vocab)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(states (B, S, H), final (B, H)); at padded steps the state is carried unchanged."""
        raise NotImplementedError("s23 seq2seq attention: run the GRU cell over S, keeping the old state where mask is False")

    def step(self, y_in: torch.Tensor, s: torch.Tensor, states: torch.Tensor,
             src_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoder step: (logits (B, V), new state s_t (B, H), weights (B, S))."""
        raise NotImplementedError("s23 seq2seq attention: attend with the previous state, update the GRU, read out [s_t; c_t]")

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor,
                teacher_forcing: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, T, V), weights (B, T, S)) for T = tgt_in's length. Teacher forcing reads
        tgt_in[:, t] at step t; free running reads tgt_in[:, 0] at t = 0, then the argmax of
        its own previous logits."""
        raise NotImplementedError("s23 seq2seq attention: encode, then T decoder steps fed the true or the predicted token")

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, src_mask: torch.Tensor, max_len: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (B, max_len), weights (B, max_len, S)): argmax from BOS; PAD after EOS."""
        bos = torch.full((src.shape[0], max_len), BOS, dtype=torch.long, device=src.device)
        raise NotImplementedError("s23 seq2seq attention: free-running forward, argmax, then PAD every position after an EOS")


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the target positions that are not PAD (logits (B, T, V))."""
    raise NotImplementedError("s23 seq2seq attention: flatten, cross-entropy, ignore PAD")


def exact_match(pred: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose prediction equals the target at every non-PAD target position."""
    raise NotImplementedError("s23 seq2seq attention: compare where the target is real, a row counts only if all agree")


def reverse_task(n: int, min_len: int, max_len: int, n_symbols: int, gen: torch.Generator
                 ) -> tuple[torch.Tensor, ...]:
    """(src, src_mask, tgt_in, tgt_out): translate a symbol string into its reversal (given)."""
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=gen)
    src = torch.randint(3, 3 + n_symbols, (n, max_len), generator=gen)
    src_mask = torch.arange(max_len)[None] < lengths[:, None]
    src = src.masked_fill(~src_mask, PAD)
    tgt_out = torch.full((n, max_len + 1), PAD)
    for i, length in enumerate(lengths.tolist()):
        tgt_out[i, :length + 1] = torch.cat([src[i, :length].flip(0), torch.tensor([EOS])])
    tgt_in = torch.cat([torch.full((n, 1), BOS), tgt_out[:, :-1]], dim=1)
    return src, src_mask, tgt_in.masked_fill(tgt_in == EOS, PAD), tgt_out


def train(model: Seq2Seq, data: tuple[torch.Tensor, ...], *, steps: int, lr: float = 0.01,
          batch_size: int = 64, seed: int = 0) -> list[float]:
    """Adam with teacher forcing; each step idx = torch.randint(0, n, (batch_size,),
    generator=torch.Generator().manual_seed(seed)) (one generator for the run); losses."""
    raise NotImplementedError("s23 seq2seq attention: seeded batches, teacher-forced forward, sequence_loss, Adam step")
