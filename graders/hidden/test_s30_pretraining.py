"""Hidden graders for s30: AdamW's steps, lr and grads inside train_step, bf16 autocast, eval
independence, the loop's records, the checkpoint's format, edge cases of the schedule."""

import copy
import math

import pytest
import torch

from graders.helpers import assert_close
from graders.test_s30_pretraining import RefConfig, fixture_tokens, lr_formula, make_cfg, ref_model


@pytest.mark.points(2)
def test_adamw_updates_equal_torch_adamw_with_the_same_groups(impl):
    ours, ref = ref_model(5), ref_model(5)
    cfg = make_cfg(impl, lr=0.02, weight_decay=0.5, beta1=0.85, beta2=0.9)
    opt = impl.configure_optimizer(ours, cfg)
    ref_opt = torch.optim.AdamW(
        [{"params": [p for p in ref.parameters() if p.dim() >= 2], "weight_decay": 0.5},
         {"params": [p for p in ref.parameters() if p.dim() < 2], "weight_decay": 0.0}],
        lr=0.02, betas=(0.85, 0.9))
    data = fixture_tokens()
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        x, y = impl.get_batch(data, 3, 8, g)
        for m, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            m(x, y)[1].backward()
            o.step()
    for (name, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
        # identical arithmetic: float32 rounding only
        assert_close(p, q, f"{name} after 4 AdamW steps vs torch.optim.AdamW with decay on the "
                     "matrices only", rtol=1e-6, atol=1e-7)


@pytest.mark.points(2)
def test_train_step_sets_lr_clears_stale_grads_and_reports_the_norm_before_clipping(impl):
    model = ref_model(6)
    opt = torch.optim.SGD([{"params": list(model.parameters())[:3]},
                           {"params": list(model.parameters())[3:]}], lr=9.0)
    data = fixture_tokens()
    x, y = impl.get_batch(data, 4, 8, torch.Generator().manual_seed(2))
    for p in model.parameters():
        p.grad = torch.full_like(p, 100.0)  # stale gradients from somewhere else
    ref = ref_model(6)
    ref(x, y)[1].backward()
    want = torch.sqrt(sum((p.grad ** 2).sum() for p in ref.parameters()))
    out = impl.train_step(model, opt, [(x, y)], lr=0.01, grad_clip=1e-3)
    assert all(g["lr"] == 0.01 for g in opt.param_groups), (
        "train_step sets the given lr in every param group before stepping")
    assert abs(out["grad_norm"] - float(want)) < 1e-4 * float(want), (
        f"grad_norm must be the norm of this batch's gradients before clipping "
        f"({float(want):.5f}); got {out['grad_norm']:.5f}: clear the gradients first")
    with torch.no_grad():
        for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
            expected = q - 0.01 * q.grad * min(1.0, 1e-3 / (float(want) + 1e-6))
            assert_close(p, expected, f"{name} after one clipped SGD update", rtol=1e-5,
                         atol=1e-7)  # float32


@pytest.mark.points(2)
def test_bf16_autocast_is_used_when_asked_and_only_then(impl):
    seen = []
    model = ref_model(7)
    model.lm_head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    data = fixture_tokens()
    x, y = impl.get_batch(data, 2, 8, torch.Generator().manual_seed(0))
    impl.train_step(model, torch.optim.SGD(model.parameters()), [(x, y)], lr=0.1, grad_clip=1.0,
                    dtype=torch.bfloat16)
    impl.evaluate(model, [(x, y)], dtype=torch.bfloat16)
    impl.train_step(model, torch.optim.SGD(model.parameters()), [(x, y)], lr=0.1, grad_clip=1.0)
    impl.evaluate(model, [(x, y)])
    assert seen == [torch.bfloat16, torch.bfloat16, torch.float32, torch.float32], (
        "with dtype=torch.bfloat16 the forward passes of train_step and evaluate run under "
        f"torch.autocast (the logits come out bfloat16), otherwise float32; saw {seen}")
    assert all(p.dtype == torch.float32 for p in model.parameters()), "weights stay float32"
    cfg = make_cfg(impl, dtype="bfloat16", max_steps=1, eval_every=1)
    seen.clear()
    impl.Trainer(model, data[:2000], data[2000:], cfg).fit()
    assert seen and set(seen) == {torch.bfloat16}, (
        f"TrainConfig(dtype='bfloat16') must reach train_step and evaluate; saw {set(seen)}")


@pytest.mark.points(2)
def test_evaluate_of_the_loop_runs_in_eval_mode_without_a_graph(impl):
    model = ref_model(8)
    modes, grads = [], []

    def hook(m, i, o):
        modes.append(m.training)
        grads.append(o.requires_grad)

    model.lm_head.register_forward_hook(hook)
    data = fixture_tokens()
    model.eval()
    impl.evaluate(model, [impl.get_batch(data, 2, 8, torch.Generator().manual_seed(0))])
    assert modes == [False] and grads == [False], (
        f"evaluate: eval() and no_grad (training flags {modes}, requires_grad {grads})")
    assert not model.training, "a model in eval mode stays in eval mode after evaluate"


@pytest.mark.points(2)
def test_estimate_loss_reuses_its_batches_and_leaves_the_sampler_alone(impl):
    data = fixture_tokens()
    tr = impl.Trainer(ref_model(9), data[:2500], data[2500:], make_cfg(impl, eval_batches=3))
    before = tr.generator.get_state()
    a, b = tr.estimate_loss(), tr.estimate_loss()
    assert torch.equal(tr.generator.get_state(), before), (
        "estimate_loss drew from the training sampler: evaluating would change the training "
        "batches (and a resumed run would differ); use its own generator")
    assert a == b, f"two estimates in a row (no training between) must be equal: {a} vs {b}"
    g = torch.Generator().manual_seed(tr.cfg.seed + 1)
    want = impl.evaluate(tr.model, [impl.get_batch(data[2500:], 4, 8, g) for _ in range(3)])
    assert abs(a["val"]["loss"] - want["loss"]) < 1e-6 and set(a) == {"train", "val"}, (
        f"estimate_loss()['val'] is evaluate on eval_batches batches of the validation data from "
        f"torch.Generator().manual_seed(cfg.seed + 1): {want['loss']:.6f}, got {a['val']}")


@pytest.mark.points(2)
def test_fit_records_schedule_evals_and_callbacks(impl):
    data = fixture_tokens()
    cfg = make_cfg(impl, max_steps=7, eval_every=3, warmup_steps=2, lr=0.01, min_lr=0.001)
    tr = impl.Trainer(ref_model(10), data[:2500], data[2500:], cfg)
    calls = []
    records = tr.fit(lambda t, r: calls.append((t is tr, r["step"])))
    assert [r["step"] for r in records] == list(range(1, 8)), [r["step"] for r in records]
    assert calls == [(True, s) for s in range(1, 8)], f"callback(trainer, record): got {calls}"
    for r in records:
        want = lr_formula(r["step"] - 1, 0.01, 0.001, 2, 7)
        assert abs(r["lr"] - want) < 1e-12, f"record {r['step']}: lr {r['lr']}, expected {want}"
        has = "val_loss" in r
        assert has == (r["step"] in (3, 6, 7)), (
            f"record {r['step']}: evaluation every eval_every=3 updates and at the last one")
        if has:
            assert abs(r["val_perplexity"] - math.exp(r["val_loss"])) < 1e-6 * r["val_perplexity"]
            assert set(r) >= {"train_loss", "loss", "grad_norm"}
    assert tr.fit() == [], "a finished trainer has nothing left to do"


@pytest.mark.points(2)
def test_checkpoint_has_the_course_format(impl, tmp_path):
    data = fixture_tokens()
    tr = impl.Trainer(ref_model(11), data[:2500], data[2500:], make_cfg(impl, max_steps=2))
    tr.fit()
    path = tmp_path / "c.pt"
    impl.save_checkpoint(str(path), tr, {"kind": "bpe", "path": "tok.bpe"})
    ck = torch.load(path, weights_only=False)
    assert ck["format"] == "ml-to-llm/gpt-checkpoint/1" and ck["step"] == 2, ck.get("format")
    assert ck["config"] == RefConfig().__dict__, (
        f"config: dataclasses.asdict(model.config), got {ck['config']}")
    assert ck["tokenizer"] == {"kind": "bpe", "path": "tok.bpe"}
    assert set(ck) >= {"model", "optimizer", "scheduler", "rng", "data_position"}, sorted(ck)
    for k, v in tr.model.state_dict().items():
        assert torch.equal(ck["model"][k], v), f"model[{k!r}] is not the trainer's weights"
    bad = tmp_path / "bad.pt"
    torch.save({"model": {}}, bad)
    with pytest.raises(ValueError):
        impl.load_checkpoint(str(bad), tr)


@pytest.mark.points(1)
def test_schedule_edge_cases(impl):
    cfg = make_cfg(impl, warmup_steps=5, max_steps=5, lr=1.0, min_lr=0.2)
    got = [impl.lr_at(s, cfg) for s in range(8)]
    want = [0.2, 0.4, 0.6, 0.8, 1.0, 0.2, 0.2, 0.2]
    assert all(abs(a - b) < 1e-12 for a, b in zip(got, want, strict=True)), (
        f"warmup_steps == max_steps: warmup, then min_lr; expected {want}, got {got}")
    with pytest.raises(ValueError):
        impl.get_batch(torch.arange(8), 2, 8, torch.Generator())
    params = [torch.zeros(3, requires_grad=True)]
    norm = impl.clip_grad_norm(params, 1.0)
    assert float(norm) == 0.0 and params[0].grad is None, (
        "with no gradients at all the total norm is 0 and nothing is created")


@pytest.mark.points(2)
def test_update_and_state_dict_round_trip(impl):
    data = fixture_tokens()
    cfg = make_cfg(impl, max_steps=6, grad_accum=3, warmup_steps=4, lr=0.02)
    tr = impl.Trainer(ref_model(12), data[:2500], data[2500:], cfg)
    g = torch.Generator().manual_seed(cfg.seed)
    draws = [impl.get_batch(data[:2500], 4, 8, g) for _ in range(3)]
    twin = ref_model(12)
    ref = impl.train_step(twin, impl.configure_optimizer(twin, cfg), draws, lr=0.005,
                          grad_clip=cfg.grad_clip)
    out = tr.update()
    assert tr.step == 1, f"update counts one optimizer step (grad_accum=3), step is {tr.step}"
    assert abs(out["lr"] - 0.005) < 1e-15 and abs(out["loss"] - ref["loss"]) < 1e-6, (
        f"update 0 uses lr_at(0) = 0.005 and grad_accum=3 micro-batches drawn in turn from the "
        f"trainer's generator: expected loss {ref['loss']:.6f} and lr 0.005, got {out}")
    state = copy.deepcopy(tr.state_dict())  # state_dict holds references to live tensors
    assert state["step"] == 1 and state["scheduler"]["step"] == 1, "state_dict's step counters"
    after = [tr.update() for _ in range(2)]
    other = impl.Trainer(ref_model(99), data[:2500], data[2500:], cfg)
    other.load_state_dict(state)
    assert other.step == 1, f"load_state_dict restores the step, got {other.step}"
    again = [other.update() for _ in range(2)]
    assert after == again, (
        f"after load_state_dict the next updates must repeat: {after} vs {again}")


@pytest.mark.points(1)
def test_clipping_of_tiny_gradients_matches_torch_and_clip_zero_or_less_only_measures(impl):
    g = torch.Generator().manual_seed(3)
    ours = [torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(2, 3))]
    theirs = [torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(2, 3))]
    for p, q in zip(ours, theirs, strict=True):
        p.grad = torch.randn(p.shape, generator=g) * 4e-6  # total norm ~1e-5: the 1e-6 matters
        q.grad = p.grad.clone()
    torch.nn.utils.clip_grad_norm_(theirs, 5e-6)
    impl.clip_grad_norm(ours, 5e-6)
    for p, q in zip(ours, theirs, strict=True):
        assert_close(p.grad, q.grad, "gradients clipped to max_norm=5e-6 when their total norm is "
                     "about 1e-5: scale = max_norm / (total + 1e-6), as clip_grad_norm_ does",
                     rtol=1e-5, atol=0)  # float32
    data = fixture_tokens()
    x, y = impl.get_batch(data, 4, 8, torch.Generator().manual_seed(4))
    ref = ref_model(7)
    ref(x, y)[1].backward()
    for clip in (0.0, -1.0):
        model = ref_model(7)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        impl.train_step(model, opt, [(x, y)], lr=0.5, grad_clip=clip)
        with torch.no_grad():
            for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
                assert_close(p, q - 0.5 * q.grad, f"{name} after train_step(grad_clip={clip}): "
                             "clipping is off for grad_clip <= 0, the full gradient is used",
                             rtol=1e-5, atol=1e-6)  # float32


@pytest.mark.points(1)
def test_accumulated_loss_is_the_mean_of_the_micro_batch_losses(impl):
    data = fixture_tokens()
    gen = torch.Generator().manual_seed(5)
    batches = [impl.get_batch(data, 2, 8, gen) for _ in range(3)]
    twin = ref_model(8)
    with torch.no_grad():
        want = sum(float(twin(x, y)[1]) for x, y in batches) / 3
    model = ref_model(8)
    out = impl.train_step(model, torch.optim.SGD(model.parameters(), lr=0.1), batches, lr=0.1,
                          grad_clip=1.0)
    assert abs(out["loss"] - want) < 1e-5, (
        f"train_step's loss is the mean of its 3 micro-batch losses, {want:.6f}; got "
        f"{out['loss']}")


@pytest.mark.points(1)
def test_parameter_groups_decay_every_parameter_of_two_or_more_dimensions_once(impl):
    class Odd(torch.nn.Module):  # a 3-D weight, like a convolution's
        def __init__(self):
            super().__init__()
            self.vec = torch.nn.Parameter(torch.ones(3))
            self.mat = torch.nn.Parameter(torch.ones(4, 5))
            self.cube = torch.nn.Parameter(torch.ones(2, 3, 4))

    model = Odd()
    opt = impl.configure_optimizer(model, make_cfg(impl, weight_decay=0.3))
    seen = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    count = sum(len(g["params"]) for g in opt.param_groups)
    want = {id(model.vec): 0.0, id(model.mat): 0.3, id(model.cube): 0.3}
    got = [(tuple(p.shape), g["weight_decay"]) for g in opt.param_groups for p in g["params"]]
    assert count == 3 and seen == want, (
        "every parameter in exactly one group: 1-D ones with weight_decay 0, 2-D and 3-D ones "
        f"with cfg.weight_decay; got {got}")


@pytest.mark.points(1)
def test_fit_stops_exactly_at_max_steps_from_any_step(impl):
    data = fixture_tokens()

    def runaway(trainer, record):
        if record["step"] > trainer.cfg.max_steps:
            raise AssertionError(f"fit made update {record['step']} past max_steps")

    tr = impl.Trainer(ref_model(9), data[:2500], data[2500:],
                      make_cfg(impl, max_steps=301, eval_every=1000, warmup_steps=2))
    tr.step = 298  # a resumed run late in training (counts past Python's small-int cache)
    records = tr.fit(runaway)
    assert [r["step"] for r in records] == [299, 300, 301], [r["step"] for r in records]
    assert ["val_loss" in r for r in records] == [False, False, True], (
        "the last update (step == max_steps) is evaluated even when eval_every does not divide it")
    done = impl.Trainer(ref_model(9), data[:2500], data[2500:], make_cfg(impl, max_steps=3))
    done.step = 5  # resumed with a smaller max_steps
    assert done.fit(runaway) == [] and done.step == 5, (
        "a trainer already past max_steps does nothing")
