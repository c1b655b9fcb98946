"""A tiny Mistral-architecture model, built offline, in the folder layout mlx-lm loads.

    from tools.tiny_mistral import build_tiny_mistral, mlx_lm_cli
    folder = build_tiny_mistral(tmp / "tiny", seed=0)     # config.json, model.safetensors,
                                                          # tokenizer.json, tokenizer_config.json
    mlx_lm_cli("lora", "--model", folder, "--train", ...)   # python -m mlx_lm lora ...

s39's graders and lab run the real `mlx_lm.lora` / `mlx_lm.generate` / `mlx_lm.fuse` on it,
the same commands a learner runs on Mistral-7B, in seconds on a CPU. The weights are random
(seeded); the tokenizer is character-level (every printable ASCII character, a newline and
`</s>`), written with Hugging Face `tokenizers`, and its chat template renders a user turn as
"Q: <prompt>\\nA: " and the assistant's as "<completion></s>", so `--mask-prompt` can find
where the completion starts. Needs the mlx extra (mlx, mlx-lm, which brings transformers and
tokenizers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def mlx_lm_cli(command: str, *args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m mlx_lm <command> <args>` (what the `mlx_lm.<command>` script does) on the
    CPU, offline; returns the finished process (check .returncode, .stdout, .stderr)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "MLX_DEVICE": "cpu"}
    return subprocess.run([sys.executable, "-m", "mlx_lm", command, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)
