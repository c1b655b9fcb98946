# %% [markdown]
# # s46 · Serving lab: your model behind a real HTTP API
#
# This lab runs **your** `exercises/s46_serving.py` around a GPT pretrained on Tiny Shakespeare:
# your own checkpoint from s30 when `results/` has one, otherwise a small one trained now in
# about 30 seconds. It starts your app with uvicorn on a free loopback port (127.0.0.1 only,
# nothing leaves this machine) and talks to it with httpx, a real HTTP client. You will
#
# 1. stream a completion as Server-Sent Events and check it equals offline generation;
# 2. see each token arrive: time to first token against the whole response;
# 3. send bad requests and read the 4xx answers;
# 4. load the server with 1, 2 and 4 concurrent clients (and overload it past its slots),
#    measuring p50 / p99 latency, tokens/s and how many requests were refused with 429.
#
# Every experiment is recorded under `results/s46_serving/`.

# %%
import json
import os
import statistics
import threading
import time

import httpx
import matplotlib.pyplot as plt
import torch

from tools.checkpoint import lab_model
from tools.labkit import Run, load_step

serving = load_step("s46_serving")
torch.set_num_threads(1)
IMPL = os.environ.get("ML2LLM_IMPL", "exercises")  # whose s26 GPT reads the checkpoint
model, encode, decode, config, source = lab_model("solutions" if IMPL == "solutions"
                                                  else "exercises")
print("model:", source)
SLOTS, NEW = 4, 24
app = serving.create_app(model, encode, decode, config.block_size, max_concurrency=SLOTS,
                         max_prompt_tokens=48, max_tokens_limit=64)
server = serving.ServerThread(app)
url = server.start()
print("serving on", url)
run = Run("s46_serving", config={"model": source, "slots": SLOTS, "new_tokens": NEW}, seed=0)

# %% [markdown]
# ## 1. A streamed completion equals offline generation
# The server samples with a generator seeded by the request, so the same request gives the
# same tokens, streamed or not, and the same as calling `generate_stream` yourself.

# %%
body = {"prompt": "ROMEO:\n", "max_tokens": 48, "temperature": 0.8, "seed": 7, "stream": True}
arrivals, tokens = [], []
with httpx.Client(base_url=url, timeout=60) as client:
    start = time.perf_counter()
    with client.stream("POST", "/generate", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
                if "token" in data:
                    tokens.append(data["token"])
                    arrivals.append(time.perf_counter() - start)
offline = list(serving.generate_stream(model, encode(body["prompt"]), 48, 0.8, 7,
                                       config.block_size))
same = tokens == offline
print(body["prompt"] + decode(tokens))
print("streamed == offline:", same)
run.metric("stream_equals_offline", same)
run.metric("time_to_first_token_ms", 1000 * arrivals[0])
run.metric("whole_response_ms", 1000 * arrivals[-1])

# %% [markdown]
# ## 2. Time to first token
# With streaming, a reader sees the first character after one forward pass; without it,
# after all of them.

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.step([1000 * a for a in arrivals], range(1, len(arrivals) + 1), where="post")
ax.set_xlabel("time since the request (ms)")
ax.set_ylabel("tokens received")
ax.set_title(f"one streamed response: first token {1000 * arrivals[0]:.0f} ms")
run.figure(fig, "token_arrivals")

# %% [markdown]
# ## 3. Bad requests get a 4xx with a message
# %%
bad = {"not JSON": b"{oops", "unknown field": b'{"prompt": "a", "colour": 1}',
       "wrong type": b'{"prompt": "a", "max_tokens": "9"}', "empty prompt": b'{"prompt": ""}',
       "too many tokens": b'{"prompt": "a", "max_tokens": 1000}',
       "prompt too long": json.dumps({"prompt": "a" * 100}).encode()}
with httpx.Client(base_url=url, timeout=30) as client:
    for what, raw in bad.items():
        r = client.post("/generate", content=raw, headers={"content-type": "application/json"})
        print(f"{what:16s} -> {r.status_code} {r.json()['error'][:70]}")
        run.metric(f"status {what}", r.status_code)

# %% [markdown]
# ## 4. Concurrent clients
# Each client sends requests of NEW tokens back to back. Up to SLOTS requests run at once,
# one generation per slot (no batching): latency grows once clients outnumber cores. With
# more clients than slots the server refuses the excess at once (429) instead of queueing.


# %%
def load(clients: int, per_client: int = 2) -> dict:
    latencies, codes = [], []
    lock = threading.Lock()
    with httpx.Client(base_url=url, timeout=60,
                      limits=httpx.Limits(max_connections=clients)) as client:
        def worker(i):
            for j in range(per_client):
                t0 = time.perf_counter()
                r = client.post("/generate", json={"prompt": "KING:", "max_tokens": NEW,
                                                   "seed": 10 * i + j})
                with lock:
                    codes.append(r.status_code)
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    lat = sorted(latencies)
    return {"clients": clients, "ok": len(lat), "refused": codes.count(429),
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))],
            "tokens_per_s": NEW * len(lat) / wall}


rows = [load(c) for c in (1, 2, SLOTS, 2 * SLOTS)]
for row in rows:
    print(row)
    for key in ("p50_ms", "p99_ms", "tokens_per_s", "refused"):
        run.metric(f"{key} clients={row['clients']}", row[key])
with httpx.Client(base_url=url) as client:
    metrics = client.get("/metrics").json()
print("metrics:", metrics)
server.stop()

fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3))
xs = [r["clients"] for r in rows]
a1.plot(xs, [r["p50_ms"] for r in rows], "o-", label="p50")
a1.plot(xs, [r["p99_ms"] for r in rows], "s--", label="p99")
a1.set_xlabel("concurrent clients")
a1.set_ylabel("latency of a served request (ms)")
a1.legend()
a2.bar([str(x) for x in xs], [r["tokens_per_s"] for r in rows])
a2.set_xlabel("concurrent clients")
a2.set_ylabel("tokens/s (all clients)")
fig.suptitle(f"{SLOTS} slots, {NEW} tokens per request")
run.figure(fig, "load")

# %%
run.finish(f"On {source}: the streamed completion equals offline generation ({same}); first "
           f"token after {1000 * arrivals[0]:.0f} ms of {1000 * arrivals[-1]:.0f} ms. p50 latency "
           + ", ".join(f"{r['p50_ms']:.0f} ms ({r['clients']} clients)" for r in rows)
           + f"; {rows[-1]['refused']} of {2 * rows[-1]['clients']} requests refused with 429 "
           f"at {rows[-1]['clients']} clients on {SLOTS} slots. Without batching, throughput "
           "stops growing once every core is busy: batching the requests in flight through a "
           "KV cache is what a production server adds.")
