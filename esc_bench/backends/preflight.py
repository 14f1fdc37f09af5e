"""Preflight: one tiny call to every model endpoint a run will use, before the first dialogue.

A server that is down, a wrong key or a model the server does not serve would otherwise cost
minutes of retries and a folder of failed dialogues; here it is one line, in seconds. The calls
go to the bare backends (one attempt each, no response cache, no call counters), so they are
never part of the results. Local (hf) models need none: loading them is their check.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from esc_bench.backends.base import Backend, BackendError, ChatRequest

# A reply of any kind proves the endpoint, the key and the model: even an empty or filtered one
# (a reasoning model may spend a 1-token budget on thinking), or a 429 (busy, but it answered).
_ANSWERED = frozenset({"empty_reply", "content_filter", "rate_limit"})
_TRANSIENT = frozenset({"server_error", "bad_response"})  # asked again, briefly
_TRIES = 3
_PROBE = [{"role": "user", "content": "Hi"}]


@dataclass(frozen=True)
class Probe:
    """One endpoint to check: the model's name, its bare backend, and the adapter its calls use."""

    name: str
    backend: Backend
    adapter: str | None = None


async def preflight(probes: list[Probe]) -> list[str]:
    """Check every probe at once; one line per endpoint that failed (empty: all answered)."""
    found = await asyncio.gather(*(_check(p) for p in _distinct(probes)))
    return [line for line in found if line]


def _distinct(probes: list[Probe]) -> list[Probe]:
    seen: dict[tuple[str, str | None], Probe] = {}
    for p in probes:
        if p.backend.config.backend == "hf":
            continue
        key = (repr(sorted(p.backend.identity().items(), key=str)), p.adapter)
        seen.setdefault(key, p)
    return list(seen.values())


async def _check(probe: Probe) -> str | None:
    params = {"max_tokens": 1}
    request = ChatRequest(messages=list(_PROBE), params=params, adapter=probe.adapter, purpose="preflight")
    timeout = probe.backend.config.timeout
    for attempt in range(1, _TRIES + 1):
        try:
            async with asyncio.timeout(timeout):
                await probe.backend.chat(request)
            return None
        except TimeoutError:
            err = BackendError("timeout", f"no reply within {timeout:g} s")
        except BackendError as exc:
            err = exc
        if err.kind in _ANSWERED:
            return None
        if err.kind not in _TRANSIENT or attempt == _TRIES:
            break
        await asyncio.sleep(0.5 * attempt)
    where = f" (adapter {probe.adapter})" if probe.adapter else ""
    return f"model {probe.name!r}{where}: {err.message}"
