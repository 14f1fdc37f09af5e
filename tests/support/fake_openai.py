"""A real loopback OpenAI-compatible server for tests and benchmarks.

It runs aiohttp.web in a background thread with its own event loop, so sync
tests, async tests and CLI subprocesses can all talk to it over HTTP::

    with FakeOpenAI(latency=0.05, fault_rate=0.2) as srv:
        ...  # point a model config at srv.url
        srv.requests  # what the server received (bodies + headers)

Replies are deterministic: judges (a model name containing "judge", or a last
user message that asks for a score) get one digit 0-4 derived from a hash of
the messages; everyone else gets a short sentence, derived from a hash of
(model, messages), that names the model.

Faults (injected with probability `fault_rate` from `faults`, by a seeded RNG,
or queued for the next requests with `queue_faults`):
  rate_limit (429, Retry-After: `retry_after`, default 0), rate_limit_no_header (429),
  server_error (500), unavailable (503), garbage (200, not JSON), wrong_shape (200, JSON without choices),
  empty (200, empty content), content_filter (finish_reason content_filter),
  hang (no reply for `hang_s`), drop (connection closed without a response),
  auth (401), bad_request (400). `error_message` replaces the message of every error reply;
  `echo_auth` quotes the request's Authorization header in every reply and error message.

Like a real server, it can also refuse: `served` (the model names it serves; others get 404) and
`api_key` (requests without `Bearer <api_key>` get 401).

Standalone: ``python -m tests.support.fake_openai --latency 0.25`` prints the URL.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

RETRYABLE_FAULTS = (
    "rate_limit",
    "rate_limit_no_header",
    "server_error",
    "unavailable",
    "garbage",
    "wrong_shape",
    "empty",
    "content_filter",
    "hang",
    "drop",
)
ALL_FAULTS = RETRYABLE_FAULTS + ("auth", "bad_request")

_SENTENCES = (
    "I hear you, and it makes sense that this feels heavy.",
    "That sounds really hard. What has been on your mind the most?",
    "Thank you for telling me. How long have you felt this way?",
    "It is okay to feel overwhelmed. What would help a little right now?",
    "You are not alone in this. Can you tell me more about what happened?",
    "I can see why that upset you. How are you taking care of yourself?",
    "That took courage to share. What do you wish others understood?",
    "Let us take it one step at a time. What feels most urgent?",
)
_SCORE_WORDS = ("score", "rate ", "rating", "评分", "打分")


@dataclass
class LoggedRequest:
    path: str
    body: Any  # the parsed JSON body (None if it was not JSON)
    headers: dict[str, str]
    fault: str | None
    time: float = field(default_factory=time.monotonic)


def _digest(obj: Any) -> int:
    raw = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big")


def _wants_score(model: str, messages: list[dict[str, Any]]) -> bool:
    if "judge" in model.lower():
        return True
    for m in reversed(messages):
        if m.get("role") == "user":
            text = str(m.get("content", "")).lower()
            return any(w in text for w in _SCORE_WORDS)
    return False


def default_reply(body: dict[str, Any]) -> str:
    """The deterministic reply policy (see the module docstring)."""
    model = str(body.get("model", ""))
    messages = body.get("messages") or []
    if _wants_score(model, messages):
        return str(_digest(messages) % 5)
    h = _digest([model, messages])
    return f"({model}) {_SENTENCES[h % len(_SENTENCES)]} [{h % 10_000:04d}]"


def _tokens(text: str) -> int:
    return len(text) // 4 + 1


class FakeOpenAI:
    def __init__(
        self,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        fault_seed: int = 0,
        faults: Iterable[str] = RETRYABLE_FAULTS,
        reply: Callable[[dict[str, Any]], str | bytes | dict[str, Any]] | None = None,
        *,
        hang_s: float = 30.0,
        retry_after: str = "0",
        error_message: str | None = None,
        echo_auth: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        served: Iterable[str] | None = None,
        api_key: str | None = None,
    ) -> None:
        self.served = None if served is None else set(served)  # other models: 404, as vLLM says
        self.api_key = api_key  # when set, a request without `Bearer <api_key>` gets 401
        self.latency = latency
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        unknown = set(self.faults) - set(ALL_FAULTS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        self.reply = reply or default_reply
        self.hang_s = hang_s
        self.retry_after = retry_after  # the Retry-After value sent with the rate_limit fault
        self.error_message = error_message  # when set, the message of every error reply
        self.echo_auth = echo_auth  # quote the request's Authorization header in every reply and error
        self.host = host
        self.port = port
        self._rng = random.Random(fault_seed)
        self._lock = threading.Lock()
        self._queued: collections.deque[str | None] = collections.deque()
        self._log: list[LoggedRequest] = []
        self.counts: collections.Counter[str] = collections.Counter()  # outcome -> n
        self.in_flight = 0
        self.max_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # ---- inspection (thread-safe) -------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    @property
    def n_requests(self) -> int:
        with self._lock:
            return len(self._log)

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self.counts.clear()
            self._queued.clear()
            self.max_in_flight = self.in_flight

    def queue_faults(self, *faults: str | None) -> None:
        """The next requests get these faults, in order (None = a normal reply)."""
        for f in faults:
            if f is not None and f not in ALL_FAULTS:
                raise ValueError(f"unknown fault {f!r}")
        with self._lock:
            self._queued.extend(faults)

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> "FakeOpenAI":
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        return self

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096, reuse_address=True)
        await site.start()
        server = site._server  # noqa: SLF001 - the only way to learn an ephemeral port
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop)
            try:
                fut.result(timeout=10)
            except Exception:  # noqa: BLE001 - best effort on shutdown
                pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- handlers --------------------------------------------------------------------
    def _error(
        self, status: int, message: str, headers: dict[str, str] | None = None, echo: str = ""
    ) -> web.Response:
        return _error(status, (self.error_message if self.error_message is not None else message) + echo, headers)

    def _pick_fault(self) -> str | None:
        with self._lock:
            if self._queued:
                return self._queued.popleft()
            if self.fault_rate > 0 and self.faults and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.faults)
            return None

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        fault = self._pick_fault()
        with self._lock:
            self._log.append(LoggedRequest(request.path, body, dict(request.headers), fault))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            response = await self._respond(request, body, fault)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.counts[fault or "ok"] += 1
        return response

    async def _respond(
        self, request: web.Request, body: Any, fault: str | None
    ) -> web.StreamResponse:
        echo = f" (you sent: {request.headers.get('Authorization', '')})" if self.echo_auth else ""
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error(400, "body must be JSON with a 'messages' list", echo=echo)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided")
        if self.served is not None and body.get("model") not in self.served:
            return _error(404, f"The model `{body.get('model')}` does not exist.")
        if fault == "rate_limit":
            return self._error(429, "rate limited", headers={"Retry-After": self.retry_after}, echo=echo)
        if fault == "rate_limit_no_header":
            return self._error(429, "rate limited", echo=echo)
        if fault == "server_error":
            return self._error(500, "internal error", echo=echo)
        if fault == "unavailable":
            return self._error(503, "overloaded", echo=echo)
        if fault == "auth":
            return self._error(401, "invalid api key", echo=echo)
        if fault == "bad_request":
            return self._error(400, "bad request", echo=echo)
        if fault == "garbage":
            return web.Response(text="<html>upstream garbage", content_type="application/json")
        if fault == "wrong_shape":
            return web.json_response({"object": "chat.completion", "result": "no choices"})
        if fault == "hang":
            await asyncio.sleep(self.hang_s)
        if fault == "drop":
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # the handler ends without writing anything
        out = self.reply(body)
        if isinstance(out, dict):
            return web.json_response(out)
        if isinstance(out, bytes):  # a raw body, sent as it is
            return web.Response(body=out, content_type="application/json")
        text = "" if fault == "empty" else str(out) + echo
        finish = "content_filter" if fault == "content_filter" else "stop"
        return web.json_response(_completion(body, text, finish))


def _completion(body: dict[str, Any], text: str, finish_reason: str) -> dict[str, Any]:
    prompt = sum(_tokens(str(m.get("content", ""))) for m in body["messages"])
    completion = _tokens(text) if text else 0
    return {
        "id": f"chatcmpl-{_digest(body) % 10**12:012d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": "fake_error", "code": status}}
    return web.json_response(payload, status=status, headers=headers)


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="Run the fake OpenAI-compatible server.")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    with FakeOpenAI(latency=args.latency, fault_rate=args.fault_rate, port=args.port) as srv:
        print(srv.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
