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
    # BEGIN SOLUTION: fill the padding with -inf, then softmax over the last axis
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    # END SOLUTION


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
        # BEGIN SOLUTION: broadcast the projected query over S, tanh, v, masked softmax, average
        scores = self.v(torch.tanh(self.W_q(query)[:, None] + self.W_k(keys)))[..., 0]  # (B, S)
        weights = masked_softmax(scores, mask)
        return (weights[:, :, None] * keys).sum(dim=1), weights
        # END SOLUTION


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
        # BEGIN SOLUTION: project the keys (general), dot with the query, masked softmax, average
        projected = self.W(keys) if self.W is not None else keys  # (B, S, Dq)
        scores = (projected @ query[:, :, None])[..., 0]  # (B, S)
        weights = masked_softmax(scores, mask)
        return (weights[:, :, None] * keys).sum(dim=1), weights
        # END SOLUTION


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
        # BEGIN SOLUTION: run the GRU cell over S, keeping the old state where mask is False
        h = src.new_zeros(src.shape[0], self.encoder.hidden_size, dtype=self.out.weight.dtype)
        states = []
        for j, x in enumerate(self.src_emb(src).unbind(dim=1)):
            h = torch.where(src_mask[:, j, None], self.encoder(x, h), h)
            states.append(h)
        return torch.stack(states, dim=1), h
        # END SOLUTION

    def step(self, y_in: torch.Tensor, s: torch.Tensor, states: torch.Tensor,
             src_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoder step: (logits (B, V), new state s_t (B, H), weights (B, S))."""
        # BEGIN SOLUTION: attend with the previous state, update the GRU, read out [s_t; c_t]
        context, weights = self.attention(s, states, src_mask)
        s = self.decoder(torch.cat([self.tgt_emb(y_in), context], dim=-1), s)
        return self.out(torch.cat([s, context], dim=-1)), s, weights
        # END SOLUTION

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor,
                teacher_forcing: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, T, V), weights (B, T, S)) for T = tgt_in's length. Teacher forcing reads
        tgt_in[:, t] at step t; free running reads tgt_in[:, 0] at t = 0, then the argmax of
        its own previous logits."""
        # BEGIN SOLUTION: encode, then T decoder steps fed the true or the predicted token
        states, s = self.encode(src, src_mask)
        y_in, all_logits, all_weights = tgt_in[:, 0], [], []
        for t in range(tgt_in.shape[1]):
            logits, s, weights = self.step(y_in, s, states, src_mask)
            all_logits.append(logits)
            all_weights.append(weights)
            if t + 1 < tgt_in.shape[1]:
                y_in = tgt_in[:, t + 1] if teacher_forcing else logits.argmax(dim=-1)
        return torch.stack(all_logits, dim=1), torch.stack(all_weights, dim=1)
        # END SOLUTION

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, src_mask: torch.Tensor, max_len: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (B, max_len), weights (B, max_len, S)): argmax from BOS; PAD after EOS."""
        bos = torch.full((src.shape[0], max_len), BOS, dtype=torch.long, device=src.device)
        # BEGIN SOLUTION: free-running forward, argmax, then PAD every position after an EOS
        logits, weights = self.forward(src, src_mask, bos, teacher_forcing=False)
        tokens = logits.argmax(dim=-1)  # (B, max_len)
        after_eos = (tokens == EOS).long().cumsum(dim=1) - (tokens == EOS).long() > 0
        return tokens.masked_fill(after_eos, PAD), weights
        # END SOLUTION


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the target positions that are not PAD (logits (B, T, V))."""
    # BEGIN SOLUTION: flatten, cross-entropy, ignore PAD
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)
    # END SOLUTION


def exact_match(pred: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose prediction equals the target at every non-PAD target position."""
    # BEGIN SOLUTION: compare where the target is real, a row counts only if all agree
    real = targets != PAD
    return float(((pred == targets) | ~real).all(dim=1).float().mean())
    # END SOLUTION


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
    # BEGIN SOLUTION: seeded batches, teacher-forced forward, sequence_loss, Adam step
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    src, src_mask, tgt_in, tgt_out = data
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(src), (batch_size,), generator=gen)
        logits, _ = model(src[idx], src_mask[idx], tgt_in[idx])
        loss = sequence_loss(logits, tgt_out[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
    # END SOLUTION
