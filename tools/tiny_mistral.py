"""A tiny Mistral-architecture model, built offline, in the folder layout mlx-lm loads.

    from tools.tiny_mistral import build_tiny_mistral
    folder = build_tiny_mistral(tmp / "tiny", seed=0)     # config.json, model.safetensors,
                                                          # tokenizer.json, tokenizer_config.json
    python -m mlx_lm lora --model FOLDER --train ...        # the real CLI works on it too
    python -m tools.tiny_mistral pipeline OUT [--iters N]   # all of it in one process

`pipeline` builds the model in OUT/model (unless it is there already), writes instruction
data (tools/instruct_data.py) to OUT/data, trains as `mlx_lm.lora --train --mask-prompt` does
(mlx_lm.lora's train_model; adapters in OUT/adapters), greedily generates with the adapter and
fuses with mlx_lm.fuse's main() (OUT/fused), writing OUT/pipeline.json: the three commands in
one interpreter (each `mlx_lm.<command>` start-up costs seconds). s39's lab runs it; s39's
graders do not train: mlx-lm's compiled training loop stalls under the grading sandbox (seen
with mlx 0.32.4 / mlx-lm 0.32.2, also in a child process of the grading; a plain MLX loop
does not), so they write an adapter folder with mlx-lm's own layers instead.

On it, s39 runs the real `mlx_lm.lora` / `mlx_lm.generate` / `mlx_lm.fuse` (the same commands a
learner runs on Mistral-7B) in seconds on a CPU. The weights are random
(seeded); the tokenizer is character-level (every printable ASCII character, a newline and
`</s>`), written with Hugging Face `tokenizers`, and its chat template renders a user turn as
"Q: <prompt>\\nA: " and the assistant's as "<completion></s>", so `--mask-prompt` can find
where the completion starts. Needs the mlx extra (mlx, mlx-lm, which brings transformers and
tokenizers).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

EOS = "</s>"
UNK = "<unk>"
CHARS = ["\n"] + [chr(c) for c in range(32, 127)]
CHAT_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}Q: {{ m['content'] }}\n"
                 "A: {% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}")
CONFIG = {"model_type": "mistral", "hidden_size": 32, "num_hidden_layers": 2,
          "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
          "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 256,
          "tie_word_embeddings": False, "architectures": ["MistralForCausalLM"]}


def write_tokenizer(folder: Path) -> int:
    """tokenizer.json + tokenizer_config.json (char-level WordLevel); returns the vocab size."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = {EOS: 0, UNK: 1, **{c: i + 2 for i, c in enumerate(CHARS)}}  # pad id 0 is EOS
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([UNK, EOS])
    tok.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": EOS,
              "unk_token": UNK, "pad_token": EOS, "chat_template": CHAT_TEMPLATE,
              "model_max_length": CONFIG["max_position_embeddings"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return len(vocab)


def build_tiny_mistral(folder: Path | str, seed: int = 0, **overrides) -> Path:
    """Write a random-weight Mistral (CONFIG, changed by `overrides`) and its tokenizer into
    `folder`, in the layout `mlx_lm.load` and `mlx_lm.lora --model folder` read."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama  # mlx-lm runs model_type "mistral" with its llama module

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tokenizer(folder)
    config = {**CONFIG, "vocab_size": vocab_size, "eos_token_id": 0, **overrides}
    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.eval(model.parameters())
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())),
                        metadata={"format": "mlx"})
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    return folder


TASKS = ("first_letter", "uppercase")
PROMPTS = ("First letter of sototri:", "Uppercase: kelima")


def pipeline(out: Path | str, iters: int = 8, seed: int = 0, learning_rate: float = 1e-3,
             n_train: int = 16, report_every: int | None = None, callback=None) -> dict:
    """mlx_lm.lora --train --mask-prompt, mlx_lm.generate --adapter-path and mlx_lm.fuse on a
    fresh tiny Mistral in `out`; returns (and writes to out/pipeline.json) what happened.
    `callback`: an mlx_lm TrainingCallback, told the loss every `report_every` iterations."""
    import mlx.core as mx
    import mlx_lm
    import numpy as np
    from mlx_lm import fuse as mlx_fuse
    from mlx_lm import lora as mlx_lora
    from mlx_lm.tuner.datasets import load_dataset

    from tools.instruct_data import make_examples, write_mlx_jsonl

    out = Path(out)
    start = time.perf_counter()
    folder = out / "model"  # built here unless the caller has built it already
    if not (folder / "config.json").exists():
        build_tiny_mistral(folder, seed=seed)
    data = write_mlx_jsonl(out / "data", make_examples(n_train, seed=seed, tasks=TASKS),
                           make_examples(4, seed=seed + 1, split="test", tasks=TASKS))
    args = {**mlx_lora.CONFIG_DEFAULTS, "model": str(folder), "train": True, "data": str(data),
            "mask_prompt": True, "iters": iters, "batch_size": 4, "num_layers": 2,
            "learning_rate": learning_rate, "seed": seed,
            "steps_per_report": report_every or max(iters, 1),
            "steps_per_eval": max(iters, 1), "val_batches": 1, "save_every": 10**6,
            "adapter_path": str(out / "adapters")}
    ns = types.SimpleNamespace(**args)
    # what mlx_lora.run(ns) does for --train, with the callback (run() drops a callback
    # it is given unless --report-to names one)
    np.random.seed(seed)  # as run() does: the batch order
    mx.random.seed(seed)  # the adapters' lora_a
    base, tok = mlx_lm.load(str(folder))
    train_set, valid_set, _ = load_dataset(ns, tok)
    mlx_lora.train_model(ns, base, train_set, valid_set, callback)
    trained = time.perf_counter()
    model, tok = mlx_lm.load(str(folder), adapter_path=str(out / "adapters"))
    texts = {}
    for p in PROMPTS:
        prompt = tok.apply_chat_template([{"role": "user", "content": p}],
                                         add_generation_prompt=True, tokenize=False)
        texts[p] = mlx_lm.generate(model, tok, prompt, max_tokens=6)
    argv = sys.argv
    sys.argv = ["mlx_lm.fuse", "--model", str(folder), "--adapter-path", str(out / "adapters"),
                "--save-path", str(out / "fused")]
    try:
        mlx_fuse.main()
    finally:
        sys.argv = argv
    report = {"args": {k: args[k] for k in ("iters", "batch_size", "num_layers", "learning_rate",
                                            "mask_prompt")},
              "lora_parameters": args["lora_parameters"], "generated": texts,
              "train_seconds": trained - start, "seconds": time.perf_counter() - start}
    (out / "pipeline.json").write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the mlx-lm LoRA pipeline on a tiny Mistral")
    parser.add_argument("command", choices=["pipeline"])
    parser.add_argument("out")
    parser.add_argument("--iters", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--n-train", type=int, default=16)
    a = parser.parse_args()
    print(json.dumps(pipeline(a.out, a.iters, a.seed, a.learning_rate, a.n_train)))
