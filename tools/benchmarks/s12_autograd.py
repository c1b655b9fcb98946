"""s12 autograd: the full micrograd moons demo on one core.

100 make_moons points (noise 0.1), MLP 2-16-16-1, hinge loss + 1e-4 L2, 100 full-batch SGD
steps with lr = 1 - 0.9 k / 100 (micrograd's demo). ``ours`` is ``train()`` as shipped, which
pauses Python's cycle collector (the engine forms no reference cycles, so reference counting
frees every graph); ``ref`` runs the same steps with the collector on, to show what it costs
even when it has nothing to collect. micrograd itself, whose ``_backward`` closures put every
node in a cycle, took 182 s on this demo with the default collector (measured elsewhere).
Wall times (``*_s``) suffer when the machine is shared; ``*_cpu_s`` is the process's CPU time.

    python tools/bench.py steps s12
"""

from __future__ import annotations

import gc
import os
import random
import time
from contextlib import contextmanager

from sklearn.datasets import make_moons

from tools.labkit import load_step

STEP = "s12_autograd"
N, NOISE, SIZES, STEPS, SEED = 100, 0.1, [16, 16, 1], 100, 1337


@contextmanager
def _one_core():
    """Pin this process to one CPU while timing (pure Python is single-threaded anyway)."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _data():
    X, y = make_moons(n_samples=N, noise=NOISE, random_state=SEED)
    return X.tolist(), (2 * y - 1).tolist()


def _loop_with_collector_on(mod, model, X, y):
    """train()'s loop, without pausing the collector."""
    history = []
    for k in range(STEPS):
        loss, acc = mod.hinge_loss(model, X, y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= (1.0 - 0.9 * k / STEPS) * p.grad
        history.append((loss.data, acc))
    return history


def bench(impl: str = "solutions", with_reference: bool = True) -> list[dict]:
    mod = load_step(STEP, impl)
    X, y = _data()
    with _one_core():
        model = mod.MLP(2, SIZES, rng=random.Random(SEED))
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        history = mod.train(model, X, y, steps=STEPS)
        ours_s, ours_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        _, acc = mod.hinge_loss(model, X, y)
        row = {"step": STEP, "task": "moons demo, MLP 2-16-16-1, 100 SGD steps (1 core)",
               "data": f"make_moons n={N} noise={NOISE}", "ours_s": ours_s,
               "ours_cpu_s": ours_cpu_s, "metric": "train accuracy after 100 steps",
               "ours": acc,
               "first_step_at_100pct": next((k for k, (_, a) in enumerate(history)
                                             if a == 1.0), None)}
        if with_reference:
            model = mod.MLP(2, SIZES, rng=random.Random(SEED))
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            _loop_with_collector_on(mod, model, X, y)
            row["ref_s"] = time.perf_counter() - t0
            row["ref_cpu_s"] = time.process_time() - c0
            row["ref"] = mod.hinge_loss(model, X, y)[1]
            row["reference"] = "same engine and loop, cycle collector left on"
    return [row]


if __name__ == "__main__":
    for r in bench():
        print(r)
