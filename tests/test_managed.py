"""ManagedClient: retries, limits, timeouts, cache -- and the registry."""

from __future__ import annotations

import asyncio
import time

import pytest

from esc_bench.backends.base import Backend, BackendError, ChatRequest, ChatResult
from esc_bench.backends.cache import ResponseCache
from esc_bench.backends.managed import CallStats, ManagedClient, estimate_tokens
from esc_bench.backends.openai_http import OpenAIHTTPBackend
from esc_bench.backends.registry import check_credentials, make_backend, make_client
from esc_bench.config.schema import ModelConfig
from esc_bench.errors import UserError
from tests.support.fake_openai import RETRYABLE_FAULTS

HI = [{"role": "user", "content": "I can't sleep."}]
FAST = dict(backoff_base=0.01, backoff_cap=0.05, seed=1)




def cfg(url, **kw) -> ModelConfig:
    base = dict(name="m", backend="openai", model="openai/sup", api_base=url, timeout=5)
    base.update(kw)
    return ModelConfig(**base)


def managed(url, cache=None, **kw) -> ManagedClient:
    return ManagedClient(OpenAIHTTPBackend(cfg(url, **kw)), cache, **FAST)


@pytest.mark.parametrize("fault", RETRYABLE_FAULTS)
async def test_retryable_fault_is_retried_then_succeeds(srv, fault):
    mb = managed(srv.url, timeout=0.3)
    srv.queue_faults(fault, fault)
    try:
        r = await mb.chat(ChatRequest(HI))
    finally:
        await mb.aclose()
    assert "(sup)" in r.text
    assert srv.n_requests == 3
    assert mb.stats.retries == 2 and mb.stats.failures == 0 and mb.stats.calls == 1
    assert sum(mb.stats.errors.values()) == 2


@pytest.mark.parametrize("fault", ["auth", "bad_request"])
async def test_non_retryable_is_not_retried(srv, fault):
    mb = managed(srv.url)
    srv.queue_faults(fault)
    with pytest.raises(BackendError) as ei:
        await mb.chat(ChatRequest(HI))
    await mb.aclose()
    assert ei.value.attempts == 1 and srv.n_requests == 1
    assert mb.stats.failures == 1 and mb.stats.retries == 0


async def test_last_error_reraised_after_max_retries(srv):
    mb = managed(srv.url, max_retries=2)
    srv.queue_faults("server_error", "unavailable", "server_error", None)
    with pytest.raises(BackendError) as ei:
        await mb.chat(ChatRequest(HI))
    await mb.aclose()
    assert ei.value.kind == "server_error" and ei.value.status == 500
    assert ei.value.attempts == 3 and srv.n_requests == 3


async def test_retry_after_is_honoured(srv):
    srv.retry_after = "0.6"
    mb = managed(srv.url)
    srv.queue_faults("rate_limit")
    t0 = time.perf_counter()
    await mb.chat(ChatRequest(HI))
    elapsed = time.perf_counter() - t0
    await mb.aclose()
    first, second = srv.requests
    assert second.time - first.time >= 0.58 and elapsed >= 0.58


def test_backoff_full_jitter_and_bounds():
    mb = ManagedClient(OpenAIHTTPBackend(cfg("http://x")), backoff_base=1, backoff_cap=8, seed=3)
    delays = [mb.backoff(a, None) for a in range(1, 10) for _ in range(20)]
    assert min(delays) >= 0 and max(delays) <= 8
    assert all(0 <= mb.backoff(1, None) <= 1 for _ in range(50))
    assert mb.backoff(1, 5.0) >= 5.0
    mb.max_retry_after = 30
    assert mb.backoff(1, 3600) == 30
    again = ManagedClient(OpenAIHTTPBackend(cfg("http://x")), backoff_base=1, backoff_cap=8, seed=3)
    assert [again.backoff(a, None) for a in range(1, 10) for _ in range(20)] == delays


async def test_rpm_limits_request_rate(srv):
    mb = managed(srv.url, rpm=1200)  # 20/s, a burst of one second's worth (20)
    t0 = time.perf_counter()
    await asyncio.gather(*(mb.chat(ChatRequest(HI)) for _ in range(40)))
    elapsed = time.perf_counter() - t0
    await mb.aclose()
    times = sorted(r.time for r in srv.requests)
    assert elapsed >= 0.95  # 40 requests, 20 at once, then 20/s: the last leaves at >= 1.0 s
    assert times[-1] - times[0] >= 0.6  # (the server sees it too; slack for slow connects)
    assert elapsed < 3.0


async def test_tpm_acquires_estimated_tokens_capped(srv):
    mb = managed(srv.url, tpm=1000, generation={"max_tokens": 300})
    amounts = []

    class Recorder:
        max_rate = 1000.0

        async def acquire(self, amount=1.0):
            amounts.append(amount)

    mb._ensure_limits()
    mb._tpm = Recorder()  # type: ignore[assignment]
    await mb.chat(ChatRequest([{"role": "user", "content": "x" * 400}]))
    await mb.chat(ChatRequest(HI, params={"max_tokens": 5000}))
    await mb.aclose()
    assert amounts == [400 // 4 + 1 + 300, 1000.0]
    assert estimate_tokens(ChatRequest(HI), {}) == len(HI[0]["content"]) // 4 + 1


async def test_max_concurrency_bounds_in_flight_at_server(srv):
    srv.latency = 0.05
    mb = managed(srv.url, max_concurrency=3)
    await asyncio.gather(*(mb.chat(ChatRequest(HI)) for _ in range(20)))
    await mb.aclose()
    assert srv.max_in_flight == 3


class Sleepy(Backend):
    """Hangs on the first `hangs` calls, then answers."""

    def __init__(self, config: ModelConfig, hangs: int = 1) -> None:
        super().__init__(config)
        self.hangs = hangs
        self.calls = 0

    async def chat(self, request: ChatRequest) -> ChatResult:
        self.calls += 1
        if self.calls <= self.hangs:
            await asyncio.sleep(30)
        return ChatResult(text="ok", prompt_tokens=3, completion_tokens=1, cost=0.5)


async def test_per_attempt_timeout_then_retry():
    mb = ManagedClient(Sleepy(cfg(None, timeout=0.2)), **FAST)
    t0 = time.perf_counter()
    r = await mb.chat(ChatRequest(HI))
    assert r.text == "ok" and 0.2 <= time.perf_counter() - t0 < 1.0
    assert mb.stats.errors == {"timeout": 1} and mb.stats.cost == 0.5


async def test_timeout_final_error_and_unexpected_exception():
    mb = ManagedClient(Sleepy(cfg(None, timeout=0.1, max_retries=1), hangs=5), **FAST)
    with pytest.raises(BackendError) as ei:
        await mb.chat(ChatRequest(HI))
    assert ei.value.kind == "timeout" and ei.value.attempts == 2

    class Broken(Backend):
        async def chat(self, request):
            raise ZeroDivisionError("boom")

    mb = ManagedClient(Broken(cfg(None)), **FAST)
    with pytest.raises(BackendError) as ei:
        await mb.chat(ChatRequest(HI))
    assert ei.value.kind == "local" and not ei.value.retryable and "boom" in str(ei.value)


async def test_cache_hit_skips_server_and_sampling_misses(srv, tmp_path):
    cache = ResponseCache(tmp_path / "r.sqlite")
    seen = []
    stats = CallStats(on_change=lambda s: seen.append(s.calls))
    mb = ManagedClient(OpenAIHTTPBackend(cfg(srv.url)), cache, stats=stats, **FAST)
    a = await mb.chat(ChatRequest(HI))
    b = await mb.chat(ChatRequest(HI))  # the same call again: a hit
    assert srv.n_requests == 1 and b.cached and not a.cached and b.text == a.text
    hot = {"temperature": 0.9}
    await mb.chat(ChatRequest(HI, params=hot, sample_index=0))
    await mb.chat(ChatRequest(HI, params=hot, sample_index=1))
    await mb.chat(ChatRequest(HI, params=hot, sample_index=1))
    assert srv.n_requests == 3
    assert stats.cache_hits == 2 and stats.calls == 5 and seen == [1, 2, 3, 4, 5]
    srv.queue_faults("auth")  # failures are not cached
    with pytest.raises(BackendError):
        await mb.chat(ChatRequest([{"role": "user", "content": "new"}]))
    assert len(cache) == 3
    await mb.aclose()
    assert cache.get("nope") is None  # aclose leaves the cache open
    cache.close()


@pytest.mark.slow
async def test_thousand_concurrent_calls_with_latency(srv):
    srv.latency = 0.2
    mb = managed(srv.url, max_concurrency=1000)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(mb.chat(ChatRequest(HI)) for _ in range(1000)))
    elapsed = time.perf_counter() - t0
    await mb.aclose()
    assert len(results) == 1000 and srv.max_in_flight > 500
    assert elapsed < 4.0, elapsed


async def test_registry(monkeypatch, srv):
    b = make_backend(cfg(srv.url))
    assert isinstance(b, OpenAIHTTPBackend)
    lite = make_backend(cfg(srv.url, backend="litellm"))
    assert type(lite).__name__ == "LiteLLMBackend"
    m = make_client(cfg(srv.url), None, **FAST)
    assert isinstance(m, ManagedClient) and (await m.chat(ChatRequest(HI))).text
    await m.aclose()
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(UserError, match="NOPE_KEY"):
        check_credentials(cfg(srv.url, api_key_env="NOPE_KEY"))
    monkeypatch.setenv("NOPE_KEY", "k")
    check_credentials(cfg(srv.url, api_key_env="NOPE_KEY"))
    check_credentials(cfg(srv.url))  # keyless self-hosted server
    check_credentials(ModelConfig(name="h", backend="hf", model="org/some-model"))  # a hub id: no key
    with pytest.raises(UserError, match="does not exist"):
        check_credentials(ModelConfig(name="h", backend="hf", model="/some/path"))
