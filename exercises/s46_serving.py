"""s46 · Serving: an HTTP inference API with streamed tokens, validation and a slot limit.

You build
    generate_stream(model, prompt_ids, ...)   the sampling loop as a generator, one id per next()
    sse_format(event, data)                   one Server-Sent Event as text
    validate_request(body, encode, ...)       raw bytes -> a checked request and its prompt ids
    SlotLimiter.try_acquire / release         a non-blocking concurrency limit
    sse_stream(tokens, decode, release)       a response's token events; always frees its slot
    create_app(model, encode, decode, ...)    FastAPI: POST /generate, GET /health, GET /metrics
Given: GenerateRequest (the pydantic schema), RequestError, ServerThread (uvicorn on a thread).

Why
    A server turns "call generate in a notebook" into a contract over HTTP: what a client may
    send, what comes back, what happens when too many come at once, when one hangs up, when
    the server stops. Streaming lets a reader start on the first words while the rest are
    computed: time to first token, not total time, is what feels slow.

The protocol
    POST /generate {"prompt", "max_tokens", "temperature", "seed", "stream"}. stream false:
    200 {"tokens": [ids], "text", "prompt_tokens"}. stream true: 200 text/event-stream,
        event: token\ndata: {"index": 0, "token": 17, "text": "e"}\n\n   (one per token)
        event: done\ndata: {"tokens": 5, "text": "every"}\n\n
    Errors are JSON {"error": "<what was wrong, naming the field>"}: 400 not JSON, 413 more
    than max_prompt_tokens prompt ids, 422 anything else wrong, 429 every slot busy (with
    Retry-After): refusing at once keeps the server answering instead of piling up work.

Sampling (the same as offline generation, so a seed reproduces a response)
    g = torch.Generator().manual_seed(seed); per token: logits = model(last block_size
    ids)[0][0, -1]; T = 0: argmax, else torch.multinomial(softmax(logits / T), 1, generator=g).
    Each request owns its generator, so concurrent requests never share random state.

Concurrency here
    One generation per slot. Each token is computed in a worker thread (run_in_threadpool) so
    the event loop keeps accepting requests and noticing disconnects. Real servers (vLLM, TGI)
    batch the requests in flight into one forward per step over a shared KV cache
    ("continuous batching"); this one does not: throughput grows only while cores are free.

Pitfalls
    - torch.no_grad() is per thread: never hold it open across a `yield` that another worker
      thread resumes; wrap each forward on its own.
    - Free the slot however a request ends (done, exception, client gone): use finally.
      A client gone before the first chunk means the async generator never starts, so
      its finally never runs: release once more from the response's background task,
      and make the release idempotent (the first call wins).
    - StopIteration cannot cross a thread's future: use next(it, None).
    - An SSE event ends with a blank line; json.dumps keeps the data on one line.

You should be able to explain
    - why 429 (fail fast) beats an unbounded queue, and what a bounded wait would add;
    - why time to first token and tokens/s differ, and which one streaming improves;
    - what continuous batching over a KV cache would change in the lab's figures;
    - why validation lives at the edge (a bad request must never reach the model).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool


class GenerateRequest(BaseModel):
    """The body of POST /generate (given). strict: "16" is not an int, 1 is not a bool."""
    model_config = ConfigDict(extra="forbid", strict=True)
    prompt: str
    max_tokens: int = 16
    temperature: float = Field(1.0, ge=0.0, le=5.0, allow_inf_nan=False)
    seed: int = Field(0, ge=0, lt=2**63)
    stream: bool = False


class RequestError(Exception):
    """A request the server refuses (given): the HTTP status and the message sent as JSON."""
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def generate_stream(model, prompt_ids: list[int], max_tokens: int, temperature: float = 1.0,
                    seed: int = 0, block_size: int = 64) -> Iterator[int]:
    """Yields max_tokens token ids one at a time, as int: model(idx[:, -block_size:]) ->
    (logits, _), last position; argmax at temperature 0, else torch.multinomial(softmax(
    logits / temperature), 1, generator=torch.Generator().manual_seed(seed)). ValueError
    (when iteration starts) for an empty prompt, max_tokens < 0 or temperature < 0."""
    if not prompt_ids or max_tokens < 0 or temperature < 0:
        raise ValueError(f"need a non-empty prompt, max_tokens >= 0 and temperature >= 0, got "
                         f"{len(prompt_ids)} ids, max_tokens={max_tokens}, T={temperature}")
    raise NotImplementedError("s46 serving: a seeded generator, the cropped forward per token, yield each id")


def sse_format(event: str, data: dict) -> str:
    """One Server-Sent Event: "event: <event>\\ndata: <json.dumps(data)>\\n\\n" (the JSON on
    one line). An event name with a newline or a colon is refused (ValueError)."""
    if "\n" in event or "\r" in event or ":" in event:
        raise ValueError(f"an SSE event name is one word, got {event!r}")
    raise NotImplementedError("s46 serving: the event line, the data line, a blank line")


def validate_request(body: bytes, encode: Callable[[str], list[int]], max_prompt_tokens: int,
                     max_tokens_limit: int) -> tuple[GenerateRequest, list[int]]:
    """(GenerateRequest, encode(prompt)) for a good body, else RequestError: 400 not JSON;
    422 not a JSON object, a schema error (the message names each field, "body" when the
    error is not about one), an empty prompt, max_tokens outside 1 .. max_tokens_limit or a
    prompt encode refuses (ValueError); 413 more than max_prompt_tokens prompt ids."""
    raise NotImplementedError("s46 serving: parse, check the schema, then the limits this server sets")


class SlotLimiter:
    """At most `capacity` requests at once, thread-safe; a full limiter refuses, never waits."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.in_use = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take a slot and return True, or return False at once when all are in use."""
        raise NotImplementedError("s46 serving: under the lock, take a slot only when one is free")

    def release(self) -> None:
        """Give a slot back; RuntimeError when none is taken (a double release is a bug)."""
        raise NotImplementedError("s46 serving: under the lock, refuse to go below zero")


async def sse_stream(tokens: Iterator[int], decode: Callable[[list[int]], str],
                     release: Callable[[bool], None]) -> AsyncIterator[str]:
    """sse_format("token", {"index": i, "token": t, "text": decode([t])}) per token (each
    next(tokens) run in a worker thread: run_in_threadpool), then sse_format("done",
    {"tokens": n, "text": decode(all n)}); calls release(finished) exactly once however the
    stream ends: True after "done" was yielded, False when closed or cancelled before. (A
    stream never iterated runs none of this code: its caller frees the slot then.)"""
    raise NotImplementedError("s46 serving: advance the generator off the event loop; release in finally")


def create_app(model, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str],
               block_size: int, max_concurrency: int = 2, max_prompt_tokens: int = 64,
               max_tokens_limit: int = 64) -> FastAPI:
    """The API of the module docstring for `model` (put in eval mode). GET /health: {"status":
    "ok", "capacity", "in_use"}; GET /metrics: {"requests" (every POST), "rejected_invalid"
    (4xx), "rejected_busy" (429), "completed" (generations that finished), "disconnected"
    (cut short: client gone or model failed), "tokens_generated" (of completed ones), "in_use"}."""
    model.eval()
    app = FastAPI(title="ml-to-llm s46 inference API")
    limiter = SlotLimiter(max_concurrency)
    counts = dict.fromkeys(("requests", "completed", "rejected_busy", "rejected_invalid",
                            "disconnected", "tokens_generated"), 0)
    app.state.limiter, app.state.counts = limiter, counts

    @app.get("/health")
    async def health() -> dict:
        raise NotImplementedError("s46 serving: liveness and the slots in use")

    @app.get("/metrics")
    async def metrics() -> dict:
        raise NotImplementedError("s46 serving: the counters and the slots in use")

    @app.post("/generate")
    async def generate(request: Request):
        raise NotImplementedError("s46 serving: validate, take a slot or 429, then answer in JSON or stream")

    return app


class ServerThread:
    """uvicorn serving `app` on a daemon thread (given). start() -> the base URL (port 0: the
    OS picks a free port); stop() is a graceful shutdown: no new connections, requests in
    flight finish, then the thread ends (RuntimeError if it has not within `timeout`)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.app, self.host, self.port = app, host, port
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> str:
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start (is the port free?)")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.server is None or self.thread is None:
            raise RuntimeError("stop() before start()")
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError(f"the server did not stop within {timeout} s")
