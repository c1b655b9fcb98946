"""s45 · Speculative decoding: a small model drafts, the big one checks, the text is the big one's.

You build
    token_probs(logits, temperature)      softmax(logits / T) in float64; T = 0: one-hot argmax
    residual(p, q)                        norm(max(p - q, 0)): where a rejected token is redrawn
    acceptance_probability(p, q)          sum_i min(p_i, q_i): the chance one draft is accepted
    expected_tokens_per_call(alpha, k)    (1 - alpha^(k+1)) / (1 - alpha): tokens per target call
    verify(p, q, draft_tokens, generator) accept each draft token with probability min(1, p/q),
                                          redraw the first rejected one from the residual, or
                                          draw one more from the target if all were accepted
    propose(draft, idx, k, ...)           k tokens sampled from the draft, with their q rows
    target_probs(target, idx, n, ...)     the target's next-token rows at the last n+1 positions
    speculative_generate(target, draft, idx, max_new_tokens, k, ...)
                                          the loop, with counts of calls and accepted drafts

Why
    Generating one token with a big model costs one forward pass, and that pass is mostly
    reading the weights: scoring k + 1 positions at once costs about the same as scoring one.
    So let a small draft model (cheap per token) guess the next k tokens, score all of them
    with the target in ONE pass, and keep the longest prefix the target agrees with. When the
    draft is usually right, each expensive call yields several tokens. The trick (Leviathan et
    al. 2023; Chen et al. 2023) is the acceptance rule: it makes the output distributed
    EXACTLY as if the target had sampled every token itself, whatever the draft is. A bad
    draft only costs speed, never quality.

The math (p = target's next-token distribution, q = draft's, x ~ q the draft's token)
    accept x with probability min(1, p(x) / q(x))     (draw u ~ U[0, 1): accept iff u q(x) < p(x))
    on rejection, draw from r = max(p - q, 0) / sum(max(p - q, 0))
    Then P(output = y) = q(y) min(1, p(y)/q(y)) + P(reject) r(y)
                       = min(q(y), p(y)) + (1 - sum_z min(p(z), q(z))) r(y) = p(y),
    because sum_z max(p(z) - q(z), 0) = 1 - sum_z min(p(z), q(z)).
    The chance of accepting is alpha = sum_z min(p(z), q(z)) = 1 - TV(p, q). With k drafts and
    a constant alpha, one target call yields 1 + alpha + ... + alpha^k = (1 - alpha^(k+1)) /
    (1 - alpha) tokens on average (k + 1 when alpha = 1): the last one is the target's own
    token after the accepted prefix (its correction, or a bonus when all k were accepted).
    Greedy decoding is the case T = 0: p and q are one-hot, a draft is accepted iff it is the
    target's argmax, and the output is token for token the target's greedy output.

Context windows
    A model sees at most block_size tokens. Each scored position must see the same window as
    plain generation would (the last block_size tokens before it): while the whole sequence
    fits in one block that is one target forward for all k + 1 positions; past it, each
    position needs its own window (k + 1 forwards: exact, but the saving is gone; a model with
    a KV cache and rotary positions has no such cliff).

Shapes
    one sequence: idx (1, T) int64; p rows (k + 1, V), q rows (k, V), float64.

You should be able to explain
    - why the output distribution is the target's whatever the draft (derive P(output = y));
    - why the residual, not p, is sampled on rejection (p would count the accepted mass twice);
    - how alpha and k set the tokens per target call, and why a larger k is not always faster
      (the draft's cost grows with k, and late drafts are rarely accepted);
    - why batching speculative decoding is awkward (rows accept different numbers of tokens).
"""

from __future__ import annotations

import torch


def token_probs(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / temperature) over the last dimension, in float64; temperature 0: the
    one-hot of the argmax (the first one on ties); temperature < 0 is refused."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    # BEGIN SOLUTION: one-hot argmax at T = 0, else a float64 softmax of the tempered logits
    logits = logits.double()
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(dim=-1), logits.size(-1)).double()
    return torch.softmax(logits / temperature, dim=-1)
    # END SOLUTION


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """max(p - q, 0) renormalised over the last dimension (any leading shape): the
    distribution a rejected draft token is redrawn from. Where p == q (nothing left over,
    and a draft is then never rejected) the row is p itself."""
    # BEGIN SOLUTION: the positive part of p - q, normalised; p where it sums to zero
    left = (p - q).clamp(min=0)
    mass = left.sum(dim=-1, keepdim=True)
    return torch.where(mass > 0, left / torch.where(mass > 0, mass, 1.0), p)
    # END SOLUTION


def acceptance_probability(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """sum_i min(p_i, q_i) over the last dimension: the probability that a token drawn from q
    is accepted (1 - the total variation distance between p and q)."""
    # BEGIN SOLUTION: the overlap of the two distributions
    return torch.minimum(p, q).sum(dim=-1)
    # END SOLUTION


def expected_tokens_per_call(alpha: float, k: int) -> float:
    """(1 - alpha^(k+1)) / (1 - alpha) = 1 + alpha + ... + alpha^k, the mean number of tokens
    one target call yields with k drafts each accepted with probability alpha (k + 1 at
    alpha = 1); alpha outside [0, 1] or k < 0 is refused."""
    if not 0.0 <= alpha <= 1.0 or k < 0:
        raise ValueError(f"need 0 <= alpha <= 1 and k >= 0, got alpha={alpha}, k={k}")
    # BEGIN SOLUTION: the geometric series, k + 1 when every draft is accepted
    if alpha == 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)
    # END SOLUTION


def verify(p: torch.Tensor, q: torch.Tensor, draft_tokens: torch.Tensor,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """The target's verdict on k draft tokens. p (k + 1, V): the target's next-token rows at
    the k draft positions and one after; q (k, V): the draft's rows the tokens were drawn
    from; draft_tokens (k,). In order, accept draft token x_i iff u_i * q_i(x_i) < p_i(x_i)
    (u_i one torch.rand draw from `generator`); at the first rejection, stop and draw the
    replacement from residual(p_i, q_i); if all k are accepted, draw one more token from
    p_k. Returns (tokens (n,) int64: the accepted drafts then the drawn token, 1 <= n <= k + 1;
    the number accepted, n - 1)."""
    # BEGIN SOLUTION: walk the drafts; the first rejection is redrawn from the residual
    k = draft_tokens.numel()
    accepted = []
    for i in range(k):
        x = int(draft_tokens[i])
        u = torch.rand((), generator=generator, dtype=torch.float64)
        if u * q[i, x] < p[i, x]:
            accepted.append(x)
            continue
        fix = torch.multinomial(residual(p[i], q[i]), 1, generator=generator)
        return torch.tensor(accepted + [int(fix)], dtype=torch.int64), len(accepted)
    bonus = torch.multinomial(p[k], 1, generator=generator)
    return torch.tensor(accepted + [int(bonus)], dtype=torch.int64), k
    # END SOLUTION


def propose(draft, idx: torch.Tensor, k: int, temperature: float, block_size: int,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """k tokens drawn one at a time from the draft (forward(idx) -> (logits, _) on the last
    block_size tokens, last position, token_probs at `temperature`, torch.multinomial with
    `generator`). idx (1, T). Returns (tokens (k,) int64, q (k, V) float64: the rows they
    were drawn from)."""
    # BEGIN SOLUTION: the plain sampling loop, keeping every row it sampled from
    tokens, rows = [], []
    seq = idx
    with torch.no_grad():
        for _ in range(k):
            logits, _ = draft(seq[:, -block_size:])
            q = token_probs(logits[0, -1], temperature)
            x = torch.multinomial(q, 1, generator=generator)
            tokens.append(x)
            rows.append(q)
            seq = torch.cat([seq, x[None]], dim=1)
    return torch.cat(tokens), torch.stack(rows)
    # END SOLUTION


def target_probs(target, idx: torch.Tensor, n: int, temperature: float,
                 block_size: int) -> tuple[torch.Tensor, int]:
    """The target's token_probs rows for the last n + 1 positions of idx (1, T), T > n: row j
    predicts the token after idx[0, T - n - 1 + j] from the last block_size tokens up to it,
    as plain generation would. One forward when T <= block_size, else one per row. Returns
    (rows (n + 1, V) float64, the number of forward calls made)."""
    # BEGIN SOLUTION: one pass while the sequence fits the block, else a window per position
    t = idx.size(1)
    with torch.no_grad():
        if t <= block_size:
            logits, _ = target(idx)
            return token_probs(logits[0, t - n - 1:], temperature), 1
        rows = []
        for end in range(t - n, t + 1):
            logits, _ = target(idx[:, max(0, end - block_size):end])
            rows.append(token_probs(logits[0, -1], temperature))
        return torch.stack(rows), n + 1
    # END SOLUTION


def speculative_generate(target, draft, idx: torch.Tensor, max_new_tokens: int, k: int = 4,
                         temperature: float = 1.0, block_size: int = 64,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """idx (1, T) followed by exactly max_new_tokens tokens, distributed as the target's own
    sampling at `temperature` (greedy at 0). Each round the draft proposes min(k, tokens still
    needed) tokens, the target scores them (target_probs) and verify keeps a prefix plus one
    token; a round's surplus past max_new_tokens is dropped. Returns (the sequence, counts:
    {"rounds", "target_calls", "proposed", "accepted"}: proposed is also the draft's forward
    calls). idx must have one row,
    k >= 1 and max_new_tokens >= 0."""
    if idx.dim() != 2 or idx.size(0) != 1:
        raise ValueError(f"speculative decoding here takes one sequence (1, T), got "
                         f"{tuple(idx.shape)}: rows would accept different numbers of tokens")
    if k < 1 or max_new_tokens < 0:
        raise ValueError(f"need k >= 1 and max_new_tokens >= 0, got k={k}, "
                         f"max_new_tokens={max_new_tokens}")
    # BEGIN SOLUTION: propose, score in one pass, verify, append; count everything
    stats = {"rounds": 0, "target_calls": 0, "proposed": 0, "accepted": 0}
    start = idx.size(1)
    while idx.size(1) - start < max_new_tokens:
        needed = max_new_tokens - (idx.size(1) - start)
        n = min(k, needed)
        drafts, q = propose(draft, idx, n, temperature, block_size, generator)
        p, calls = target_probs(target, torch.cat([idx, drafts[None]], dim=1), n, temperature,
                                block_size)
        tokens, accepted = verify(p, q, drafts, generator)
        idx = torch.cat([idx, tokens[None, :needed]], dim=1)
        stats["rounds"] += 1
        stats["target_calls"] += calls
        stats["proposed"] += n
        stats["accepted"] += accepted
    return idx, stats
    # END SOLUTION
