"""s22 LSTM / GRU: the reference modules (a Python loop of tensor ops) vs torch.nn.LSTM / GRU.

One forward + backward of a 2-layer, 64-unit, batch-first model on x (32, 50, 32) float32,
one thread, the same state_dict in both; the median of 5 timed passes after a warm-up.
``ours`` / ``ref`` report the largest output difference (0 would be suspicious for float32).
Wall times (``*_s``) suffer when the machine is shared; ``*_cpu_s`` is the process's CPU time.

    python tools/bench.py steps s22
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from tools.labkit import load_step

STEP = "s22_lstm_gru"
B, T, D, H, LAYERS, REPEATS = 32, 50, 32, 64, 2, 5


def _time(module, x) -> tuple[float, float]:
    module(x)[0].sum().backward()  # warm-up
    walls, cpus = [], []
    for _ in range(REPEATS):
        w0, c0 = time.perf_counter(), time.process_time()
        module(x)[0].sum().backward()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def bench() -> list[dict]:
    mod = load_step(STEP, "solutions")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for kind in ("LSTM", "GRU"):
            torch.manual_seed(0)
            ours = getattr(mod, kind)(D, H, num_layers=LAYERS, batch_first=True)
            ref = getattr(nn, kind)(D, H, num_layers=LAYERS, batch_first=True)
            ref.load_state_dict(ours.state_dict())
            x = torch.randn(B, T, D)
            with torch.no_grad():
                diff = float((ours(x)[0] - ref(x)[0]).abs().max())
            ours_s, ours_cpu = _time(ours, x)
            ref_s, ref_cpu = _time(ref, x)
            rows.append({"step": STEP, "task": f"{kind} forward + backward",
                         "data": f"B={B} T={T} D={D} H={H} x{LAYERS} layers", "ours_s": ours_s,
                         "ref_s": ref_s, "ours_cpu_s": ours_cpu, "ref_cpu_s": ref_cpu,
                         "metric": f"max abs diff vs nn.{kind}", "ours": diff, "ref": 0.0})
    finally:
        torch.set_num_threads(threads)
    return rows
