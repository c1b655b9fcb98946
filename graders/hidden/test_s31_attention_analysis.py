"""Hidden graders for s31: several heads at once, other configs, rollout variants, entropy
of batched and tiny weights, dead heads and refusals."""

import pytest
import torch

from graders.helpers import assert_close
from graders.test_s31_attention_analysis import hand_forward, random_maps, ref_gpt


@pytest.mark.points(2)
def test_ablating_several_heads_in_one_and_several_layers(impl, rng):
    model = ref_gpt(seed=1)
    idx = torch.as_tensor(rng.integers(0, 29, size=(2, 7)))
    with torch.no_grad():
        for dead in ([(0, 1), (0, 2), (1, 1)], [(0, 0), (0, 1), (0, 2)], [(1, 2), (1, 2)]):
            got = impl.ablate_heads(model, idx, iter(dead))  # any iterable of pairs
            expected, _ = hand_forward(model, idx, dead)
            # float32, the same operations in another order
            assert_close(got, expected, "logits with several (layer, head) pairs zeroed at "
                         "once (some in the same layer)", rtol=1e-5, atol=1e-5)
        assert_close(model(idx)[0], hand_forward(model, idx)[0], "the model after ablating "
                     "several heads must be intact", rtol=1e-5, atol=1e-5)  # float32


@pytest.mark.points(1)
def test_maps_of_other_configs_and_a_single_token(impl, rng):
    model = ref_gpt(seed=2, n_layer=3, n_head=1, n_embd=8)
    idx = torch.as_tensor(rng.integers(0, 29, size=(1, 16)))
    got = impl.attention_maps(model, idx)
    with torch.no_grad():
        expected = hand_forward(model, idx)[1]
    assert_close(got, expected, "maps of a 3-layer, 1-head GPT on a full block", rtol=1e-5,
                 atol=1e-6)  # float32
    assert not got.requires_grad, "attention_maps must not keep a graph (torch.no_grad)"
    one = impl.attention_maps(model, idx[:, :1])
    assert one.shape == (3, 1, 1, 1, 1) and torch.allclose(one, torch.ones_like(one)), (
        "one token attends only to itself: every map is [[1]]")


@pytest.mark.points(2)
def test_rollout_without_residual_one_layer_and_identity_maps(impl, rng):
    maps = random_maps(rng, 2, 3, 2, 5, causal=False)
    got = impl.attention_rollout(maps, residual=False)
    assert_close(got, maps[1].mean(1) @ maps[0].mean(1), "rollout with residual=False: the "
                 "product of the head means, last layer on the left", rtol=1e-12,
                 atol=1e-12)  # float64
    one = random_maps(rng, 1, 2, 3, 4)
    assert_close(impl.attention_rollout(one), 0.5 * one[0].mean(1) + 0.5 * torch.eye(
        4, dtype=torch.float64), "rollout of one layer: (mean over heads + I) / 2",
        rtol=1e-12, atol=1e-12)  # float64
    eye = torch.eye(4, dtype=torch.float64).expand(3, 2, 2, 4, 4)
    assert_close(impl.attention_rollout(eye), torch.eye(4).expand(2, 4, 4), "rollout of "
                 "maps that attend to themselves only is the identity", rtol=1e-12,
                 atol=1e-12)  # float64


@pytest.mark.points(1)
def test_entropy_keeps_leading_axes_and_tiny_weights_stay_finite(impl, rng):
    maps = random_maps(rng, 2, 2, 3, 5)
    got = impl.attention_entropy(maps)
    p = maps.clamp_min(1e-300)
    expected = -(maps * p.log()).sum(-1)
    assert_close(got, expected, "entropy of (L, B, H, T, T) maps, one value per row",
                 rtol=1e-10, atol=1e-12)  # float64
    tiny = torch.tensor([[1.0 - 2e-30, 1e-30, 1e-30]], dtype=torch.float64)
    got = impl.attention_entropy(tiny)
    assert torch.isfinite(got).all() and 0 <= float(got[0]) < 1e-27, (
        f"entropy of a row with weights of 1e-30 must be tiny and finite, got {got}")


@pytest.mark.points(1)
def test_a_dead_head_has_zero_importance_and_the_model_survives(impl, rng):
    model = ref_gpt(seed=3)
    with torch.no_grad():
        model.transformer.h[0].attn.c_proj.weight[:, 4:8] = 0  # head 1 of layer 0 writes nothing
    idx = torch.as_tensor(rng.integers(0, 29, size=(2, 6)))
    targets = torch.as_tensor(rng.integers(0, 29, size=(2, 6)))
    before = model(idx)[0].detach()
    got = impl.head_importance(model, idx, targets)
    assert abs(float(got[0, 1])) < 1e-6, (
        f"a head whose c_proj columns are 0 changes nothing when ablated: importance 0 "
        f"expected, got {float(got[0, 1]):.3g}")
    assert float(got.abs().max()) > 1e-3, "the other heads should matter"
    assert_close(model(idx)[0], before, "model(idx) after head_importance", rtol=0, atol=0)


@pytest.mark.points(1)
def test_bad_inputs_are_refused(impl, rng):
    model = ref_gpt()
    idx = torch.as_tensor(rng.integers(0, 29, size=(1, 4)))
    with pytest.raises(ValueError):
        impl.ablate_heads(model, idx, [(2, 0)])
    with pytest.raises(ValueError):
        impl.ablate_heads(model, idx, [(0, 3)])
    with pytest.raises(ValueError):
        impl.attention_maps(model, idx[0])
    with pytest.raises(ValueError):
        impl.attention_rollout(torch.ones(2, 3, 3, 3))
    assert impl.attention_maps(model, idx).shape == (2, 1, 3, 4, 4)
