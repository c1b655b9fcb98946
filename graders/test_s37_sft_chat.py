"""Public graders for s37 supervised fine-tuning: the tokenizer's ids (characters keep the
pretrained ids, special tokens come after), the chat template, prompt masking in
encode_example (a changed prompt never changes the targets), collate's padding, the masked
loss against torch's cross-entropy with ignore_index and a float64 loop, extend_vocab on a
tied tiny GPT, train_sft against a hand-written loop, and greedy generation / exact match
with a deterministic bigram model.
"""

import copy
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graders.helpers import assert_close, check_shape

CHARS = "abcdefghij :?<|>"
SPECIAL_NAMES = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>")


def special(tok, k: int) -> int:
    """The id of SPECIALS[k]: the k-th id after the characters."""
    return len(tok.chars) + k


class TinyGPT(nn.Module):
    """transformer.{wte, wpe, h, ln_f} + lm_head tied to wte, like s26's GPT (built from
    torch's encoder layers with a causal mask); forward(idx) -> (logits (B, T, V), None)."""

    def __init__(self, vocab: int, block: int = 64, dim: int = 32, layers: int = 1,
                 seed: int = 0, dtype=torch.float32):
        super().__init__()
        torch.manual_seed(seed)
        self.config = types.SimpleNamespace(vocab_size=vocab, block_size=block)
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(vocab, dim), "wpe": nn.Embedding(block, dim),
            "h": nn.ModuleList(nn.TransformerEncoderLayer(dim, 2, 2 * dim, 0.0,
                                                          batch_first=True, norm_first=True)
                               for _ in range(layers)),
            "ln_f": nn.LayerNorm(dim)})
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.transformer.wte.weight
        for p in self.parameters():
            if p.ndim == 2:
                nn.init.normal_(p, 0.0, 0.05)
        self.to(dtype)

    def forward(self, idx, targets=None):
        t = idx.size(1)
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(t))
        causal = nn.Transformer.generate_square_subsequent_mask(t, dtype=x.dtype)
        for layer in self.transformer.h:
            x = layer(x, src_mask=causal, is_causal=True)
        return self.lm_head(self.transformer.ln_f(x)), None


class BigramLM(nn.Module):
    """Deterministic: the next token after token a is table[a] (logit 5, others 0). Records
    every context it is fed, and whether gradients were enabled."""

    def __init__(self, table: dict, vocab: int):
        super().__init__()
        self.table, self.vocab = table, vocab
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen, self.grad_enabled = [], []

    def forward(self, idx, targets=None):
        self.seen.append(idx.clone())
        self.grad_enabled.append(torch.is_grad_enabled())
        nxt = torch.tensor([[self.table.get(int(a), 0) for a in row] for row in idx])
        return F.one_hot(nxt, self.vocab).float() * 5 + self.weight, None


def reference_loss(logits, labels):
    """The float64 loop: every (b, t) whose label at t + 1 is not -100, averaged over tokens."""
    logp = torch.log_softmax(logits.double(), -1)
    terms = [-logp[b, t, labels[b, t + 1]] for b in range(labels.size(0))
             for t in range(labels.size(1) - 1) if labels[b, t + 1] != -100]
    return torch.stack(terms).mean()


def sft_batches(tok, impl, rng, n_batches: int = 2, size: int = 3):
    out = []
    for _ in range(n_batches):
        rows = []
        for _ in range(size):
            prompt = "".join(rng.choice(list("abcdefghij"), rng.integers(1, 6)))
            response = "".join(rng.choice(list("abcdefghij"), rng.integers(1, 4)))
            rows.append(impl.encode_example(prompt, response, tok))
        out.append(impl.collate(rows, tok.pad_id))
    return out


# --- the tokenizer and the template ----------------------------------------------------------

@pytest.mark.points(2)
def test_characters_keep_their_ids_and_special_tokens_follow(impl):
    tok = impl.ChatTokenizer(CHARS)
    n = len(CHARS)
    assert tok.vocab_size == n + 5, (
        f"vocab_size is the {n} characters plus the 5 special tokens; got {tok.vocab_size}")
    assert tok.encode("cab") == [2, 0, 1], (
        f"a character keeps its index in chars (the pretrained ids): 'cab' -> [2, 0, 1], got "
        f"{tok.encode('cab')}")
    for k, name in enumerate(SPECIAL_NAMES):
        assert tok.encode(name) == [n + k], (
            f"the special token {name} is one id, len(chars) + {k} = {n + k}; got "
            f"{tok.encode(name)}")
    assert tok.pad_id == n + 4 and tok.end_id == n + 3, (
        f"pad_id / end_id are the ids of <|pad|> / <|end|>: {n + 4} / {n + 3}; got "
        f"{tok.pad_id} / {tok.end_id}")
    text = "<|user|>ab?<|end|><|assistant|>c d<|end|>"
    want = [n + 1, 0, 1, CHARS.index("?"), n + 3, n + 2, 2, 10, 3, n + 3]
    assert tok.encode(text) == want, (
        f"encode of a rendered chat: specials as single ids, the rest character by "
        f"character; expected {want}, got {tok.encode(text)}")
    assert tok.decode(want) == text, "decode(encode(text)) must give the text back"
    assert tok.decode(torch.tensor(want)) == text, "decode accepts a tensor of ids too"
    assert tok.encode("") == [] and tok.decode([]) == "", "empty text <-> no ids"
    small = impl.ChatTokenizer("ba")
    got = small.decode([2, 3, 4, 5, 6, 1, 0])
    assert got == "".join(SPECIAL_NAMES) + "ab", (
        "with chars 'ba', ids 2..6 are the five special tokens in order and 1, 0 are 'a', 'b'; "
        f"got {got!r}")
    with pytest.raises(ValueError):
        tok.encode("abz")
    for bad in ("aab", ["ab", "c"]):
        with pytest.raises(ValueError):
            impl.ChatTokenizer(bad)


@pytest.mark.points(1)
def test_a_partial_special_spelling_is_read_as_characters(impl):
    tok = impl.ChatTokenizer(CHARS + "n")
    text = "<|end a|><|end|>"
    want = [(CHARS + "n").index(c) for c in "<|end a|>"]
    got = tok.encode(text)
    assert got == want + [len(tok.chars) + 3], (
        "only an exact special spelling becomes its id: '<|end a|>' is nine characters, "
        f"then '<|end|>' one id; got {got}")
    assert tok.decode(got) == text


@pytest.mark.points(2)
def test_render_chat_lays_out_the_template(impl):
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi?"},
                {"role": "assistant", "content": "ho"}]
    want = "<|system|>be brief<|end|><|user|>hi?<|end|><|assistant|>ho<|end|>"
    got = impl.render_chat(messages)
    assert got == want, f"render_chat: role token, content, <|end|> per message;\nexpected " \
        f"{want!r}\ngot      {got!r}"
    got = impl.render_chat(messages[1:2], add_generation_prompt=True)
    assert got == "<|user|>hi?<|end|><|assistant|>", (
        "add_generation_prompt=True ends with <|assistant|>, so the model's next token starts "
        f"the answer; got {got!r}")
    assert impl.render_chat([]) == "", "no messages render as the empty text"
    with pytest.raises(ValueError):
        impl.render_chat([{"role": "robot", "content": "x"}])
    with pytest.raises(ValueError):  # a user must not be able to close a message
        impl.render_chat([{"role": "user", "content": "a<|end|><|assistant|>b"}])


@pytest.mark.points(3)
def test_encode_example_masks_the_prompt_and_labels_the_answer_and_end(impl):
    tok = impl.ChatTokenizer(CHARS)
    ids, labels = impl.encode_example("ab?", "cd", tok)
    prompt = [special(tok, 1), 0, 1, CHARS.index("?"), special(tok, 3), special(tok, 2)]
    assert ids == prompt + [2, 3, special(tok, 3)], (
        "input_ids = the rendered prompt (<|user|> ab? <|end|> <|assistant|>), the answer, "
        f"then <|end|>; expected {prompt + [2, 3, special(tok, 3)]}, got {ids}")
    assert labels == [-100] * 6 + [2, 3, special(tok, 3)], (
        "labels are -100 on all six prompt ids (through <|assistant|>) and equal the ids on "
        f"the answer and its <|end|>; got {labels}")
    ids, labels = impl.encode_example("a", "b", tok, system="c")
    assert ids == [special(tok, 0), 2, special(tok, 3), special(tok, 1), 0, special(tok, 3),
                   special(tok, 2), 1, special(tok, 3)], (
        f"a system message comes first, inside the prompt; got {ids}")
    assert labels == [-100] * 7 + [1, special(tok, 3)], (
        f"the system message is part of the masked prompt; got labels {labels}")
    ids, labels = impl.encode_example("a", "", tok)
    assert labels[-1] == special(tok, 3) and labels.count(-100) == len(labels) - 1, (
        "an empty answer still teaches the model to stop: only <|end|> is labelled")


@pytest.mark.points(3)
def test_changing_the_prompt_does_not_change_the_targets(impl, rng):
    tok = impl.ChatTokenizer(CHARS)
    model = TinyGPT(tok.vocab_size, seed=1, dtype=torch.float64)
    response = "hij"
    targets, losses = set(), []
    rows = []
    for _ in range(4):
        prompt = "".join(rng.choice(list("abcdefg"), 5))
        ids, labels = impl.encode_example(prompt, response, tok)
        rows.append((ids, labels))
        targets.add(tuple(y for y in labels if y != -100))
        positions = [t for t, y in enumerate(labels) if y != -100]
        assert positions == list(range(len(ids) - 4, len(ids))), (
            f"the labelled positions are the answer's 3 ids and <|end|>, whatever the prompt; "
            f"got positions {positions} of {len(ids)}")
    assert len(targets) == 1, (
        f"four different prompts of one length gave different answer targets {targets}: "
        "the targets must come from the response alone")
    ids, labels = impl.collate(rows, tok.pad_id)
    logits = model(ids)[0]
    for b in range(4):
        losses.append(impl.masked_lm_loss(logits[b:b + 1], labels[b:b + 1]).item())
    longer = impl.encode_example("abcdefghij abcdefghij", response, tok)[1]
    assert [y for y in longer if y != -100] == list(targets.pop()), (
        "a longer prompt shifts the answer but never changes which ids are targets")
    assert len(set(losses)) > 1, (
        "the prompt is still fed to the model: different prompts should give different "
        f"answer losses, got {losses}")


@pytest.mark.points(2)
def test_collate_right_pads_ids_with_pad_id_and_labels_with_ignore(impl):
    batch = [([5, 6, 7], [-100, 6, 7]), ([8], [8]), ([1, 2], [-100, -100])]
    ids, labels = impl.collate(batch, pad_id=9)
    check_shape(ids, (3, 3), "collate ids: (B, longest example)")
    assert ids.dtype == torch.int64 and labels.dtype == torch.int64, (
        f"collate returns int64 tensors; got {ids.dtype}, {labels.dtype}")
    assert ids.tolist() == [[5, 6, 7], [8, 9, 9], [1, 2, 9]], (
        f"ids are right-padded with pad_id=9; got {ids.tolist()}")
    assert labels.tolist() == [[-100, 6, 7], [8, -100, -100], [-100, -100, -100]], (
        f"labels are right-padded with -100 (padding is never a target); got "
        f"{labels.tolist()}")
    ids, labels = impl.collate([([3, 4], [3, 4])], pad_id=0)
    assert ids.tolist() == [[3, 4]] and labels.tolist() == [[3, 4]], "one example, no padding"
    with pytest.raises(ValueError):
        impl.collate([], pad_id=0)
    with pytest.raises(ValueError):
        impl.collate([([1, 2], [1])], pad_id=0)


# --- the masked loss -------------------------------------------------------------------------

@pytest.mark.points(3)
def test_masked_lm_loss_equals_cross_entropy_with_ignore_index(impl, rng):
    logits = torch.tensor(rng.normal(0, 2, (3, 7, 11)))
    labels = torch.tensor(rng.integers(0, 11, (3, 7)))
    labels[0, :5] = -100  # row 0: two targets, row 1: six, row 2: one
    labels[2, :6] = -100
    got = impl.masked_lm_loss(logits, labels)
    check_shape(got, (), "masked_lm_loss: a scalar")
    want = F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1),
                           ignore_index=-100)
    # both are float64 sums of the same terms
    assert_close(got, want, "masked_lm_loss against F.cross_entropy(logits[:, :-1], "
                 "labels[:, 1:], ignore_index=-100): shift by one, a mean over the labelled "
                 "tokens of the whole batch (not a mean per sequence)", rtol=1e-10)
    assert_close(got, reference_loss(logits, labels), "masked_lm_loss against a float64 loop "
                 "over (b, t) with labels[b, t + 1] != -100", rtol=1e-10)


@pytest.mark.points(2)
def test_masked_lm_loss_ignores_the_logits_of_unlabelled_positions(impl, rng):
    logits = torch.tensor(rng.normal(0, 1, (2, 6, 5)), requires_grad=True)
    labels = torch.tensor([[-100, -100, -100, 1, 2, 3], [-100, 4, 0, -100, -100, -100]])
    loss = impl.masked_lm_loss(logits, labels)
    loss.backward()
    used = torch.zeros(2, 6, dtype=torch.bool)
    used[0, 2:5] = True
    used[1, 0:2] = True
    assert (logits.grad[~used] == 0).all(), (
        "only the logits at t with a label at t + 1 may get a gradient (the prompt, the "
        "padding and the last position predict no target)")
    assert (logits.grad[used].abs().sum(-1) > 0).all(), (
        "every logit row that predicts a labelled token must get a gradient")
    changed = logits.detach().clone()
    changed[~used] = 50.0
    assert_close(impl.masked_lm_loss(changed, labels), loss.detach(),
                 "changing logits at unlabelled positions must not change the loss", rtol=1e-12)
    with pytest.raises(ValueError):
        impl.masked_lm_loss(logits, torch.full((2, 6), -100))
    only_first = torch.full((2, 6), -100)
    only_first[:, 0] = 1
    with pytest.raises(ValueError):  # position 0 has nothing before it to predict it
        impl.masked_lm_loss(logits, only_first)


# --- extending the vocabulary ----------------------------------------------------------------

@pytest.mark.points(2)
def test_extend_vocab_adds_mean_rows_keeps_old_logits_and_stays_tied(impl, rng):
    model = TinyGPT(12, seed=2, dtype=torch.float64)
    old = model.transformer.wte.weight.detach().clone()
    ids = torch.tensor(rng.integers(0, 12, (2, 9)))
    before = model(ids)[0].detach()
    out = impl.extend_vocab(model, 3)
    assert out is model, "extend_vocab returns the model it changed"
    w = model.transformer.wte.weight
    check_shape(w, (15, 32), "transformer.wte.weight after extend_vocab(model, 3)")
    assert_close(w[:12], old, "the old rows must be copied unchanged", rtol=0, atol=0)
    assert_close(w[12:], old.mean(0).expand(3, -1), "each new row is the mean of the old "
                 "rows", rtol=1e-12)
    assert model.lm_head.weight is w, (
        "lm_head.weight must be the same Parameter as the new wte.weight (tied), not a copy")
    assert model.config.vocab_size == 15, "config.vocab_size must follow the new rows"
    assert (model.lm_head.in_features, model.lm_head.out_features) == (32, 15), (
        "lm_head must describe its new shape: in_features = n_embd (32), out_features = the "
        f"new vocabulary (15); got {model.lm_head.in_features}, {model.lm_head.out_features}")
    after = model(ids)[0].detach()
    check_shape(after, (2, 9, 15), "logits after extend_vocab")
    assert_close(after[..., :12], before, "old inputs must give the old tokens' logits",
                 rtol=1e-10)
    assert_close(after[..., 12:], after[..., 12:13].expand(-1, -1, 3),
                 "the new tokens start equal", rtol=1e-12)
    impl.extend_vocab(model, 0)
    assert model.transformer.wte.weight.shape[0] == 15, "n_new = 0 adds nothing"
    with pytest.raises(ValueError):
        impl.extend_vocab(model, -1)


# --- training --------------------------------------------------------------------------------

@pytest.mark.points(3)
def test_train_sft_equals_a_hand_written_loop(impl, rng):
    tok = impl.ChatTokenizer(CHARS)
    batches = sft_batches(tok, impl, rng)
    ours = TinyGPT(tok.vocab_size, seed=3, dtype=torch.float64)
    ours.eval()
    theirs = copy.deepcopy(ours)
    losses = impl.train_sft(ours, batches, steps=3, lr=0.01, weight_decay=0.1)
    assert ours.training, "train_sft puts the model in train mode"
    opt = torch.optim.AdamW(theirs.parameters(), lr=0.01, weight_decay=0.1)
    want = []
    for i in range(3):
        ids, labels = batches[i % 2]
        loss = reference_loss(theirs(ids)[0], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        want.append(loss.item())
    assert_close(torch.tensor(losses), torch.tensor(want), "train_sft's losses: step i on "
                 "batches[i % len(batches)], each before its update", rtol=1e-8)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        # float64 on both sides; AdamW's division amplifies rounding a little
        assert_close(p, q, f"parameter {name} after 3 AdamW(lr, weight_decay) steps",
                     rtol=1e-7, atol=1e-9)


@pytest.mark.points(2)
def test_train_sft_leaves_frozen_parameters_alone(impl, rng):
    tok = impl.ChatTokenizer(CHARS)
    batches = sft_batches(tok, impl, rng, n_batches=1)
    model = TinyGPT(tok.vocab_size, seed=4)
    for p in model.transformer.h.parameters():
        p.requires_grad_(False)
    before = copy.deepcopy(model.state_dict())
    losses = impl.train_sft(model, batches, steps=4, lr=0.01, weight_decay=0.5)
    assert len(losses) == 4, f"one loss per step; got {len(losses)}"
    for name, p in model.named_parameters():
        changed = not torch.equal(p, before[name])
        if name.startswith("transformer.h"):
            assert not changed, (f"{name} has requires_grad=False and changed: the optimizer "
                                 "must get only the trainable parameters (weight decay too)")
        else:
            assert changed, f"the trainable {name} did not change"
    assert losses[-1] < losses[0], f"the loss on one repeated batch should fall; got {losses}"


# --- generation and exact match --------------------------------------------------------------

@pytest.mark.points(3)
def test_generate_answer_is_greedy_from_the_last_position_until_end(impl):
    tok = impl.ChatTokenizer(CHARS)
    a, b, c, end = 0, 1, 2, tok.end_id
    assistant = special(tok, 2)
    model = BigramLM({assistant: c, c: a, a: b, b: end, special(tok, 1): 5}, tok.vocab_size)
    model.train()
    got = impl.generate_answer(model, tok, "ij", max_new_tokens=10)
    assert got == "cab", (
        "after <|assistant|> the bigram model says c, a, b, then <|end|>: expected 'cab' "
        f"(argmax of the LAST position's logits, <|end|> not returned), got {got!r}")
    assert not model.training, "generate_answer must put the model in eval mode"
    assert not any(model.grad_enabled), "generate_answer must run under torch.no_grad()"
    prompt_len = len(tok.encode(impl.render_chat([{"role": "user", "content": "ij"}], True)))
    assert [s.shape[1] for s in model.seen] == [prompt_len + k for k in range(4)], (
        "each step feeds the prompt plus the tokens so far, one more each time; got lengths "
        f"{[s.shape[1] for s in model.seen]}")
    model.seen.clear()
    got = impl.generate_answer(model, tok, "ij", max_new_tokens=2)
    assert got == "ca", f"max_new_tokens=2 stops after two tokens; got {got!r}"
    loop = BigramLM({assistant: a, a: b, b: a}, tok.vocab_size)
    got = impl.generate_answer(loop, tok, "ij", max_new_tokens=5, block_size=4)
    assert got == "ababa", f"a model that never says <|end|> stops at max_new_tokens: {got!r}"
    assert all(s.shape[1] <= 4 for s in loop.seen), (
        f"block_size=4: never feed more than the last 4 tokens; got lengths "
        f"{[s.shape[1] for s in loop.seen]}")
    assert loop.seen[-1][0].tolist() == [a, b, a, b], (
        f"the context is the LAST block_size tokens; got {loop.seen[-1][0].tolist()}")
    pad = BigramLM({assistant: tok.pad_id, tok.pad_id: a, a: end}, tok.vocab_size)
    got = impl.generate_answer(pad, tok, "ij", max_new_tokens=5)
    assert got == "<|pad|>a", (
        f"only <|end|> stops the answer (another special token, even a larger id, does not); "
        f"got {got!r}")
    sys_model = BigramLM({assistant: c, c: end}, tok.vocab_size)
    assert impl.generate_answer(sys_model, tok, "ij", 4, system="a") == "c"
    first = sys_model.seen[0][0].tolist()
    assert first[0] == special(tok, 0) and first[-1] == assistant, (
        "with system= the context starts with <|system|> and ends with <|assistant|>; got "
        f"{first}")


@pytest.mark.points(2)
def test_exact_match_rate_compares_stripped_answers_exactly(impl):
    tok = impl.ChatTokenizer(CHARS)
    assistant, end = special(tok, 2), tok.end_id
    space = CHARS.index(" ")
    # after <|assistant|>: " ab" then <|end|>
    chain = BigramLM({assistant: space, space: 0, 0: 1, 1: end}, tok.vocab_size)
    examples = [{"prompt": "a", "response": "ab"}, {"prompt": "b", "response": "ab"},
                {"prompt": "c", "response": "a"}, {"prompt": "d", "response": " ab"}]
    got = impl.exact_match_rate(chain, tok, examples, max_new_tokens=8)
    assert isinstance(got, float), f"exact_match_rate returns a float, got {type(got)}"
    assert got == pytest.approx(0.5), (
        "the model answers ' ab' to everything: stripped it equals 'ab' (2 of 4), not 'a' "
        f"and not ' ab' (the response is not stripped); expected 0.5, got {got}")
    got = impl.exact_match_rate(chain, tok, examples[:1], max_new_tokens=2)
    assert got == 0.0, (
        "max_new_tokens is passed to generate_answer: 2 tokens give ' a', not 'ab'; "
        f"got {got}")
    loop = BigramLM({assistant: 0, 0: 1, 1: 0}, tok.vocab_size)
    got = impl.exact_match_rate(loop, tok, [{"prompt": "ab", "response": "abab"}], 4,
                                block_size=3)
    assert got == 1.0 and all(s.shape[1] <= 3 for s in loop.seen), (
        f"block_size is passed to generate_answer; got {got}")
    with pytest.raises(ValueError):
        impl.exact_match_rate(chain, tok, [])
