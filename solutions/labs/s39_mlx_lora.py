# %% [markdown]
# # s39 · LoRA in MLX lab: your layer inside the real mlx-lm tools
#
# This lab runs **your** `exercises/s39_mlx_lora.py` with MLX and mlx-lm (the mlx extra) on a
# tiny Mistral-architecture model built offline here (random weights, a character-level
# tokenizer, mlx-lm's folder layout: `tools/tiny_mistral.py`). You will
#
# 1. check that your `LoRALinear` computes what `mlx_lm.tuner.lora.LoRALinear` computes;
# 2. count, with your `apply_lora`, what LoRA trains on the real Mistral-7B shapes (built
#    lazily: MLX allocates nothing until asked, so this costs no memory);
# 3. train the tiny Mistral with mlx-lm's own trainer twice: once as `mlx_lm.lora --train
#    --mask-prompt` does it, once with your layers and your `completion_loss`;
# 4. load mlx-lm's adapter file into your layers, generate, and fuse (your `fuse_model`
#    against `mlx_lm.fuse`);
# 5. read the commands (and the memory you need) for doing all this on Mistral-7B on a Mac.
#
# Everything runs on the CPU (`mlx[cpu]` on Linux) in seconds. Results go to
# `results/s39_mlx_lora/`.

# %%
import tempfile
import time
import types
from pathlib import Path

import matplotlib.pyplot as plt
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import mlx_lm
import numpy as np
from mlx.utils import tree_flatten
from mlx_lm.models import llama
from mlx_lm.tuner import lora as mlx_lora_layer
from mlx_lm.tuner.callbacks import TrainingCallback
from mlx_lm.tuner.datasets import CacheDataset, load_dataset
from mlx_lm.tuner.trainer import TrainingArgs, default_loss, iterate_batches, train

from tools.labkit import Run, load_step
from tools.tiny_mistral import pipeline

lora = load_step("s39_mlx_lora")
ITERS, LR, RANK, SCALE, LAYERS = 60, 1e-2, 8, 20.0, 2
run = Run("s39_mlx_lora", config={"iters": ITERS, "learning_rate": LR, "rank": RANK,
                                  "scale": SCALE, "num_layers": LAYERS, "batch_size": 4,
                                  "mask_prompt": True}, seed=0)
work = Path(tempfile.mkdtemp(prefix="s39-"))

# %% [markdown]
# ## 1. Your layer against mlx-lm's, on the same weights
# mlx-lm keeps `lora_a` as (in, r) and `lora_b` as (r, out), and multiplies by `scale` as
# given (20 by default; peft and s36 use alpha / r). Same weights in, same outputs out.

# %%
mx.random.seed(0)
base = nn.Linear(64, 48, bias=True)
mine = lora.LoRALinear.from_base(base, r=RANK, scale=SCALE)
mine.lora_b = 0.01 * mx.random.normal(mine.lora_b.shape)
ref = mlx_lora_layer.LoRALinear.from_base(base, r=RANK, scale=SCALE)
ref.lora_a, ref.lora_b = mine.lora_a, mine.lora_b
x = mx.random.normal((16, 64))
forward_gap = float(mx.abs(mine(x) - ref(x)).max())
fuse_gap = float(mx.abs(mine.fuse().weight - ref.fuse().weight).max())
print(f"forward max |yours - mlx-lm| = {forward_gap:.2e}, fused weight max gap = {fuse_gap:.2e}")
run.metric("layer_forward_gap", forward_gap)
run.metric("layer_fuse_gap", fuse_gap)

# %% [markdown]
# ## 2. Mistral-7B on paper
# The architecture of Mistral-7B-v0.1 (4096 wide, 32 blocks, 14336 in the MLP, 8 key/value
# heads), built lazily, wrapped by your `apply_lora` as `mlx_lm.lora --num-layers N` would
# (every nn.Linear of the last N blocks, rank 8). The weights themselves: 2 bytes each in
# bfloat16, about half a byte in 4-bit (QLoRA's quantized base, plus its scales).

# %%
MISTRAL_7B = dict(model_type="mistral", hidden_size=4096, num_hidden_layers=32,
                  intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8,
                  rms_norm_eps=1e-5, vocab_size=32000, rope_theta=10000.0,
                  tie_word_embeddings=False)
counts = {}
for n in (4, 8, 16, 32):
    big = llama.Model(llama.ModelArgs.from_dict(MISTRAL_7B))  # lazy: nothing is allocated
    total = sum(v.size for _, v in tree_flatten(big.parameters()))
    lora.apply_lora(big, n, rank=8)
    counts[n] = lora.count_trainable(big)
    del big
print(f"Mistral-7B: {total / 1e9:.2f} B parameters; bf16 weights {2 * total / 2**30:.1f} GiB, "
      f"4-bit about {0.5 * total / 2**30:.1f} GiB")
for n, c in counts.items():
    print(f"  --num-layers {n:2d}: {c / 1e6:5.2f} M trainable ({100 * c / total:.3f} %), "
          f"adapter file {4 * c / 2**20:.0f} MiB in float32")
run.metric("mistral7b_parameters", total)
for n, c in counts.items():
    run.metric(f"mistral7b_trainable_num_layers_{n}", c)

# %% [markdown]
# ## 3. Train the tiny Mistral: mlx-lm's way, and with your layers and loss
# First `tools.tiny_mistral.pipeline`: what `mlx_lm.lora --train --mask-prompt`,
# `mlx_lm.generate --adapter-path` and `mlx_lm.fuse` do, in one process. Then the same
# trainer (`mlx_lm.tuner.trainer.train`) on a fresh copy of the base, wrapped by your
# `apply_lora` and scored by your `completion_loss`.


# %%
class Losses(TrainingCallback):
    def __init__(self):
        self.train, self.val = [], []

    def on_train_loss_report(self, info):
        self.train.append((info["iteration"], info["train_loss"]))

    def on_val_loss_report(self, info):
        self.val.append((info["iteration"], info["val_loss"]))


theirs = Losses()
tic = time.perf_counter()
report = pipeline(work, iters=ITERS, seed=0, learning_rate=LR, n_train=64, report_every=5,
                  callback=theirs)
print(f"mlx-lm pipeline (train {ITERS} iterations, generate, fuse): "
      f"{time.perf_counter() - tic:.1f} s")
folder, adapters = str(work / "model"), str(work / "adapters")

yours = Losses()
model, tok = mlx_lm.load(folder)
mx.random.seed(0)
np.random.seed(0)
lora.apply_lora(model, LAYERS, rank=RANK, scale=SCALE)
ds = types.SimpleNamespace(data=str(work / "data"), hf_dataset=None, train=True, test=False,
                           mask_prompt=True)
train_set, valid_set, _ = load_dataset(ds, tok)
args = TrainingArgs(batch_size=4, iters=ITERS, val_batches=1, steps_per_report=5,
                    steps_per_eval=ITERS, steps_per_save=10**6,
                    adapter_file=str(work / "your_adapters.safetensors"))
train(model, optim.Adam(learning_rate=LR), CacheDataset(train_set), CacheDataset(valid_set),
      args=args, loss=lora.completion_loss, training_callback=yours)

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, cb in (("mlx-lm's layers and loss", theirs), ("your layers and completion_loss", yours)):
    it, loss = zip(*cb.train, strict=True)
    ax.plot(it, loss, marker="o", ms=3, label=name)
ax.set(xlabel="iteration", ylabel="training loss (completion tokens, nats)",
       title="LoRA on a tiny random Mistral, --mask-prompt")
ax.legend()
run.figure(fig, "training_loss")
run.metric("their_first_loss", theirs.train[0][1])
run.metric("their_last_loss", theirs.train[-1][1])
run.metric("your_first_loss", yours.train[0][1])
run.metric("your_last_loss", yours.train[-1][1])
print("mlx-lm:", [round(v, 3) for _, v in theirs.train[::3]])
print("yours: ", [round(v, 3) for _, v in yours.train[::3]])

# %% [markdown]
# ## 4. mlx-lm's adapter in your layers; generate; fuse
# `adapters.safetensors` holds only the `lora_a` / `lora_b` arrays, by name. Your layers have
# the same names, so the file loads into them; `fuse_model` then folds them in as
# `mlx_lm.fuse` does.

# %%
ref_model, _ = mlx_lm.load(folder, adapter_path=adapters)
mine_model, _ = mlx_lm.load(folder)
lora.apply_lora(mine_model, LAYERS, rank=RANK, scale=SCALE)
saved = mx.load(str(work / "adapters" / "adapters.safetensors"))
mine_model.load_weights(list(saved.items()), strict=False)
ids = mx.array([tok.encode("Q: Uppercase: kelima\nA: ")])
logit_gap = float(mx.abs(mine_model(ids) - ref_model(ids)).max())
for prompt_text, want in report["generated"].items():
    prompt = tok.apply_chat_template([{"role": "user", "content": prompt_text}],
                                     add_generation_prompt=True, tokenize=False)
    got = mlx_lm.generate(mine_model, tok, prompt, max_tokens=6)
    print(f"{prompt_text!r}: mlx_lm.generate {want!r}, your layers {got!r}")
fused = mx.load(str(work / "fused" / "model.safetensors"))
n_fused = lora.fuse_model(mine_model)
ours = dict(tree_flatten(mine_model.parameters()))
fuse_model_gap = max(float(mx.abs(ours[k] - fused[k]).max()) for k in fused)
adapter_kib = (work / "adapters" / "adapters.safetensors").stat().st_size / 1024
model_kib = (work / "model" / "model.safetensors").stat().st_size / 1024
print(f"logits gap {logit_gap:.2e}; fused {n_fused} layers, gap to mlx_lm.fuse "
      f"{fuse_model_gap:.2e}; adapter {adapter_kib:.0f} KiB vs model {model_kib:.0f} KiB")
run.metric("adapter_logits_gap", logit_gap)
run.metric("fuse_model_gap", fuse_model_gap)
run.metric("adapter_kib", adapter_kib)
run.metric("model_kib", model_kib)

# What --mask-prompt changes: the targets scored in one batch, with and without the mask.
batch, lengths = next(iterate_batches(CacheDataset(train_set), 4, 256))
_, masked = lora.completion_loss(ref_model, batch, lengths)
_, everything = lora.completion_loss(ref_model, batch, lengths * mx.array([0, 1]))
_, theirs_n = default_loss(ref_model, batch, lengths)
print(f"targets scored in a batch of 4: {int(masked)} with --mask-prompt, {int(everything)} "
      f"without; the installed mlx-lm's default_loss counts {int(theirs_n)} (one padding "
      "position per row)")
run.metric("scored_with_mask", int(masked))
run.metric("scored_without_mask", int(everything))

# %% [markdown]
# ## 5. The same thing on Mistral-7B (Apple silicon)
# `--model` takes a local folder in this layout or a Hugging Face id; `--data` a folder of
# train/valid(/test).jsonl (`tools.instruct_data.write_mlx_jsonl` writes one):
#
#     mlx_lm.lora --model mistralai/Mistral-7B-v0.1 --train --data data/ --mask-prompt \
#         --num-layers 4 --batch-size 1 --iters 600 --adapter-path adapters/
#     mlx_lm.generate --model mistralai/Mistral-7B-v0.1 --adapter-path adapters/ \
#         --prompt "Uppercase: kelima"
#     mlx_lm.fuse --model mistralai/Mistral-7B-v0.1 --adapter-path adapters/ \
#         --save-path fused_model/
#
# Memory. mlx-lm's LORA.md ("Memory Issues") gives one figure: on a 32 GB machine the
# command above with `--batch-size 1 --num-layers 4` "should run reasonably fast" (about 250
# tokens per second on an M1 Max, WikiSQL data). Its other levers: a quantized base (QLoRA,
# `mlx_lm.convert -q`), `--grad-checkpoint`, shorter examples, `--grad-accumulation-steps`
# instead of a bigger batch. For 16 GB and 64 GB it gives no figure. What the arithmetic of
# section 2 says: the bfloat16 weights alone are 13.5 GiB, so 16 GB leaves nothing for
# training unquantized; a 4-bit base (about 3.4 GiB of weights plus scales) is the only way
# in, with batch 1, few layers, `--grad-checkpoint` and short examples. 64 GB holds the
# bfloat16 base with room for more layers or a bigger batch, but long examples still blow
# up: ml-explore/mlx-examples issue #412 reports QLoRA of 16 layers of Mistral-7B at batch 1
# on examples of up to 7500 tokens peaking at 160 GB (about 30 GB with 4 layers), and the
# maintainer's answer was that MLX caches greedily and that splitting the examples and
# gradient checkpointing are the cure. Measure on your own machine: mlx_lm.lora prints its
# peak memory.

# %%
run.finish(
    f"Your LoRALinear matches mlx-lm's to {max(forward_gap, fuse_gap):.1e}, and mlx-lm's "
    f"trained adapter file loads into your layers by name (logits within {logit_gap:.1e}); "
    f"fuse_model matches mlx_lm.fuse to {fuse_model_gap:.1e}. With your layers and loss "
    f"inside mlx-lm's trainer the completion loss went {yours.train[0][1]:.2f} -> "
    f"{yours.train[-1][1]:.2f} in {ITERS} iterations (mlx-lm's own: "
    f"{theirs.train[0][1]:.2f} -> {theirs.train[-1][1]:.2f}). On Mistral-7B, rank 8 on every "
    f"linear layer of 16 blocks trains {counts[16] / 1e6:.1f} M of {total / 1e9:.2f} B "
    f"parameters ({100 * counts[16] / total:.2f} %): the adapter is tens of MiB, the base "
    "stays frozen and shared."
)
