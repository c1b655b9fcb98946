"""Hidden graders for s45: context windows past block_size (a model that sees its window),
propose's rows and cropping, greedy decoding longer than one block, measured acceptance and
tokens per call against the theory, the residual's distribution on rejection, how rounds are
counted and cut, and the arguments that must be refused."""

import math

import pytest
import torch

from graders.helpers import assert_close
from graders.test_s45_speculative_decoding import TableLM, greedy_reference, softmax_t, tables


class WindowLM(TableLM):
    """Logits depend on the first token of the window it is given, and it refuses windows
    longer than block_size: a shared window for every scored position is caught."""

    def __init__(self, table, block_size):
        super().__init__(table)
        self.block_size = block_size

    def forward(self, idx, targets=None):
        assert idx.size(1) <= self.block_size, (
            f"the model was given {idx.size(1)} tokens, its block_size is {self.block_size}: "
            "crop to the last block_size tokens")
        logits, _ = super().forward(idx)
        return logits + 0.7 * idx[:, :1, None].double() * torch.arange(logits.size(-1)), None


class Rolled(torch.nn.Module):
    """Bigram model whose row for token i is base rolled by i: every context has the same
    distribution up to a relabelling, so the acceptance probability against another Rolled
    model is the same after every context."""

    def __init__(self, base_probs):
        super().__init__()
        v = base_probs.numel()
        self.table = torch.stack([base_probs.roll(i) for i in range(v)]).log()

    def forward(self, idx, targets=None):
        return self.table[idx], None


@pytest.mark.points(2)
def test_target_probs_gives_each_position_its_own_window_past_the_block(impl):
    model = WindowLM(tables(11, vocab=4), block_size=5)
    seq = torch.tensor([[1, 3, 0, 2, 2, 1, 3, 0]])  # 8 tokens, block 5
    rows, calls = impl.target_probs(model, seq, 2, 0.8, 5)
    assert tuple(rows.shape) == (3, 4) and calls == 3, (
        f"past the block: 3 rows from 3 forwards, got shape {tuple(rows.shape)} and {calls}")
    for j, end in enumerate(range(6, 9)):
        want = softmax_t(model(seq[:, max(0, end - 5):end])[0][0, -1], 0.8)
        assert_close(rows[j], want, f"row {j}: the window of the last 5 tokens before token "
                     f"{end}", rtol=1e-12)
    rows, calls = impl.target_probs(model, seq[:, :7], 4, 1.0, 5)  # windows from the start
    for j, end in enumerate(range(3, 8)):
        want = softmax_t(model(seq[:, max(0, end - 5):end])[0][0, -1], 1.0)
        assert_close(rows[j], want, f"7 tokens, block 5, n=4: row {j} sees tokens "
                     f"{max(0, end - 5)}..{end - 1}", rtol=1e-12)
    short = seq[:, :5]
    rows, calls = impl.target_probs(model, short, 3, 1.3, 5)
    assert calls == 1 and tuple(rows.shape) == (4, 4), "within the block: one forward, 4 rows"
    logits = model(short)[0][0]
    assert_close(rows, softmax_t(logits[1:], 1.3), "within the block: the last n + 1 positions",
                 rtol=1e-12)


@pytest.mark.points(1)
def test_propose_returns_the_rows_it_sampled_from_and_crops(impl):
    draft = WindowLM(tables(12, vocab=5), block_size=4)
    idx = torch.tensor([[2, 0, 4]])
    gen = torch.Generator().manual_seed(3)
    draft.calls = 0
    tokens, q = impl.propose(draft, idx, 4, 1.5, 4, gen)
    assert tokens.dtype == torch.int64 and tuple(tokens.shape) == (4,), "tokens (k,) int64"
    assert tuple(q.shape) == (4, 5) and q.dtype == torch.float64, "q (k, V) float64"
    assert draft.calls == 4, f"k draft forwards, one per token, got {draft.calls}"
    seq = idx
    for i in range(4):
        want = softmax_t(draft(seq[:, -4:])[0][0, -1], 1.5)
        assert_close(q[i], want, f"q row {i}: the draft's tempered distribution at that point",
                     rtol=1e-12)
        seq = torch.cat([seq, tokens[i].view(1, 1)], dim=1)
    greedy, _ = impl.propose(draft, idx, 3, 0, 4, gen)
    want = greedy_reference(draft, idx, 3, 4)[0, 3:]
    assert greedy.tolist() == want.tolist(), "propose at temperature 0 is the draft's greedy"


@pytest.mark.points(2)
def test_greedy_past_the_block_size_equals_the_targets_greedy(impl):
    target = WindowLM(tables(13, vocab=5), block_size=6)
    draft = WindowLM(tables(14, vocab=5), block_size=6)
    prompt = torch.tensor([[3, 1]])
    want = greedy_reference(target, prompt, 14, 6)
    got, stats = impl.speculative_generate(target, draft, prompt, 14, k=3, temperature=0,
                                           block_size=6)
    assert got.tolist() == want.tolist(), (
        f"greedy past block_size 6: yours {got[0, 2:].tolist()}, the target's "
        f"{want[0, 2:].tolist()} (each scored position sees the last 6 tokens before it)")
    assert stats["target_calls"] > stats["rounds"], (
        "past the block, a round costs one target forward per scored position")


@pytest.mark.points(2)
def test_measured_acceptance_and_tokens_per_call_match_the_theory(impl):
    p = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    q = torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64)
    target, draft = Rolled(p), Rolled(q)
    alpha = float(torch.minimum(p, q).sum())  # 0.7, after every context
    gen = torch.Generator().manual_seed(4)
    out, stats = impl.speculative_generate(target, draft, torch.tensor([[0]]), 1500, k=3,
                                           temperature=1.0, block_size=2000, generator=gen)
    assert out.shape == (1, 1501), "exactly 1500 new tokens"
    per_call = (stats["accepted"] + stats["rounds"]) / stats["rounds"]
    want = impl.expected_tokens_per_call(alpha, 3)
    assert abs(want - (1 - alpha**4) / (1 - alpha)) < 1e-12
    assert abs(per_call - want) < 0.2, (
        f"{per_call:.2f} tokens per target call, theory (1 - a^4) / (1 - a) = {want:.2f} with "
        f"a = sum min(p, q) = {alpha:.2f} ({stats})")
    rate = stats["accepted"] / stats["proposed"]
    assert abs(rate - (want - 1) / 3) < 0.06, (
        f"accepted / proposed = {rate:.3f}, theory (a + a^2 + a^3) / 3 = {(want - 1) / 3:.3f}: "
        "the drafts after a rejection count as proposed, never as accepted")


@pytest.mark.points(1)
def test_a_rejected_token_is_redrawn_from_the_residual(impl):
    p = torch.tensor([[0.6, 0.1, 0.3], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64)
    q = torch.tensor([[0.1, 0.8, 0.1]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(5)
    counts, rejected = [0, 0, 0], 0
    for _ in range(2500):
        tokens, n = impl.verify(p, q, torch.tensor([1]), gen)  # p/q = 1/8 for the draft 1
        if n == 0:
            rejected += 1
            counts[int(tokens[0])] += 1
    assert abs(rejected / 2500 - 7 / 8) < 0.03, (
        f"draft token 1 has p/q = 0.1/0.8: rejected 7/8 of the time, here {rejected / 2500:.3f}")
    assert counts[1] == 0, "a rejected token must not be drawn again (residual is 0 there)"
    share = counts[0] / rejected
    assert abs(share - 5 / 7) < 0.035, (
        f"after a rejection token 0 came {share:.3f} of the time, residual [.5, 0, .2] / .7 "
        "gives 0.714: redraw from max(p - q, 0), not from p")


@pytest.mark.points(1)
def test_rounds_are_cut_to_the_tokens_still_needed(impl):
    model = TableLM(tables(15, vocab=4))
    gen = torch.Generator().manual_seed(6)
    for new, k, rounds, proposed in ((5, 4, 1, 4), (7, 4, 2, 6), (1, 3, 1, 1), (9, 2, 3, 6)):
        out, stats = impl.speculative_generate(model, model, torch.tensor([[1]]), new, k=k,
                                               temperature=1.0, block_size=32, generator=gen)
        assert out.shape == (1, 1 + new), f"{new} new tokens, got {out.shape[1] - 1}"
        assert stats == {"rounds": rounds, "target_calls": rounds, "proposed": proposed,
                         "accepted": proposed}, (
            f"{new} tokens at k={k} with draft == target: each round proposes min(k, tokens "
            f"still needed); want {rounds} rounds and {proposed} proposed, got {stats}")
    out, stats = impl.speculative_generate(model, model, torch.tensor([[1, 2]]), 0, k=2)
    assert out.tolist() == [[1, 2]] and stats["rounds"] == 0, "0 new tokens: idx unchanged"


@pytest.mark.points(1)
def test_bad_arguments_are_refused(impl):
    model = TableLM(tables(16, vocab=4))
    calls = {
        "two rows (2, T)": lambda: impl.speculative_generate(model, model,
                                                             torch.zeros(2, 3).long(), 4),
        "a 1-D idx": lambda: impl.speculative_generate(model, model, torch.zeros(3).long(), 4),
        "k=0": lambda: impl.speculative_generate(model, model, torch.zeros(1, 3).long(), 4, k=0),
        "max_new_tokens=-1": lambda: impl.speculative_generate(model, model,
                                                               torch.zeros(1, 3).long(), -1),
        "temperature -1": lambda: impl.token_probs(torch.zeros(3), -1.0),
    }
    for what, call in calls.items():
        with pytest.raises(ValueError):
            call()
            pytest.fail(f"speculative decoding with {what} must raise ValueError")
    assert math.isclose(impl.expected_tokens_per_call(0.0, 0), 1.0), "k=0: one token per call"
