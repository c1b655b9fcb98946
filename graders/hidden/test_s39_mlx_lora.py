"""Hidden graders for s39 LoRA in MLX: the real mlx-lm path on a tiny random Mistral built
offline (an adapter folder as mlx_lm.lora leaves it, loaded by mlx_lm.load --adapter-path and
by your layers, mlx_lm.generate, mlx-lm's --mask-prompt batches of the course's instruction
data, mlx_lm.fuse against your fuse_model); training with mlx_lm.lora runs in the lab; dropout on
the LoRA path only; dtypes; custom block structures; truncated rows in the loss.
"""

import json
import sys
import types

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core", reason="mlx is not installed: s39 needs the mlx extra")
pytest.importorskip("mlx_lm", reason="mlx is not installed (mlx-lm is missing): s39 needs it")

import mlx.nn as nn  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402


def npy(a):
    return np.array(a.astype(mx.float32))


def write_mlx_lm_adapter(folder, out, seed):
    """An adapter folder exactly as `mlx_lm.lora --train` leaves it (adapter_config.json,
    adapters.safetensors), made with mlx-lm's own layers and a random lora_b (training itself
    runs in the lab: mlx-lm's compiled training loop stalls under the grading sandbox)."""
    import mlx_lm
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model, _ = mlx_lm.load(folder)
    model.freeze()
    params = {"rank": 8, "scale": 20.0, "dropout": 0.0}
    linear_to_lora_layers(model, 2, params)
    mx.random.seed(seed)
    for _, m in model.named_modules():
        if hasattr(m, "lora_b"):
            m.lora_b = 0.02 * mx.random.normal(m.lora_b.shape)
    out.mkdir()
    (out / "adapter_config.json").write_text(json.dumps(
        {"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": params}))
    mx.save_safetensors(str(out / "adapters.safetensors"),
                        dict(tree_flatten(model.trainable_parameters())))


@pytest.mark.points(4)
def test_an_mlx_lm_adapter_runs_in_your_layers_generates_and_fuses_alike(impl, tmp_path,
                                                                         monkeypatch):
    import mlx_lm
    from mlx_lm import fuse as mlx_fuse
    from mlx_lm.tuner.datasets import CacheDataset, load_dataset
    from mlx_lm.tuner.trainer import iterate_batches

    from tools.instruct_data import make_examples, write_mlx_jsonl
    from tools.tiny_mistral import build_tiny_mistral

    folder, adapters = str(tmp_path / "model"), tmp_path / "adapters"
    build_tiny_mistral(folder, seed=2)
    mine, tok = mlx_lm.load(folder)
    names = impl.apply_lora(mine, 2, rank=8, scale=20.0)
    assert len(names) == 14, f"2 Mistral blocks hold 14 nn.Linear layers, you wrapped {len(names)}"
    write_mlx_lm_adapter(folder, adapters, seed=3)
    saved = mx.load(str(adapters / "adapters.safetensors"))
    ref, _ = mlx_lm.load(folder, adapter_path=str(adapters))  # what --adapter-path loads
    assert sorted(impl.adapter_weights(mine)) == sorted(saved), (
        "your adapter names differ from the ones mlx-lm saves in adapters.safetensors (the "
        "layer's arrays must be called lora_a / lora_b, every nn.Linear of each block wrapped)")
    mine.load_weights(list(saved.items()), strict=False)
    ids = mx.array([tok.encode("Q: Uppercase: kelima\nA: ")])
    assert np.allclose(npy(mine(ids)), npy(ref(ids)), atol=1e-4), (
        "with mlx-lm's adapter file loaded, your LoRA model's logits differ from mlx-lm's "
        "(look at __call__: layout and scale)")
    for text in ("First letter of sototri:", "Uppercase: kelima"):
        prompt = tok.apply_chat_template([{"role": "user", "content": text}],
                                         add_generation_prompt=True, tokenize=False)
        want = mlx_lm.generate(ref, tok, prompt, max_tokens=6)
        got = mlx_lm.generate(mine, tok, prompt, max_tokens=6)
        assert got == want, (
            f"greedy generation with your layers gave {got!r}, mlx_lm.generate --adapter-path "
            f"gave {want!r}")

    write_mlx_jsonl(tmp_path / "data", make_examples(8, seed=0), make_examples(4, seed=1))
    ds_args = types.SimpleNamespace(data=str(tmp_path / "data"), hf_dataset=None, train=True,
                                    test=False, mask_prompt=True)
    batch, lengths = next(iterate_batches(CacheDataset(load_dataset(ds_args, tok)[0]), 4, 256))
    loss, ntoks = impl.completion_loss(ref, batch, lengths)
    want_n = int((lengths[:, 1] - lengths[:, 0]).sum())
    assert int(ntoks) == want_n, (
        f"a --mask-prompt batch scores each row's completion and end token, {want_n} targets "
        f"in all here; got {int(ntoks)}")
    assert 0 < float(loss) < 10, f"a real batch's masked loss is a few nats, got {float(loss)}"

    monkeypatch.setattr(sys, "argv", ["mlx_lm.fuse", "--model", folder, "--adapter-path",
                                      str(adapters), "--save-path", str(tmp_path / "fused")])
    mlx_fuse.main()  # what `mlx_lm.fuse --model ... --adapter-path ... --save-path ...` runs
    fused = mx.load(str(tmp_path / "fused" / "model.safetensors"))
    assert impl.fuse_model(mine) == 14, "2 Mistral blocks have 14 nn.Linear layers to fuse"
    ours = dict(tree_flatten(mine.parameters()))
    assert sorted(ours) == sorted(fused), "after fuse_model the names must be a plain model's"
    worst = max(float(mx.abs(ours[k] - fused[k]).max()) for k in fused)
    assert worst < 1e-5, f"your fused weights differ from mlx_lm.fuse's by up to {worst:.3g}"


@pytest.mark.points(2)
def test_dropout_hits_only_the_lora_input_and_only_in_training(impl):
    mx.random.seed(7)
    base = nn.Linear(64, 64)
    layer = impl.LoRALinear.from_base(base, r=64, dropout=0.5, scale=1.0)
    layer.lora_a, layer.lora_b = mx.eye(64), mx.eye(64)  # the LoRA term is then dropout(x)
    x = mx.random.normal((8, 64)) + 3.0
    layer.eval()
    assert np.allclose(npy(layer(x) - base(x)), npy(x), atol=1e-5), (
        "in eval mode dropout must do nothing: the LoRA term should be the input itself here")
    layer.train()
    term = npy(layer(x) - base(x))
    kept = np.abs(term) > 1e-6
    assert 0.3 < kept.mean() < 0.7, (
        f"with dropout 0.5 in training mode about half of the LoRA path's inputs are zeroed, "
        f"kept {kept.mean():.2f} (apply self.dropout to x on the LoRA path)")
    assert np.allclose(term[kept], 2 * npy(x)[kept], atol=1e-4), (
        "kept LoRA inputs must be scaled by 1 / (1 - p), the base output untouched")
    zero_b = impl.LoRALinear.from_base(base, r=4, dropout=0.5)
    zero_b.train()
    assert np.allclose(npy(zero_b(x)), npy(base(x)), atol=1e-5), (
        "dropout belongs on the LoRA path's input only: the base output must not be dropped")


@pytest.mark.points(1)
def test_half_precision_layers_keep_their_dtype(impl):
    mx.random.seed(8)
    base = nn.Linear(8, 6)
    base.set_dtype(mx.float16)
    layer = impl.LoRALinear.from_base(base, r=2, scale=3.0)
    layer.lora_b = mx.random.normal((2, 6))
    x = mx.random.normal((3, 8)).astype(mx.float16)
    assert layer(x).dtype == mx.float16, (
        f"a float16 input through a float16 layer must come out float16, got {layer(x).dtype}: "
        "cast the LoRA term to x.dtype")
    assert layer.delta_weight().dtype == mx.float16, "delta_weight must be in the weight's dtype"
    fused = layer.fuse()
    assert fused.weight.dtype == mx.float16, "the fused weight must keep the base's dtype"
    # float16 rounding of values around 1
    assert np.allclose(npy(fused(x)), npy(layer(x)), atol=2e-2), "fused and LoRA outputs differ"


class Block(nn.Module):
    def __init__(self, seed):
        super().__init__()
        mx.random.seed(seed)
        self.inner = {"proj": nn.Linear(5, 5), "gate": nn.Linear(5, 5, bias=False)}
        self.norm = nn.LayerNorm(5)
        self.out = nn.Linear(5, 3)

    def __call__(self, x):
        return self.out(self.norm(self.inner["proj"](x) * self.inner["gate"](x)))


class Stack(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.emb = nn.Embedding(7, 5)
        self.layers = [Block(i) for i in range(n)]


@pytest.mark.points(2)
def test_nested_blocks_wrap_only_linear_layers_of_the_last_blocks(impl):
    model = Stack(3)
    names = impl.apply_lora(model, 2, rank=2, scale=1.5)
    want = [f"layers.{i}.{k}" for i in (1, 2) for k in ("inner.gate", "inner.proj", "out")]
    assert names == want, (
        f"expected the nn.Linear layers of the last 2 blocks (nested ones too, not the norm), "
        f"got {names}")
    assert impl.count_trainable(model) == 2 * (2 * (5 + 5) * 2 + 2 * (5 + 3)), (
        "expected r * (in + out) trainable scalars per wrapped layer and nothing else")
    model = Stack(3)
    assert impl.apply_lora(model, 5, rank=1, keys={"inner.gate"}) == [
        f"layers.{i}.inner.gate" for i in range(3)], (
        "num_layers larger than the number of blocks means every block; keys are block-relative")
    weights = impl.adapter_weights(model)
    assert sorted(weights) == sorted(f"layers.{i}.inner.gate.{p}" for i in range(3)
                                     for p in ("lora_a", "lora_b")), (
        f"adapter_weights must hold each wrapped layer's lora_a and lora_b, got {sorted(weights)}")
    model = Stack(2)
    impl.apply_lora(model, -1, rank=2, dropout=0.5, keys={"out"})
    layer = model.layers[1].out
    layer.lora_b = mx.ones(layer.lora_b.shape)
    x = mx.random.normal((64, 5)) + 2.0
    layer.train()
    mx.random.seed(0)
    first = npy(layer(x))
    assert not np.allclose(first, npy(layer(x))), (
        "apply_lora(..., dropout=0.5) must give each LoRALinear that dropout: in training mode "
        "two calls should differ")
    layer.eval()
    assert np.allclose(npy(layer(x)), npy(layer(x))), "in eval mode the output is deterministic"


@pytest.mark.points(1)
def test_rows_without_padding_and_long_prompts_in_the_loss(impl, rng):
    table = rng.normal(size=(6, 6)).astype(np.float32)

    class Table(nn.Module):
        def __init__(self):
            super().__init__()
            self.t = mx.array(table)

        def __call__(self, inputs):
            return self.t[inputs]

    batch = np.array([[1, 2, 3, 4], [5, 4, 3, 0]])
    loss, ntoks = impl.completion_loss(Table(), mx.array(batch), mx.array([[3, 4], [1, 3]]))
    logp = table - np.log(np.exp(table).sum(-1, keepdims=True))
    want = -(logp[3, 4] + logp[5, 4] + logp[4, 3]) / 3
    assert int(ntoks) == 3 and abs(float(loss) - want) < 1e-5, (
        f"a full row (length = its width) scores up to its last token and a row's padding never: "
        f"expected 3 targets and loss {want:.5f}, got {int(ntoks)} and {float(loss):.5f}")
