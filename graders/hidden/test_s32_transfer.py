"""Hidden graders for s32: frozen probes, mean pooling, small sets, the curve's other end."""

import copy

import pytest
import torch

from graders.helpers import assert_close
from graders.test_s32_transfer import (
    GPT,
    G,
    GPTConfig,
    T,
    V,
    _bodies,
    _reference_fine_tune,
    pretrained_body,
    task,
)


@pytest.mark.points(2)
def test_a_frozen_pretrained_body_is_a_strong_probe_and_the_random_arm_catches_up(impl):
    x, y = task(128, seed=8)
    xt, yt = task(256, seed=9)
    frozen = impl.transfer_experiment(_bodies(), x, y, xt, yt, sizes=[8], n_classes=G,
                                      steps=40, lr=2e-2, batch_size=16, freeze_body=True, seed=1)
    # measured on the reference: 1.00 against 0.39 with the body frozen (a linear probe)
    assert frozen["pretrained"][0] >= frozen["random"][0] + 0.3, (
        f"with the body frozen, 8 labels: pretrained {frozen['pretrained'][0]:.2f}, random "
        f"{frozen['random'][0]:.2f}; the pretrained features alone should separate the classes")
    full = impl.transfer_experiment({"random": _bodies()["random"]}, x, y, xt, yt, sizes=[128],
                                    n_classes=G, steps=40, lr=2e-2, batch_size=16, seed=1)
    # with all 128 labels and the whole body trained, the random arm learns the task too
    assert full["random"][0] >= 0.9, (
        f"fine-tuned on 128 labelled sequences, the random body reached only "
        f"{full['random'][0]:.2f}: with enough labels it should learn the task (>= 0.9)")


@pytest.mark.points(2)
def test_fine_tune_with_a_large_batch_no_steps_and_mean_pooling(impl):
    x, y = task(5, seed=10)  # fewer rows than batch_size: each step uses all of them
    model = impl.GPTClassifier(GPT(GPTConfig(), seed=3), G, pool="mean", head_seed=4)
    ref = copy.deepcopy(model)
    hist = impl.fine_tune(model, x, y, steps=3, lr=1e-2, batch_size=64, seed=2)
    expected = _reference_fine_tune(ref, x, y, 3, 1e-2, 64, False, 2)
    assert_close(torch.tensor(hist), torch.tensor(expected), "loss history with batch_size > "
                 "len(x) (randperm(len(x))[:batch_size] is every row)", rtol=1e-5, atol=1e-6)
    before = copy.deepcopy(model.state_dict())
    assert impl.fine_tune(model, x, y, steps=0) == [], "steps=0: no update, an empty history"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), (
        "steps=0 must leave the model unchanged")


@pytest.mark.points(2)
def test_the_seed_changes_the_order_and_the_head_but_repeats_exactly(impl):
    x, y = task(40, seed=11)
    xt, yt = task(40, seed=12)
    body = GPT(GPTConfig(), seed=5)
    kw = {"sizes": [10, 30], "n_classes": G, "steps": 8, "lr": 1e-2, "batch_size": 8}
    one = impl.transfer_experiment({"a": lambda: copy.deepcopy(body)}, x, y, xt, yt, seed=1, **kw)
    again = impl.transfer_experiment({"a": lambda: copy.deepcopy(body)}, x, y, xt, yt, seed=1,
                                     **kw)
    assert one == again, "the same seed must repeat the experiment exactly"
    losses = []
    for seed in (1, 2):
        model = impl.GPTClassifier(copy.deepcopy(body), G, head_seed=seed)
        losses.append(impl.fine_tune(model, x, y, steps=4, lr=1e-2, batch_size=8, seed=seed))
    assert losses[0] != losses[1], "another seed must give other batches (and another head)"


@pytest.mark.points(1)
def test_bad_arguments_are_refused(impl):
    body = pretrained_body()
    with pytest.raises(ValueError):
        impl.GPTClassifier(body, G, pool="first")
    x, y = task(6, seed=13)
    with pytest.raises(ValueError):
        impl.transfer_experiment({"a": lambda: copy.deepcopy(body)}, x, y, x, y, sizes=[7],
                                 n_classes=G)
    model = impl.GPTClassifier(copy.deepcopy(body), G)
    assert model(torch.zeros(2, T, dtype=torch.long)).shape == (2, G)
    assert model.features(torch.randint(0, V, (3, 1))).shape == (3, 16), "one token works too"
