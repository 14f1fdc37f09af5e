"""OpenAIHTTPBackend against the real loopback fake server."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import socket
import time

import pytest

from esc_bench.backends.base import BackendError, ChatRequest
from esc_bench.backends.openai_http import (
    OpenAIHTTPBackend,
    ReplicaPicker,
    clean_message,
    error_for_status,
    parse_retry_after,
    strip_provider,
)
from esc_bench.config.schema import ModelConfig
from tests.support.fake_openai import ALL_FAULTS, FakeOpenAI

KEY = "sk-planted-SECRET-0123456789"
HI = [{"role": "user", "content": "I feel lonely lately."}]

# fault -> (kind, retryable)
EXPECTED = {
    "rate_limit": ("rate_limit", True),
    "rate_limit_no_header": ("rate_limit", True),
    "server_error": ("server_error", True),
    "unavailable": ("server_error", True),
    "garbage": ("bad_response", True),
    "wrong_shape": ("bad_response", True),
    "empty": ("empty_reply", True),
    "content_filter": ("content_filter", True),
    "hang": ("timeout", True),
    "drop": ("connection", True),
    "auth": ("auth", False),
    "bad_request": ("bad_request", False),
}




def cfg(url, **kw) -> ModelConfig:
    base = dict(name="m", backend="openai", model="hosted_vllm/base-model", api_base=url, timeout=5)
    base.update(kw)
    return ModelConfig(**base)


async def test_reply_usage_params_and_prefix(srv):
    b = OpenAIHTTPBackend(cfg(srv.url, generation={"temperature": 0.7, "max_tokens": 50}))
    try:
        r = await b.chat(ChatRequest(HI, params={"max_tokens": 20}))
    finally:
        await b.aclose()
    assert "(base-model)" in r.text and r.prompt_tokens > 0 and r.completion_tokens > 0
    assert r.finish_reason == "stop" and not r.cached
    (req,) = srv.requests
    assert req.path == "/v1/chat/completions"
    assert req.body == {
        "model": "base-model",
        "messages": HI,
        "temperature": 0.7,
        "max_tokens": 20,
    }
    assert "Authorization" not in req.headers


async def test_adapter_key_and_unicode(srv, monkeypatch):
    monkeypatch.setenv("PLANTED_KEY", KEY)
    b = OpenAIHTTPBackend(cfg(srv.url, api_key_env="PLANTED_KEY"))
    msgs = [{"role": "user", "content": "我最近压力很大。"}]
    try:
        r = await b.chat(ChatRequest(msgs, adapter="empathy_en"))
    finally:
        await b.aclose()
    assert "(empathy_en)" in r.text
    (req,) = srv.requests
    assert req.body["model"] == "empathy_en" and req.body["messages"] == msgs
    assert req.headers["Authorization"] == f"Bearer {KEY}"


async def test_missing_key_env_is_auth_error_without_request(srv, monkeypatch):
    monkeypatch.delenv("PLANTED_KEY", raising=False)
    b = OpenAIHTTPBackend(cfg(srv.url, api_key_env="PLANTED_KEY"))
    with pytest.raises(BackendError) as ei:
        await b.chat(ChatRequest(HI))
    await b.aclose()
    assert ei.value.kind == "auth" and not ei.value.retryable
    assert "PLANTED_KEY" in str(ei.value)
    assert srv.n_requests == 0


@pytest.mark.parametrize("fault", ALL_FAULTS)
async def test_each_fault_is_classified(srv, monkeypatch, fault):
    monkeypatch.setenv("PLANTED_KEY", KEY)
    b = OpenAIHTTPBackend(cfg(srv.url, api_key_env="PLANTED_KEY", timeout=0.3))
    srv.queue_faults(fault)
    try:
        with pytest.raises(BackendError) as ei:
            await b.chat(ChatRequest(HI))
        # the connection pool is still usable after any fault
        assert (await b.chat(ChatRequest(HI))).text
    finally:
        await b.aclose()
    err = ei.value
    assert (err.kind, err.retryable) == EXPECTED[fault]
    text = f"{err} {err.message!r} {err.args!r}"
    assert KEY not in text and "Bearer" not in text and "Authorization" not in text
    assert "\n" not in err.message and len(err.message) <= 200
    if fault == "rate_limit":
        assert err.retry_after == 0.0 and err.status == 429
    if fault == "rate_limit_no_header":
        assert err.retry_after is None


async def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIHTTPBackend(cfg(f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(BackendError) as ei:
        await b.chat(ChatRequest(HI))
    await b.aclose()
    assert ei.value.kind == "connection" and ei.value.retryable


async def test_replicas_spread_load():
    with FakeOpenAI(latency=0.05) as a, FakeOpenAI(latency=0.05) as c:
        b = OpenAIHTTPBackend(cfg([a.url, c.url]))
        try:
            await asyncio.gather(*(b.chat(ChatRequest(HI)) for _ in range(20)))
            assert (a.n_requests, c.n_requests) == (10, 10)
            for _ in range(6):  # idle replicas tie: round-robin
                await b.chat(ChatRequest(HI))
            assert (a.n_requests, c.n_requests) == (13, 13)
        finally:
            await b.aclose()


@pytest.mark.filterwarnings("ignore:Unclosed:ResourceWarning")
def test_session_survives_a_new_event_loop(srv):
    b = OpenAIHTTPBackend(cfg(srv.url))

    async def once():
        return (await b.chat(ChatRequest(HI))).text

    assert asyncio.run(once()) == asyncio.run(once())  # the first loop's session is dropped
    asyncio.run(b.aclose())
    assert srv.n_requests == 2
    gc.collect()  # report the dropped session here, not in a later test


def test_helpers():
    assert strip_provider("openai/gpt-x") == "gpt-x"
    assert strip_provider("hosted_vllm/meta-llama/Llama-3") == "meta-llama/Llama-3"
    assert strip_provider("meta-llama/Llama-3") == "meta-llama/Llama-3"
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after({"retry-after": date}) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0
    err = error_for_status(401, f"Incorrect API key provided: {KEY}", secrets=(KEY,))
    assert err.kind == "auth" and KEY not in str(err)
    assert "sk-" not in clean_message("bad key sk-abcdefghijkl and Bearer xyz\nline2")
    assert "\n" not in clean_message("a\nb")
    assert error_for_status(408, "").kind == "timeout"
    assert error_for_status(404, "").retryable is False
    assert error_for_status(502, "").kind == "server_error"


def test_replica_picker_least_loaded():
    p = ReplicaPicker(["a", "b", "c"])
    first = [p.acquire() for _ in range(3)]
    assert sorted(first) == [0, 1, 2]
    p.release(1)
    assert p.acquire() == 1


def test_env_proxy_is_resolved_once_and_honours_no_proxy(monkeypatch):
    from esc_bench.backends.openai_http import env_proxy

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert env_proxy("https://api.example.com/v1/chat/completions") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.local:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert env_proxy("https://api.example.com/v1/chat/completions") == "http://proxy.local:3128"
    assert env_proxy("https://127.0.0.1:8000/v1/chat/completions") is None
    assert env_proxy("http://api.example.com/v1") is None  # no HTTP_PROXY


async def test_fake_server_reply_policy(srv):
    b = OpenAIHTTPBackend(cfg(srv.url, model="judge-model"))
    s1 = OpenAIHTTPBackend(cfg(srv.url, model="sup-a"))
    s2 = OpenAIHTTPBackend(cfg(srv.url, model="sup-b"))
    try:
        scores = [(await b.chat(ChatRequest([{"role": "user", "content": f"d{i}"}]))).text for i in range(20)]
        assert all(s in {"0", "1", "2", "3", "4"} for s in scores) and len(set(scores)) > 1
        ask = [{"role": "user", "content": "Please give a score from 0 to 4."}]
        assert (await s1.chat(ChatRequest(ask))).text in {"0", "1", "2", "3", "4"}
        a1, a2 = (await s1.chat(ChatRequest(HI))).text, (await s1.chat(ChatRequest(HI))).text
        bb = (await s2.chat(ChatRequest(HI))).text
        assert a1 == a2 and a1 != bb and "sup-a" in a1 and "sup-b" in bb
    finally:
        for x in (b, s1, s2):
            await x.aclose()


async def test_fake_server_custom_reply_and_seeded_faults():
    calls = []

    def reply(body):
        calls.append(body["model"])
        if body["model"] == "raw":
            return {"choices": [{"message": {"content": "raw body"}, "finish_reason": "stop"}]}
        return "custom"

    with FakeOpenAI(reply=reply) as srv:
        b = OpenAIHTTPBackend(cfg(srv.url, model="x"))
        r = OpenAIHTTPBackend(cfg(srv.url, model="raw"))
        assert (await b.chat(ChatRequest(HI))).text == "custom"
        res = await r.chat(ChatRequest(HI))
        assert res.text == "raw body" and res.prompt_tokens == 0
        await b.aclose()
        await r.aclose()

    async def run(seed):
        with FakeOpenAI(fault_rate=0.5, fault_seed=seed, faults=("server_error",)) as srv:
            b = OpenAIHTTPBackend(cfg(srv.url))
            out = []
            for _ in range(30):
                try:
                    await b.chat(ChatRequest(HI))
                    out.append("ok")
                except BackendError as e:
                    out.append(e.kind)
            await b.aclose()
            return out, dict(srv.counts)

    first, counts = await run(5)
    assert (await run(5))[0] == first and 5 < first.count("server_error") < 25
    assert counts["server_error"] == first.count("server_error")
