"""Hidden graders for s37: SFT of a tiny GPT on generated instructions beats the untuned model
on held-out words by exact match; encode / decode round trips and prompt masking on random
texts (hypothesis); the masked loss stays finite for huge logits, its gradient against finite
differences; a batch mean over tokens, not over sequences; zero steps change nothing."""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close, gradcheck
from graders.test_s37_sft_chat import CHARS, BigramLM, TinyGPT, reference_loss
from tools.instruct_data import is_correct, make_examples


def first_letter_examples(n: int, seed: int, split: str):
    """One phrasing ("First letter of <word>:"), so a one-layer model learns it in seconds."""
    out = [e for e in make_examples(4 * n, seed=seed, split=split, tasks=("first_letter",))
           if e["prompt"].startswith("First")]
    return out[:n]


@pytest.mark.points(4)
def test_sft_teaches_a_tiny_gpt_to_answer_held_out_instructions(impl):
    torch.set_num_threads(1)
    train = first_letter_examples(256, seed=0, split="train")
    test = first_letter_examples(40, seed=1, split="test")
    chars = sorted({c for e in train + test for c in e["prompt"] + e["response"]})
    tok = impl.ChatTokenizer(chars)
    model = TinyGPT(tok.vocab_size, seed=0)
    base = impl.exact_match_rate(model, tok, test[:10], max_new_tokens=8, block_size=64)
    assert base == 0.0, f"an untrained model should answer nothing right; it scored {base:.0%}"
    rows = [impl.encode_example(e["prompt"], e["response"], tok) for e in train]
    batches = [impl.collate(rows[i:i + 32], tok.pad_id) for i in range(0, len(rows), 32)]
    losses = impl.train_sft(model, batches, steps=100, lr=3e-3)
    assert losses[-1] < 0.25 * losses[0], (
        f"the answer-token loss should fall by 4x in 100 steps; it went {losses[0]:.3f} -> "
        f"{losses[-1]:.3f}")
    answers = [impl.generate_answer(model, tok, e["prompt"], 8, 64) for e in test]
    score = sum(is_correct(e, a) for e, a in zip(test, answers, strict=True)) / len(test)
    assert score >= 0.9, (
        "after SFT the tiny GPT should give the first letter of at least 90% of held-out "
        f"words (never seen in training) exactly; it scored {score:.0%}, e.g. "
        f"{test[0]['prompt']!r} -> {answers[0]!r}")
    assert impl.exact_match_rate(model, tok, test, 8, 64) == pytest.approx(score), (
        "exact_match_rate should agree with generate_answer + an exact comparison")


@settings(max_examples=25, deadline=None)
@given(prompt=st.text(alphabet=CHARS, max_size=12), response=st.text(alphabet=CHARS,
                                                                      max_size=6))
@pytest.mark.points(2)
def test_random_prompts_round_trip_and_mask_exactly_the_prompt(impl, prompt, response):
    tok = impl.ChatTokenizer(CHARS)
    clean = all(s not in prompt for s in ("<|system|>", "<|user|>", "<|assistant|>",
                                          "<|end|>", "<|pad|>"))
    if not clean or any(s in response for s in ("<|end|>", "<|pad|>", "<|user|>")):
        return
    ids, labels = impl.encode_example(prompt, response, tok)
    assert len(ids) == len(labels), "ids and labels have one length"
    answer = [y for y in labels if y != -100]
    assert tok.decode(answer) == response + "<|end|>", (
        f"the labelled ids decode to the response and <|end|>; got {tok.decode(answer)!r}")
    n_prompt = labels.count(-100)
    assert labels[:n_prompt] == [-100] * n_prompt and ids[n_prompt:] == labels[n_prompt:], (
        "labels: a block of -100 over the prompt, then a copy of the ids")
    assert tok.decode(ids[:n_prompt]) == impl.render_chat(
        [{"role": "user", "content": prompt}], add_generation_prompt=True), (
        "the masked part is exactly the rendered prompt with <|assistant|>")


@pytest.mark.points(1)
def test_masked_loss_is_finite_for_huge_logits(impl):
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 2] = 1000.0
    logits[0, 1, 1] = -1000.0
    labels = torch.tensor([[-100, 0, 1]])
    got = impl.masked_lm_loss(logits, labels)
    # target 0 at t=0 loses to a logit of 1000 by 1000; target 1 at t=1 costs 1000 + log 3
    want = torch.tensor((1000.0 + 1000.0 + torch.log(torch.tensor(3.0)).item()) / 2)
    assert_close(got, want, "a huge logit must cost its size, not inf or nan: use "
                 "log_softmax / cross_entropy, never log(softmax(.))", rtol=1e-5)


@pytest.mark.points(2)
def test_masked_loss_gradient_and_token_level_mean(impl, rng):
    v = rng.normal(0, 1, (2, 5, 4))
    labels = torch.tensor([[-100, 1, 2, 3, 0], [-100, -100, -100, -100, 2]])

    def f():
        return impl.masked_lm_loss(torch.tensor(v), labels).item()

    x = torch.tensor(v, requires_grad=True)
    impl.masked_lm_loss(x, labels).backward()
    gradcheck(f, v, x.grad, "d masked_lm_loss / d logits")
    # four targets in row 0 and one in row 1: each token weighs 1/5 (not 1/8 and 1/2)
    assert_close(impl.masked_lm_loss(torch.tensor(v), labels),
                 reference_loss(torch.tensor(v), labels),
                 "the loss is the mean over all 5 labelled tokens of the batch, not the mean "
                 "of per-sequence means", rtol=1e-10)


@pytest.mark.points(1)
def test_no_sft_steps_change_nothing_and_extend_works_in_place(impl, rng):
    tok = impl.ChatTokenizer(CHARS)
    model = TinyGPT(len(CHARS), seed=5)
    impl.extend_vocab(model, tok.vocab_size - len(CHARS))
    before = copy.deepcopy(model.state_dict())
    rows = [impl.encode_example("ab", "c", tok)]
    assert impl.train_sft(model, [impl.collate(rows, tok.pad_id)], steps=0, lr=0.1) == [], (
        "steps=0: no losses")
    for name, p in model.state_dict().items():
        assert torch.equal(p, before[name]), f"steps=0 changed {name}"
    model.eval()
    got = impl.generate_answer(model, tok, "ab", max_new_tokens=3, block_size=64)
    assert isinstance(got, str) and len(tok.encode(got)) <= 3, (
        f"generate_answer returns at most max_new_tokens tokens of text; got {got!r}")


@pytest.mark.points(1)
def test_a_large_vocabulary_and_a_long_text(impl):
    chars = [chr(0x100 + k) for k in range(300)]  # ids past 256, as a BPE vocabulary has
    tok = impl.ChatTokenizer(chars)
    text = "".join(chars) + "<|end|>" + chars[7] * 40
    ids = tok.encode(text)
    assert ids == list(range(300)) + [303] + [7] * 40, (
        "a 347-character text with a special token in the middle: every character id, then "
        "303 for <|end|>")
    assert tok.decode(ids) == text
    assistant = 302
    model = BigramLM({assistant: 299, 299: 298, 298: tok.end_id}, tok.vocab_size)
    got = impl.generate_answer(model, tok, chars[0], max_new_tokens=6)
    assert got == chars[299] + chars[298], (
        "with 305 ids the end token is 303: compare ids with ==, not `is` (equal ints above "
        f"256 are different objects); got {len(got)} characters")
