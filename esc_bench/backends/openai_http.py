"""A thin aiohttp client for OpenAI-compatible servers (vLLM, SGLang, llama.cpp, ollama, proxies).

One attempt per call; failures become BackendError with a short, one-line message
that never holds the API key or any request header. Also home to small helpers
shared with the litellm backend (replica picking, Retry-After, message hygiene).
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import os
import re
import time
import urllib.parse
import urllib.request
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

import aiohttp

from esc_bench.backends.base import Backend, BackendError, ChatRequest, ChatResult
from esc_bench.config.providers import OPENAI_COMPATIBLE, openai_endpoint, openai_params, token_prices
from esc_bench.config.schema import HTTPModelConfig

# Provider prefixes that name an OpenAI-compatible server, not part of the model: the table's,
# and a few more spellings of local servers.
PROVIDER_PREFIXES = frozenset(OPENAI_COMPATIBLE) | {"vllm", "sglang", "llamacpp", "llama_cpp", "text-completion-openai"}

_MAX_MESSAGE = 200
_SECRETISH = re.compile(r"(?i)(bearer\s+)\S+|\bsk-[A-Za-z0-9_\-]{6,}")


# ---- helpers shared with litellm_backend ---------------------------------------------------
def strip_provider(model: str) -> str:
    prefix, sep, rest = model.partition("/")
    if sep and prefix.lower() in PROVIDER_PREFIXES and rest:
        return rest
    return model


def api_key_env_problem(config: HTTPModelConfig) -> str | None:
    """One line if `api_key_env` names a variable that is unset or empty, else None."""
    name = config.api_key_env
    if name and not os.environ.get(name, "").strip():
        who = config.name or config.model
        return f"model {who!r}: environment variable {name} is not set (api_key_env in its config)"
    return None


def read_api_key(config: HTTPModelConfig, fallback_envs: tuple[str, ...] = ()) -> str | None:
    """The key from `os.environ[config.api_key_env]` (BackendError(auth) if it is missing), or
    else from the first of the provider's usual variables that is set (None: no key)."""
    if not config.api_key_env:
        values = (os.environ.get(name, "").strip() for name in fallback_envs)
        return next((v for v in values if v), None)
    problem = api_key_env_problem(config)
    if problem:
        raise BackendError("auth", problem, retryable=False)
    return os.environ[config.api_key_env].strip()


def clean_message(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """One short line with secrets and bearer tokens removed."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    text = _SECRETISH.sub(lambda m: (m.group(1) or "") + "***", text)
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    return text


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP-date)."""
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(
    status: int, detail: str, retry_after: float | None = None, secrets: tuple[str | None, ...] = ()
) -> BackendError:
    """The BackendError for an HTTP error status (shared by both HTTP-speaking backends)."""
    msg = clean_message(f"HTTP {status}: {detail}" if detail else f"HTTP {status}", secrets)
    if status == 429:
        return BackendError("rate_limit", msg, retry_after=retry_after, status=status)
    if status in (401, 403):
        return BackendError("auth", msg, retryable=False, status=status)
    if status == 408:
        return BackendError("timeout", msg, status=status)
    if status in (400, 404, 405, 413, 422):
        return BackendError("bad_request", msg, retryable=False, status=status)
    if status >= 500:
        return BackendError("server_error", msg, retry_after=retry_after, status=status)
    return BackendError("bad_response", msg, status=status)


class ReplicaPicker:
    """Picks the base with the fewest requests in flight; ties go round-robin."""

    def __init__(self, bases: list[str | None]) -> None:
        self.bases = bases or [None]
        self.in_flight = [0] * len(self.bases)
        self._turn = itertools.count()

    def acquire(self) -> int:
        n = len(self.bases)
        if n == 1:
            i = 0
        else:
            start = next(self._turn) % n
            i = min(range(start, start + n), key=lambda j: self.in_flight[j % n]) % n
        self.in_flight[i] += 1
        return i

    def release(self, i: int) -> None:
        self.in_flight[i] -= 1


def env_proxy(url: str) -> str | None:
    """The proxy for `url` from HTTP(S)_PROXY / NO_PROXY, looked up once (not per request)."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return proxy


def _error_detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return body[:120].decode("utf-8", "replace")
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return str(err)
    return ""


def checked_content(content: Any, finish: str | None) -> str:
    """The reply text, or the BackendError a filtered, non-text or empty reply is."""
    if finish == "content_filter":
        raise BackendError("content_filter", "the provider's content filter stopped the reply")
    if content is not None and not isinstance(content, str):
        raise BackendError("bad_response", f"message content is {type(content).__name__}, not text")
    if not content or not content.strip():
        raise BackendError("empty_reply", f"empty reply (finish_reason={finish})")
    return content


def parse_completion(data: Any) -> ChatResult:
    """A ChatResult from an OpenAI chat-completion JSON body, or BackendError."""
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BackendError("bad_response", "reply has no choices[0].message") from None
    content = checked_content(content, finish)
    usage = data.get("usage") or {}
    return ChatResult(
        text=content,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=finish,
    )


_CONTENT_KEY = re.compile(rb'"content"\s*:\s*"')


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """(body, True), or (its first `limit` bytes or so, False) when it is longer: never more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65_536):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), False
    return b"".join(chunks), True


def partial_content(prefix: bytes) -> str | None:
    """The message text at the start of a chat-completion body cut short (None: none there)."""
    m = _CONTENT_KEY.search(prefix)
    if m is None:
        return None
    text = prefix[m.end():].decode("utf-8", "ignore")
    for drop in range(12):  # an escape sequence cut in the middle: drop its pieces
        try:
            return str(scanstring(text[: len(text) - drop] + '"', 0, False)[0])
        except ValueError:
            continue
    return None


# ---- the backend -----------------------------------------------------------------------------
class OpenAIHTTPBackend(Backend):
    config: HTTPModelConfig

    def __init__(self, config: HTTPModelConfig) -> None:
        super().__init__(config)
        endpoint = openai_endpoint(config.model, config.api_bases(), config.api_key_env)
        self._problem = endpoint.problem  # caught at plan time (check_credentials); here, a call fails
        bases = endpoint.bases or ["http://no-api-base"]
        self._urls = [f"{b}/chat/completions" for b in bases]
        self._proxies = [env_proxy(u) for u in self._urls]
        self._picker = ReplicaPicker(list(bases))
        self._model = endpoint.model
        self._key_envs = endpoint.key_envs
        # Priced from litellm's bundled price list (read as a file) on the provider's own service.
        self._prices = token_prices(config.model) if endpoint.own_service else None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._headers: dict[str, str] | None = None
        self._key: str | None = None
        # Room for max_reply_chars characters however they are escaped (\\uXXXX: 6 bytes), plus
        # the envelope; a longer body is a runaway and is not read further.
        self._max_bytes = 6 * config.max_reply_chars + 65_536

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # (A session from another, finished loop cannot be closed from here; drop it.)
            self._key = read_api_key(self.config, self._key_envs)
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            if self._key:
                headers["Authorization"] = f"Bearer {self._key}"
            self._headers = headers
            connector = aiohttp.TCPConnector(
                limit=self.config.max_concurrency, limit_per_host=0, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                trust_env=False,  # proxies come from env_proxy, once; trust_env costs 2 thread hops a call
            )
            self._loop = loop
        return self._session

    async def chat(self, request: ChatRequest) -> ChatResult:
        if self._problem:
            raise BackendError("bad_request", self._problem, retryable=False)
        session = self._get_session()
        payload = openai_params(self._model, dict(self.merged_params(request)))
        payload["model"] = request.adapter or self._model
        payload["messages"] = request.messages
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        i = self._picker.acquire()
        try:
            async with session.post(
                self._urls[i], data=data, headers=self._headers, proxy=self._proxies[i]
            ) as resp:
                body, whole = await _read_capped(resp, self._max_bytes)
                status = resp.status
                headers = resp.headers
        except TimeoutError:
            raise BackendError("timeout", f"no reply within {self.config.timeout:g} s") from None
        except aiohttp.InvalidURL:
            raise BackendError(
                "bad_request", f"invalid api_base URL: {self._urls[i]}", retryable=False
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise BackendError(
                "connection", f"cannot connect to {exc.host}:{exc.port}"
            ) from None
        except aiohttp.ServerDisconnectedError:
            raise BackendError("connection", "server closed the connection without a reply") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise BackendError("connection", self._clean(f"{type(exc).__name__}: {exc}")) from None
        finally:
            self._picker.release(i)
        if status == 200 and not whole:
            return self._runaway(body)
        if status != 200:
            raise error_for_status(
                status, _error_detail(body), parse_retry_after(headers), (self._key,)
            )
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            raise BackendError(
                "bad_response", self._clean(f"reply is not JSON: {body[:60]!r}"), status=status
            ) from None
        result = parse_completion(parsed)
        if self._prices is not None:
            result.cost = result.prompt_tokens * self._prices[0] + result.completion_tokens * self._prices[1]
        return result

    def _runaway(self, prefix: bytes) -> ChatResult:
        """A reply too long to read whole: the beginning of its text, marked cut."""
        text = partial_content(prefix)
        if not text:
            raise BackendError(
                "bad_response", f"reply over {self._max_bytes} bytes with no message content at its start"
            )
        return ChatResult(text=text[: self.config.max_reply_chars], cut=True, finish_reason="length")

    def _clean(self, text: str) -> str:
        return clean_message(text, (self._key,))

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()
