"""s37 · Supervised fine-tuning (SFT): a chat template, a prompt-masked loss, a tuned GPT.

You build
    ChatTokenizer(chars)           a character vocabulary (the pretrained model's ids kept)
                                   extended with the template's special tokens, one id each
    render_chat(messages, add_generation_prompt)
                                   messages -> the template text <|user|>...<|end|><|assistant|>
    encode_example(prompt, response, tok, system)
                                   (input_ids, labels): labels -100 on the prompt part
    collate(batch, pad_id)         right-padded (B, T) ids and labels (-100 on padding)
    masked_lm_loss(logits, labels) next-token cross-entropy over the labelled tokens only
    extend_vocab(model, n_new)     grow a tied GPT's embedding by n_new rows (their mean)
    train_sft(model, batches, steps, lr, weight_decay)
                                   AdamW on masked_lm_loss over the trainable parameters
    generate_answer(model, tok, prompt, max_new_tokens, block_size, system)
                                   greedy decoding after <|assistant|> until <|end|>
    exact_match_rate(model, tok, examples, max_new_tokens, block_size)
                                   the share of examples answered exactly right

How it differs from the previous steps
    Pretraining (s30) taught the GPT to continue Shakespeare. It has never seen a question
    followed by an answer, and nothing tells it where an answer stops. SFT keeps the same
    next-token loss but changes the data: conversations laid out by a fixed template, and a
    loss that counts only the tokens the model should learn to SAY (the answer and its end
    token), never the tokens it is GIVEN (the prompt). s36 changed few parameters; here the
    lab compares a LoRA adapter with tuning every weight, and measures what tuning costs the
    model's Shakespeare (catastrophic forgetting).

The math
    One example: ids x_0 .. x_{T-1}, labels y_t = x_t on the answer, y_t = -100 elsewhere.
    The logits at position t predict token t + 1, so
        L = sum over t with y_{t+1} != -100 of -log softmax(logits_t)[y_{t+1}]  /  N
    with N the number of labelled tokens in the whole batch (a token-level mean: a long
    answer weighs more than a short one). This is F.cross_entropy(logits[:, :-1], labels[:,
    1:], ignore_index=-100). Prompt tokens are still fed to the model (it must read them);
    they are only left out of the sum, so changing the prompt changes the logits but never
    which positions are targets.

Shapes
    input_ids / labels: lists of ints of one length per example; collate -> (B, T) int64,
    right-padded; a model maps (B, T) ids to (logits (B, T, V), anything), as s26's GPT does.

Special tokens
    <|system|>, <|user|>, <|assistant|> open a message, <|end|> closes it, <|pad|> fills
    batches. They get new ids after the characters, so the pretrained embedding rows keep
    their meaning; the new rows start at the mean of the old ones (a new token then looks
    like "an average character", not like noise with a huge logit). A user's text that
    spells "<|end|>" must not become the special token: render_chat refuses it.

You should be able to explain
    - what instruction tuning changes against the base model (the data and the mask, not the
      loss or the architecture), and why the model must learn to emit <|end|>;
    - why the prompt is masked (the model is not asked to predict the user), and why the
      mean is over tokens of the batch and not per sequence;
    - why labels are shifted inside the loss (the same alignment as pretraining);
    - what full fine-tuning risks that LoRA limits: forgetting what pretraining taught.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100
SYSTEM, USER, ASSISTANT, END, PAD = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
                                     "<|pad|>")
SPECIALS = (SYSTEM, USER, ASSISTANT, END, PAD)
ROLES = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}


class ChatTokenizer:
    """Character c keeps id chars.index(c) (the pretrained model's ids); SPECIALS[k] gets id
    len(chars) + k. encode reads a special token's spelling as its one id."""

    def __init__(self, chars):
        chars = list(chars)
        if any(len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise ValueError("chars must be distinct single characters")
        self.chars = chars
        raise NotImplementedError("s37 sft chat: a char -> id dict, then the special tokens' ids after the characters")
        self.pad_id = self.special_ids[PAD]
        self.end_id = self.special_ids[END]

    @property
    def vocab_size(self) -> int:
        """len(chars) + len(SPECIALS)."""
        return len(self.chars) + len(SPECIALS)

    def encode(self, text: str) -> list[int]:
        """Ids of text, left to right: a special token's spelling is its id, any other
        character its char id; ValueError naming a character not in the vocabulary."""
        ids, i = [], 0
        raise NotImplementedError("s37 sft chat: at each position try every special token first, else one character")
        return ids

    def decode(self, ids) -> str:
        """The text of ids (a special id gives its spelling): decode(encode(t)) == t."""
        raise NotImplementedError("s37 sft chat: a character id gives its character, a larger id its special token")


def render_chat(messages: list[dict], add_generation_prompt: bool = False) -> str:
    """For each {"role", "content"} (role system / user / assistant): the role's token, the
    content, <|end|>; then <|assistant|> when add_generation_prompt. ValueError on an unknown
    role or content containing a special token's spelling."""
    for m in messages:
        if m["role"] not in ROLES:
            raise ValueError(f"unknown role {m['role']!r}; the roles are {tuple(ROLES)}")
        if any(s in m["content"] for s in SPECIALS):
            raise ValueError("message content must not spell a special token")
    raise NotImplementedError("s37 sft chat: role token + content + END per message, the assistant token if asked")


def encode_example(prompt: str, response: str, tok: ChatTokenizer,
                   system: str | None = None) -> tuple[list[int], list[int]]:
    """input_ids = encode(render_chat([system?, user prompt], add_generation_prompt=True))
    + encode(response) + [<|end|>]; labels = -100 on that prompt part, the ids elsewhere."""
    messages = ([{"role": "system", "content": system}] if system is not None else [])
    messages.append({"role": "user", "content": prompt})
    raise NotImplementedError("s37 sft chat: prompt ids (masked), then response ids and the end id (labelled)")


def collate(batch: list[tuple[list[int], list[int]]], pad_id: int):
    """(ids, labels), int64 (B, T) with T the longest example: ids right-padded with pad_id,
    labels with -100. ValueError on an empty batch or ids and labels of different lengths."""
    if not batch or any(len(i) != len(y) for i, y in batch):
        raise ValueError("collate needs examples whose ids and labels have one length")
    raise NotImplementedError("s37 sft chat: fill with pad_id / -100, copy each example into the left of its row")


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over (b, t) with labels[b, t + 1] != -100 of -log softmax(logits[b, t])[labels[b,
    t + 1]]: a scalar. ValueError when no position is labelled."""
    if not (labels[:, 1:] != IGNORE).any():
        raise ValueError("masked_lm_loss needs at least one labelled token after position 0")
    raise NotImplementedError("s37 sft chat: shift by one, cross-entropy that ignores -100, a mean over target tokens")


def extend_vocab(model: nn.Module, n_new: int) -> nn.Module:
    """Give a GPT with model.transformer.wte tied to model.lm_head n_new more token rows,
    each the mean of the old rows; old rows unchanged, still tied, config.vocab_size updated."""
    if n_new < 0:
        raise ValueError(f"n_new must be >= 0, got {n_new}")
    old = model.transformer.wte.weight
    raise NotImplementedError("s37 sft chat: a bigger Embedding, old rows copied, new rows the mean; re-tie lm_head")
    model.config.vocab_size = old.size(0) + n_new
    return model


def train_sft(model: nn.Module, batches: list, steps: int, lr: float,
              weight_decay: float = 0.0) -> list[float]:
    """steps AdamW(lr, weight_decay) updates of masked_lm_loss(model(ids)[0], labels), step i
    on batches[i % len(batches)], over the parameters with requires_grad only (model in
    train mode); returns each step's loss, before its update."""
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)
    losses = []
    raise NotImplementedError("s37 sft chat: forward, masked loss, zero_grad, backward, step")
    return losses


def generate_answer(model: nn.Module, tok: ChatTokenizer, prompt: str,
                    max_new_tokens: int = 32, block_size: int | None = None,
                    system: str | None = None) -> str:
    """Greedy (argmax) tokens after the rendered prompt and <|assistant|>, in eval mode and
    without gradients, each step fed the last block_size tokens (all when None), until
    <|end|> (not returned) or max_new_tokens; the decoded answer."""
    messages = ([{"role": "system", "content": system}] if system is not None else [])
    messages.append({"role": "user", "content": prompt})
    ids = tok.encode(render_chat(messages, add_generation_prompt=True))
    model.eval()
    out: list[int] = []
    raise NotImplementedError("s37 sft chat: crop the context, argmax of the last logits, stop at the end token")
    return tok.decode(out)


def exact_match_rate(model: nn.Module, tok: ChatTokenizer, examples: list[dict],
                     max_new_tokens: int = 32, block_size: int | None = None) -> float:
    """The fraction of examples {"prompt", "response"} whose generate_answer, stripped of
    surrounding whitespace, equals the response exactly; ValueError on no examples."""
    if not examples:
        raise ValueError("exact_match_rate needs at least one example")
    raise NotImplementedError("s37 sft chat: generate each answer, compare after strip, average")
