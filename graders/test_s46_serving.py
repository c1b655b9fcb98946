"""Public graders for s46 serving: the seeded sampling generator against a reference loop, the
SSE text format, request validation status by status, the slot limiter, and the app itself
over HTTP: JSON answers through FastAPI's TestClient, streamed tokens through a real uvicorn
server on a free loopback port read by httpx, 429 when every slot is busy, health and metrics.

The model is a tiny torch module (a few hundred parameters) whose next-token logits depend on
the whole window it is given, so cropping to block_size matters; a gate makes it wait so the
tests can hold slots busy without any timing guesswork.
"""

import asyncio
import contextlib
import inspect
import json
import threading

import pytest
import torch

SKIP = "s46 needs the serve extra: fastapi, uvicorn and httpx"
fastapi = pytest.importorskip("fastapi", reason=SKIP)
httpx = pytest.importorskip("httpx", reason=SKIP)
uvicorn = pytest.importorskip("uvicorn", reason=SKIP)
from fastapi.testclient import TestClient  # noqa: E402

CHARS = "abcdefgh .\n"
STOI = {c: i for i, c in enumerate(CHARS)}
V = len(CHARS)
BLOCK = 8


def encode(text):
    bad = sorted({c for c in text if c not in STOI})
    if bad:
        raise ValueError(f"characters {bad} are not in the vocabulary")
    return [STOI[c] for c in text]


def decode(ids):
    return "".join(CHARS[int(i)] for i in ids)


class TinyLM(torch.nn.Module):
    """logits_t = head(mean of the embeddings of tokens 0..t) + table[token_t]; dropout so that
    a model left in training mode samples differently. forward(idx) -> (logits (B, T, V), None)."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = torch.nn.Embedding(V, 6)
        self.head = torch.nn.Linear(6, V)
        self.table = torch.nn.Parameter(2.0 * torch.randn(V, V))
        self.drop = torch.nn.Dropout(0.5)
        self.longest = 0
        self.gate = None  # a threading.Event: forward waits for it when set up
        self.entered = 0
        self.lock = threading.Lock()

    def forward(self, idx, targets=None):
        with self.lock:
            self.entered += 1
            self.longest = max(self.longest, idx.size(1))
        if self.gate is not None:
            self.gate.wait(10)
        e = self.emb(idx).cumsum(1) / torch.arange(1, idx.size(1) + 1).view(1, -1, 1)
        return self.head(self.drop(e)) * 3.0 + self.table[idx], None


def reference(model, ids, n, temperature, seed, block):
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    idx = torch.tensor([ids])
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(idx[:, -block:])[0][0, -1]
            if temperature == 0:
                nxt = int(torch.argmax(logits))
            else:
                nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1,
                                            generator=gen))
            out.append(nxt)
            idx = torch.cat([idx, torch.tensor([[nxt]])], 1)
    return out


def parse_events(text):
    """[(event, data dict)] from an SSE body; fails on a malformed event."""
    events = []
    for chunk in text.split("\n\n"):
        if not chunk.strip():
            continue
        fields = dict(line.split(": ", 1) for line in chunk.split("\n"))
        assert set(fields) == {"event", "data"}, (
            f"each SSE event should be exactly an 'event: ...' line and a 'data: ...' line, got "
            f"{chunk!r}: look at sse_format")
        events.append((fields["event"], json.loads(fields["data"])))
    return events


@contextlib.contextmanager
def live(app):
    """uvicorn serving app on a free loopback port, on a thread; yields the base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(1000):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.01)
    assert server.started, "uvicorn did not start serving the app (see the error above)"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def make_app(impl, model=None, **kw):
    kw.setdefault("max_concurrency", 2)
    return impl.create_app(model or TinyLM(), encode, decode, BLOCK, **kw)


async def _drain(stream):
    if inspect.iscoroutine(stream):  # an unfinished stub is a plain coroutine
        return await stream
    return [chunk async for chunk in stream]


def raise_unfinished_parts(impl):
    """Run every part once in this test, so an unfinished one raises its NotImplementedError
    here instead of hiding behind an HTTP 500 from a server thread."""
    list(impl.generate_stream(TinyLM().eval(), [1], 1, block_size=BLOCK))
    impl.sse_format("done", {})
    impl.validate_request(b'{"prompt": "a", "max_tokens": 1}', encode, 4, 4)
    limiter = impl.SlotLimiter(1)
    limiter.try_acquire()
    limiter.release()
    asyncio.run(_drain(impl.sse_stream(iter([1]), decode, lambda finished: None)))
    with TestClient(make_app(impl)) as client:
        client.get("/health")
        client.get("/metrics")
        for stream in (False, True):
            client.post("/generate", json={"prompt": "a", "max_tokens": 1, "stream": stream})


@pytest.mark.points(2)
def test_generate_stream_matches_the_reference_sampling_loop(impl):
    model = TinyLM().eval()
    for ids, n, temp, seed in [([1, 2], 6, 0.0, 0), ([3], 12, 1.0, 7), ([0, 5, 6], 10, 0.6, 3)]:
        got = list(impl.generate_stream(model, ids, n, temperature=temp, seed=seed,
                                        block_size=BLOCK))
        want = reference(model, ids, n, temp, seed, BLOCK)
        assert got == want, (
            f"generate_stream(prompt {ids}, max_tokens {n}, T={temp}, seed {seed}) gave {got}, "
            f"expected {want}: one torch.Generator().manual_seed(seed) per call, the last "
            f"block_size ids, argmax at T = 0 else multinomial(softmax(logits / T))")
        assert all(type(t) is int for t in got), (
            f"generate_stream should yield Python ints (JSON needs them), got "
            f"{[type(t).__name__ for t in got][:3]}")
    assert model.longest == BLOCK, (
        f"the model saw a window of {model.longest} ids, expected at most block_size = {BLOCK}: "
        f"crop idx[:, -block_size:] before each forward")


@pytest.mark.points(1)
def test_generate_stream_refuses_bad_arguments_and_stops_at_zero(impl):
    model = TinyLM().eval()
    assert list(impl.generate_stream(model, [1], 0, block_size=BLOCK)) == [], (
        "max_tokens = 0 should yield nothing")
    for args in [([], 3, 1.0), ([1], -1, 1.0), ([1], 3, -0.5)]:
        with pytest.raises(ValueError):
            list(impl.generate_stream(model, args[0], args[1], temperature=args[2]))


@pytest.mark.points(1)
def test_sse_format_writes_an_event_line_a_data_line_and_a_blank_line(impl):
    got = impl.sse_format("token", {"index": 0, "token": 3, "text": "d"})
    want = 'event: token\ndata: {"index": 0, "token": 3, "text": "d"}\n\n'
    assert got == want, f"sse_format gave {got!r}, expected {want!r}"
    got = impl.sse_format("done", {"text": "a\nb"})
    assert got.count("\n") == 3 and got.endswith("\n\n") and "a\\nb" in got, (
        f"a newline inside the data must be escaped by json.dumps (one data line), got {got!r}")
    for bad in ("two\nlines", "a:b"):
        with pytest.raises(ValueError):
            impl.sse_format(bad, {})


@pytest.mark.points(1)
def test_validate_request_accepts_a_good_body_and_fills_defaults(impl):
    req, ids = impl.validate_request(b'{"prompt": "bad cafe"}', encode, 16, 32)
    assert ids == encode("bad cafe"), (
        f"prompt ids {ids}, expected encode(prompt) {encode('bad cafe')}")
    got = (req.prompt, req.max_tokens, req.temperature, req.seed, req.stream)
    assert got == ("bad cafe", 16, 1.0, 0, False), f"request {got}: the schema's defaults"
    req, ids = impl.validate_request(json.dumps({"prompt": "ab", "max_tokens": 32, "seed": 5,
                                                 "temperature": 0, "stream": True}).encode(),
                                     encode, 2, 32)
    assert (req.max_tokens, req.seed, req.stream, ids) == (32, 5, True, [0, 1]), (
        "max_tokens == max_tokens_limit and a prompt of exactly max_prompt_tokens ids are allowed")


BAD = [  # body, status, a word the message must contain
    (b"{not json", 400, "json"),
    (b'["a list"]', 422, "object"),
    (b'{"prompt": "ab", "colour": "red"}', 422, "colour"),
    (b'{"prompt": 5}', 422, "prompt"),
    (b'{"max_tokens": 4}', 422, "prompt"),
    (b'{"prompt": ""}', 422, "prompt"),
    (b'{"prompt": "ab", "max_tokens": 0}', 422, "max_tokens"),
    (b'{"prompt": "ab", "max_tokens": 33}', 422, "max_tokens"),
    (b'{"prompt": "ab", "max_tokens": "8"}', 422, "max_tokens"),
    (b'{"prompt": "ab", "temperature": -1}', 422, "temperature"),
    (b'{"prompt": "abc?"}', 422, "prompt"),
    (b'{"prompt": "abcdefghabcdefgha"}', 413, "prompt"),
]


@pytest.mark.points(2)
def test_validate_request_gives_each_mistake_its_status_and_names_the_field(impl):
    for body, status, word in BAD:
        with pytest.raises(impl.RequestError) as info:
            impl.validate_request(body, encode, 16, 32)
        exc = info.value
        assert exc.status == status, (
            f"validate_request({body!r}) gave status {exc.status}, expected {status} (400 not "
            f"JSON, 413 prompt too long, 422 everything else wrong)")
        assert word in exc.message.lower(), (
            f"the message for {body!r} should name {word!r}, got {exc.message!r}")


@pytest.mark.points(1)
def test_slot_limiter_refuses_when_full_and_refuses_an_extra_release(impl):
    lim = impl.SlotLimiter(2)
    got = [lim.try_acquire() for _ in range(3)]
    assert got == [True, True, False] and lim.in_use == 2, (
        f"three try_acquire() on 2 slots gave {got} (in_use {lim.in_use}), expected "
        f"[True, True, False] with 2 in use: refuse at once when full, never wait")
    lim.release()
    assert lim.in_use == 1 and lim.try_acquire(), "a released slot should be free again"
    lim.release()
    lim.release()
    with pytest.raises(RuntimeError):
        lim.release()
    assert lim.in_use == 0, f"in_use went to {lim.in_use} after a refused release"


@pytest.mark.points(1)
def test_json_generation_over_http_equals_offline_generation(impl):
    model = TinyLM()
    app = make_app(impl, model)
    assert not model.training, "create_app should put the model in eval mode (dropout off)"
    with TestClient(app) as client:
        r = client.post("/generate", json={"prompt": "cab", "max_tokens": 9, "seed": 4,
                                           "temperature": 0.8})
        assert r.status_code == 200, f"a good request got {r.status_code}: {r.text}"
        want = reference(model, encode("cab"), 9, 0.8, 4, BLOCK)
        body = r.json()
        assert body == {"tokens": want, "text": decode(want), "prompt_tokens": 3}, (
            f"POST /generate answered {body}, expected tokens {want} (the offline generation "
            f"with the same seed), their text and prompt_tokens 3")


@pytest.mark.points(2)
def test_streamed_tokens_over_real_http_equal_offline_generation(impl):
    raise_unfinished_parts(impl)
    model = TinyLM()
    with live(make_app(impl, model)) as url, httpx.Client(base_url=url, timeout=20) as client:
        with client.stream("POST", "/generate", json={"prompt": "head", "max_tokens": 14,
                                                     "seed": 11, "stream": True}) as r:
            assert r.status_code == 200, f"a streamed request got {r.status_code}"
            assert r.headers["content-type"].startswith("text/event-stream"), (
                f"content-type {r.headers['content-type']!r}, expected text/event-stream")
            events = parse_events(r.read().decode())
    want = reference(model, encode("head"), 14, 1.0, 11, BLOCK)
    names = [e for e, _ in events]
    assert names == ["token"] * 14 + ["done"], f"event names {names}: 14 'token' then 'done'"
    got = [d["token"] for _, d in events[:-1]]
    assert got == want, f"streamed tokens {got}, expected the offline generation {want}"
    assert [d["index"] for _, d in events[:-1]] == list(range(14)), "index counts from 0"
    assert [d["text"] for _, d in events[:-1]] == [decode([t]) for t in want], (
        "each token event's text should be decode([token])")
    assert events[-1][1] == {"tokens": 14, "text": decode(want)}, (
        f"the done event carried {events[-1][1]}, expected the count and the whole text")


@pytest.mark.points(1)
def test_bad_requests_over_http_get_a_json_error(impl):
    with TestClient(make_app(impl, max_prompt_tokens=16, max_tokens_limit=32)) as client:
        for body, status, word in BAD:
            r = client.post("/generate", content=body,
                            headers={"content-type": "application/json"})
            assert r.status_code == status, f"{body!r} got HTTP {r.status_code}, expected {status}"
            msg = r.json().get("error", "")
            assert word in msg.lower(), f"{body!r}: the JSON error {r.json()} should name {word!r}"
        m = client.get("/metrics").json()
    assert (m["requests"], m["rejected_invalid"], m["completed"]) == (len(BAD), len(BAD), 0), (
        f"after {len(BAD)} bad requests /metrics said {m}: each counts once in requests and "
        f"in rejected_invalid")


@pytest.mark.points(2)
def test_a_busy_server_answers_429_and_recovers(impl):
    raise_unfinished_parts(impl)
    model = TinyLM()
    model.gate = threading.Event()
    app = make_app(impl, model, max_concurrency=2)
    results = []
    with live(app) as url, httpx.Client(base_url=url, timeout=20) as c:
        def call():
            results.append(c.post("/generate", json={"prompt": "ab", "max_tokens": 2}))

        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
        for _ in range(1000):
            if model.entered >= 2:
                break
            threading.Event().wait(0.01)
        busy = c.post("/generate", json={"prompt": "ab", "max_tokens": 2})
        health = c.get("/health").json()
        model.gate.set()
        for t in threads:
            t.join(20)
        after = c.post("/generate", json={"prompt": "ab", "max_tokens": 2})
        metrics = c.get("/metrics").json()
    assert busy.status_code == 429, (
        f"a third request with both slots busy got {busy.status_code}, expected 429")
    assert "error" in busy.json() and "retry-after" in busy.headers, (
        "a 429 should carry a JSON error and a Retry-After header")
    assert health == {"status": "ok", "capacity": 2, "in_use": 2}, f"/health said {health}"
    assert sorted(r.status_code for r in results) == [200, 200], "the two held requests finish"
    assert after.status_code == 200, f"after they finished, a new request got {after.status_code}"
    want = {"requests": 4, "completed": 3, "rejected_busy": 1, "rejected_invalid": 0,
            "disconnected": 0, "tokens_generated": 6, "in_use": 0}
    assert metrics == want, f"/metrics said {metrics}, expected {want}"
