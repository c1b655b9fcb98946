"""Public graders for s39 LoRA in MLX: your LoRALinear has mlx-lm's layout and computes what
mlx_lm.tuner.lora.LoRALinear computes with the same weights (forward and fuse); apply_lora
wraps the same layers as mlx-lm's linear_to_lora_layers on a random llama model built the way
mlx-lm's own tests build one, with the same trainable count and adapter names; fuse_model keeps
the outputs; completion_loss scores only the completion's tokens.

The whole step needs MLX and mlx-lm (the mlx extra); without them it is skipped.
"""

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core", reason="mlx is not installed: s39 needs the mlx extra")
pytest.importorskip("mlx_lm", reason="mlx is not installed (mlx-lm is missing): s39 needs it")

import mlx.nn as nn  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402
from mlx_lm.models import llama  # noqa: E402
from mlx_lm.tuner import lora as mlx_lora  # noqa: E402
from mlx_lm.tuner.trainer import default_loss  # noqa: E402
from mlx_lm.tuner.utils import linear_to_lora_layers  # noqa: E402

ARGS = dict(model_type="llama", hidden_size=32, num_hidden_layers=3, intermediate_size=48,
            num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=40,
            tie_word_embeddings=False)
TOKENS = [[1, 5, 7, 2, 9, 3, 11, 4]]


def npy(a):
    return np.array(a.astype(mx.float32))


def tiny_llama(seed=0):
    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs(**ARGS))
    mx.eval(model.parameters())
    return model


def trainable(model):
    return {name: v for name, v in tree_flatten(model.trainable_parameters())}


def randomise_b(model, seed=1):
    """Give every LoRA layer a non-zero lora_b, so the adapter changes the model."""
    mx.random.seed(seed)
    for _, m in model.named_modules():
        if hasattr(m, "lora_b"):
            m.lora_b = 0.05 * mx.random.normal(m.lora_b.shape)


@pytest.mark.points(2)
def test_new_layer_has_mlx_lm_layout_and_starts_as_the_base(impl):
    mx.random.seed(3)
    base = nn.Linear(48, 5, bias=True)
    layer = impl.LoRALinear.from_base(base, r=3, scale=2.5)
    assert layer.lora_a.shape == (48, 3) and layer.lora_b.shape == (3, 5), (
        f"expected lora_a (in, r) = (48, 3) and lora_b (r, out) = (3, 5), got "
        f"{layer.lora_a.shape} and {layer.lora_b.shape}: mlx-lm's layout is the transpose of "
        "s36's (look at the shapes in __init__)")
    assert np.all(npy(layer.lora_b) == 0), "lora_b must start at zeros (look at __init__)"
    a, bound = npy(layer.lora_a), 1 / np.sqrt(48)
    assert np.abs(a).max() <= bound + 1e-7, (
        f"lora_a must be uniform in [-1/sqrt(in), 1/sqrt(in)] = +-{bound:.4f}, got values up to "
        f"{np.abs(a).max():.4f} (look at the bound in __init__)")
    # 144 uniform draws: their std is bound / sqrt(3) within ~15 %
    assert 0.75 * bound / np.sqrt(3) < a.std() < 1.25 * bound / np.sqrt(3), (
        f"lora_a's spread {a.std():.4f} is not that of U(-{bound:.3f}, {bound:.3f}) "
        f"({bound / np.sqrt(3):.4f}): draw it with mx.random.uniform(low, high, shape)")
    assert layer.scale == 2.5 and layer.linear is base, (
        "from_base must keep the given scale and the given linear as self.linear")
    assert sorted(trainable(layer)) == ["lora_a", "lora_b"], (
        f"only lora_a and lora_b should be trainable, got {sorted(trainable(layer))}: the base "
        "layer is frozen")
    x = mx.random.normal((4, 48))
    assert np.allclose(npy(layer(x)), npy(base(x)), atol=1e-6), (
        "with lora_b = 0 the wrapped layer must compute exactly what the base computes")
    plain = impl.LoRALinear(7, 6, r=2, scale=1.0, bias=True)
    assert plain.linear.weight.shape == (6, 7) and "bias" in plain.linear, (
        "LoRALinear(input_dims, output_dims, bias=True) must hold an nn.Linear(in, out, bias)")
    assert plain.lora_a.shape == (7, 2) and plain.lora_b.shape == (2, 6), (
        "LoRALinear(7, 6, r=2) must have lora_a (7, 2) and lora_b (2, 6)")


@pytest.mark.points(3)
def test_forward_equals_mlx_lm_lora_linear_with_the_same_weights(impl):
    mx.random.seed(4)
    base = nn.Linear(6, 5, bias=True)
    mine = impl.LoRALinear.from_base(base, r=3, scale=2.5)
    mine.lora_b = mx.random.normal((3, 5))
    ref = mlx_lora.LoRALinear.from_base(base, r=3, scale=2.5)
    ref.lora_a, ref.lora_b = mine.lora_a, mine.lora_b
    W, b, A, B = (npy(t) for t in (base.weight, base.bias, mine.lora_a, mine.lora_b))
    for shape in ((6,), (4, 6), (2, 3, 6)):
        x = mx.random.normal(shape)
        want = npy(x) @ W.T + b + 2.5 * (npy(x) @ A) @ B
        got = npy(mine(x))
        assert got.shape == want.shape, (
            f"input {shape}: expected output {want.shape}, got {got.shape}")
        # float32 matmuls of width 6: agree to ~1e-6 relative
        assert np.allclose(got, want, rtol=1e-5, atol=1e-5), (
            f"input {shape}: expected linear(x) + scale * (x @ lora_a) @ lora_b, off by "
            f"{np.abs(got - want).max():.3g} (look at __call__: scale is used as given)")
        assert np.allclose(got, npy(ref(x)), rtol=1e-5, atol=1e-5), (
            f"input {shape}: differs from mlx-lm's LoRALinear with the same weights")


@pytest.mark.points(3)
def test_delta_and_fuse_equal_mlx_lm_fuse(impl):
    mx.random.seed(5)
    for bias in (True, False):
        base = nn.Linear(6, 4, bias=bias)
        mine = impl.LoRALinear.from_base(base, r=2, scale=0.75)
        mine.lora_b = mx.random.normal((2, 4))
        ref = mlx_lora.LoRALinear.from_base(base, r=2, scale=0.75)
        ref.lora_a, ref.lora_b = mine.lora_a, mine.lora_b
        want = 0.75 * npy(mine.lora_b).T @ npy(mine.lora_a).T
        delta = npy(mine.delta_weight())
        assert delta.shape == (4, 6), (
            f"delta_weight must have the weight's shape (out, in) = (4, 6), got {delta.shape}: "
            "lora_a @ lora_b is (in, out), so transpose")
        assert np.allclose(delta, want, atol=1e-6), (
            "delta_weight must be scale * lora_b^T @ lora_a^T, off by "
            f"{np.abs(delta - want).max():.3g}")
        w_before = npy(base.weight)
        fused = mine.fuse()
        assert isinstance(fused, nn.Linear), (
            f"fuse must return an nn.Linear, got {type(fused).__name__}")
        assert np.allclose(npy(fused.weight), npy(ref.fuse().weight), atol=1e-6), (
            "the fused weight differs from mlx-lm's fuse(): expected "
            "W + scale * lora_b^T @ lora_a^T")
        assert ("bias" in fused) == bias, (
            f"bias={bias}: fuse must keep the bias exactly when the base has one")
        if bias:
            assert np.array_equal(npy(fused.bias), npy(base.bias)), "fuse must copy the base's bias"
        assert np.array_equal(npy(base.weight), w_before), (
            "fuse must not change the base layer's weight")
        x = mx.random.normal((3, 6))
        assert np.allclose(npy(fused(x)), npy(mine(x)), atol=1e-5), (
            "the fused layer must compute what the LoRA layer computes")


@pytest.mark.points(3)
def test_apply_lora_wraps_what_mlx_lm_wraps_and_counts_the_same(impl):
    for num_layers, keys, rank, scale in ((2, None, 4, 10.0),
                                          (-1, {"self_attn.q_proj", "self_attn.v_proj"}, 2, 3.0)):
        ref = tiny_llama()
        ref.freeze()
        config = {"rank": rank, "scale": scale, "dropout": 0.0}
        linear_to_lora_layers(ref, num_layers, config if keys is None else {**config, "keys": keys})
        want = sorted(k for k, m in ref.named_modules() if isinstance(m, mlx_lora.LoRALinear))
        model = tiny_llama()
        x = mx.array(TOKENS)
        before = npy(model(x))
        names = impl.apply_lora(model, num_layers, rank=rank, scale=scale, keys=keys)
        assert names == want, (
            f"num_layers={num_layers}, keys={keys}: expected the wrapped names {want}, got {names}")
        got_count = impl.count_trainable(model)
        ref_count = sum(v.size for v in trainable(ref).values())
        assert got_count == ref_count, (
            f"num_layers={num_layers}, keys={keys}, rank={rank}: mlx-lm leaves {ref_count} "
            f"trainable scalars, yours {got_count} (freeze the whole model first; "
            "r * (in + out) per layer)")
        for name, m in model.named_modules():
            if name in names:
                ok = isinstance(m, impl.LoRALinear) and m.lora_a.shape[1] == rank
                assert ok and m.scale == scale, (
                    f"{name} must be your LoRALinear with rank {rank} and scale {scale}")
        assert np.allclose(npy(model(x)), before, atol=1e-5), (
            "right after apply_lora the model must compute what it computed before (lora_b = 0)")


@pytest.mark.points(2)
def test_adapter_weights_are_mlx_lm_adapter_names_and_round_trip(impl):
    ref = tiny_llama()
    ref.freeze()
    linear_to_lora_layers(ref, 2, {"rank": 4, "scale": 20.0, "dropout": 0.0})
    model = tiny_llama()
    impl.apply_lora(model, 2, rank=4)
    randomise_b(model)
    weights = impl.adapter_weights(model)
    assert sorted(weights) == sorted(trainable(ref)), (
        "adapter_weights must hold the names mlx_lm.lora writes to adapters.safetensors; expected "
        f"{sorted(trainable(ref))[:3]}..., got {sorted(weights)[:3]}...")
    assert all(k.endswith(("lora_a", "lora_b")) for k in weights), (
        "only lora_a / lora_b arrays belong in an adapter")
    x = mx.array(TOKENS)
    fresh = tiny_llama()
    impl.apply_lora(fresh, 2, rank=4)
    fresh.load_weights(list(weights.items()), strict=False)
    assert np.allclose(npy(fresh(x)), npy(model(x)), atol=1e-5), (
        "loading adapter_weights into a freshly wrapped base must give the tuned model")
    ref.load_weights(list(weights.items()), strict=False)
    assert np.allclose(npy(ref(x)), npy(model(x)), atol=1e-5), (
        "mlx-lm's LoRA model with your adapter arrays must compute what your model computes")


@pytest.mark.points(2)
def test_fuse_model_keeps_the_outputs_and_removes_every_lora_layer(impl):
    model = tiny_llama()
    names = impl.apply_lora(model, -1, rank=3, scale=4.0, keys={"self_attn.o_proj", "mlp.up_proj"})
    randomise_b(model)
    x = mx.array(TOKENS)
    want = npy(model(x))
    n = impl.fuse_model(model)
    assert n == len(names) == 6, f"expected fuse_model to fuse and return 6 layers, got {n}"
    left = [k for k, m in model.named_modules() if isinstance(m, impl.LoRALinear)]
    assert not left, f"after fuse_model no LoRALinear should remain, found {left[:2]}"
    assert np.allclose(npy(model(x)), want, atol=1e-4), (
        "the fused model must compute what the LoRA model computed (look at fuse)")
    assert impl.fuse_model(model) == 0, "fuse_model on a model without LoRA layers must return 0"


class TableLM(nn.Module):
    """logits[b, t] = table[inputs[b, t]]: every probability is known."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def __call__(self, inputs):
        return self.table[inputs]


def brute_loss(table, batch, lengths):
    logp = table - np.log(np.exp(table).sum(-1, keepdims=True))
    total, n = 0.0, 0
    for row, (offset, length) in zip(batch, lengths, strict=True):
        for j in range(max(offset, 1), length):  # token j of the row, predicted from token j - 1
            total -= logp[row[j - 1], row[j]]
            n += 1
    return total / n, n


@pytest.mark.points(3)
def test_completion_loss_scores_only_the_completion_tokens(impl, rng):
    table = rng.normal(size=(9, 9)).astype(np.float32)
    model = TableLM(mx.array(table))
    batch = np.array([[1, 2, 3, 4, 5, 0, 0], [6, 7, 8, 2, 3, 1, 4], [2, 2, 5, 0, 0, 0, 0]])
    for lengths in ([[2, 5], [3, 7], [0, 3]], [[0, 5], [0, 7], [0, 3]], [[4, 5], [6, 7], [2, 3]]):
        loss, ntoks = impl.completion_loss(model, mx.array(batch), mx.array(lengths))
        want, n = brute_loss(table, batch, lengths)
        assert int(ntoks) == n, (
            f"(offset, length) rows {lengths}: expected {n} scored targets, got {int(ntoks)}: a "
            "target column i is token i + 1 and counts when offset <= i + 1 < length")
        assert loss.dtype == mx.float32 and loss.size == 1, "the loss must be a float32 scalar"
        # float32 log-softmax over 9 classes
        assert abs(float(loss) - want) < 1e-5, (
            f"rows {lengths}: expected the mean cross-entropy {want:.6f} over the completion "
            f"tokens, got {float(loss):.6f}")
        ref, ref_n = default_loss(model, mx.array(batch), mx.array(lengths) - mx.array([0, 1]))
        assert abs(float(loss) - float(ref)) < 1e-5 and int(ref_n) == int(ntoks), (
            "differs from mlx-lm's default_loss once its extra padding target is removed")


@pytest.mark.points(1)
def test_bad_arguments_are_refused_and_leave_the_model_alone(impl):
    for kwargs in ({"r": 0}, {"dropout": 1.0}, {"dropout": -0.1}):
        with pytest.raises(ValueError):
            impl.LoRALinear(4, 3, **kwargs)
    for num_layers, keys in ((0, None), (-2, None), (2, {"self_attn.nothing"}), (1, {"q_proj"})):
        model = tiny_llama()
        n = impl.count_trainable(model)
        with pytest.raises(ValueError):
            impl.apply_lora(model, num_layers, keys=keys)
        assert impl.count_trainable(model) == n, (
            f"num_layers={num_layers}, keys={keys}: a refused apply_lora must not freeze anything "
            "(check before you freeze)")
