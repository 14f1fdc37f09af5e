"""ManagedClient: limits, retries, timeouts and the cache -- applied once, around any backend.

Per call: cache lookup (before any limit) -> for each attempt: concurrency slot ->
rpm / tpm limiters -> inner.chat under `config.timeout` -> on a retryable
BackendError, release the slot and sleep (exponential backoff, full jitter, at
least `retry_after`) -> store successes in the cache. Nothing else retries.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiolimiter import AsyncLimiter

from esc_bench.backends.base import Backend, BackendError, ChatRequest, ChatResult
from esc_bench.backends.cache import ResponseCache, cache_key
from esc_bench.errors import DataError
from esc_bench.redact import redact_error, redact_result

log = logging.getLogger(__name__)


@dataclass
class CallStats:
    """Per-backend counters. Tokens and cost count only calls that reached the model."""

    calls: int = 0  # chat() calls, cache hits included
    cache_hits: int = 0
    retries: int = 0  # attempts after the first
    failures: int = 0  # calls that ended in an error
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    errors: dict[str, int] = field(default_factory=dict)  # failed attempts by kind
    on_change: Callable[[CallStats], None] | None = field(
        default=None, repr=False, compare=False
    )

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def add_result(self, result: ChatResult) -> None:
        self.calls += 1
        if result.cached:
            self.cache_hits += 1
        else:
            self.prompt_tokens += result.prompt_tokens
            self.completion_tokens += result.completion_tokens
            if result.cost is not None:
                self.cost = (self.cost or 0.0) + result.cost
        self._changed()

    def add_error(self, kind: str, final: bool) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if final:
            self.calls += 1
            self.failures += 1
        else:
            self.retries += 1
        self._changed()

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "failures": self.failures,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
            "errors": dict(self.errors),
        }


def estimate_tokens(request: ChatRequest, params: dict[str, Any]) -> int:
    """Prompt characters / 4 plus the completion budget (max_tokens)."""
    chars = sum(len(str(m.get("content", ""))) for m in request.messages)
    budget = params.get("max_tokens", params.get("max_completion_tokens")) or 0
    try:
        budget = int(budget)
    except (TypeError, ValueError):
        budget = 0
    return chars // 4 + 1 + max(budget, 0)


def bounded(result: ChatResult, max_chars: int) -> ChatResult:
    """The result with its text cut at `max_chars` (and marked cut) when it is longer."""
    if len(result.text) > max_chars:
        result.text = result.text[:max_chars]
        result.cut = True
    return result


class ManagedClient:
    """A Backend as the engine uses it (the ModelClient role): the model's limits, retries with
    backoff, per-attempt timeout, reply size limit and the response cache, around one attempt."""

    def __init__(
        self,
        inner: Backend,
        cache: ResponseCache | None = None,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        max_retry_after: float = 600.0,
        seed: int | None = None,
        stats: CallStats | None = None,
    ) -> None:
        self.config = inner.config
        self.inner = inner
        self.cache = cache
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.stats = stats if stats is not None else CallStats()
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore
        self._rpm: AsyncLimiter | None = None
        self._tpm: AsyncLimiter | None = None

    # Limits are bound to the running loop; a new loop (another asyncio.run) gets fresh ones.
    def _ensure_limits(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        cfg = self.config
        self._sem = asyncio.Semaphore(cfg.max_concurrency)
        self._rpm = None
        if cfg.rpm:
            # Smooth: a bucket of one second's worth (at least one request), not a minute's burst.
            burst = max(1.0, cfg.rpm / 60.0)
            self._rpm = AsyncLimiter(burst, burst * 60.0 / cfg.rpm)
        self._tpm = AsyncLimiter(cfg.tpm, 60.0) if cfg.tpm else None
        self._loop = loop

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def merged_params(self, request: ChatRequest) -> dict[str, Any]:
        return self.inner.merged_params(request)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to sleep after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        delay = self._rng.uniform(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    async def chat(self, request: ChatRequest) -> ChatResult:
        self._ensure_limits()
        params = self.inner.merged_params(request)
        key = None
        if self.cache is not None:
            key = cache_key(self.inner.identity(), request, params)
            hit = self.cache.get(key)
            if hit is not None:
                hit = redact_result(hit)
                self.stats.add_result(hit)
                return hit
        tokens = estimate_tokens(request, params) if self._tpm is not None else 0
        attempts_allowed = self.config.max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await self._attempt(request, tokens)
            except BackendError as err:
                redact_error(err)  # a server may quote the request's key back
                final = not err.retryable or attempt >= attempts_allowed
                self.stats.add_error(err.kind, final)
                if final:
                    err.attempts = attempt
                    raise
                await asyncio.sleep(self.backoff(attempt, err.retry_after))
                continue
            break
        result = redact_result(bounded(result, self.config.max_reply_chars))
        if self.cache is not None and key is not None:
            try:
                self.cache.put(key, result)
            except DataError as exc:
                log.warning("%s", exc)
        self.stats.add_result(result)
        return result

    async def _attempt(self, request: ChatRequest, tokens: int) -> ChatResult:
        async with self._sem:
            if self._rpm is not None:
                await self._rpm.acquire()
            if self._tpm is not None:
                await self._tpm.acquire(min(float(tokens), self._tpm.max_rate))
            try:
                async with asyncio.timeout(self.config.timeout):
                    return await self.inner.chat(request)
            except TimeoutError:
                raise BackendError(
                    "timeout", f"no reply within {self.config.timeout:g} s"
                ) from None
            except BackendError:
                raise
            except Exception as exc:  # a bug or an unexpected library error: report, don't retry
                msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
                raise BackendError("local", msg, retryable=False) from exc

    async def start(self) -> None:
        await self.inner.start()

    async def aclose(self) -> None:
        await self.inner.aclose()
