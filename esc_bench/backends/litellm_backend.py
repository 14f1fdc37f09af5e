"""LiteLLMBackend: any provider litellm knows (OpenAI, Anthropic, Gemini, Azure, vLLM, ...).

litellm is imported lazily (it takes seconds), once, off the event loop. litellm's
own retries are switched off: ManagedClient is the only place that retries.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

from esc_bench.backends.base import Backend, BackendError, ChatRequest, ChatResult
from esc_bench.backends.openai_http import (
    ReplicaPicker,
    api_key_env_problem,
    checked_content,
    clean_message,
    error_for_status,
    parse_retry_after,
    read_api_key,
)
from esc_bench.config.providers import load_litellm, loaded_litellm
from esc_bench.config.schema import HTTPModelConfig

_LOCAL_PROVIDERS = frozenset({"ollama", "ollama_chat", "lm_studio", "llamafile"})


def missing_credentials(config: HTTPModelConfig) -> str | None:
    """One line naming a missing key, or None when the config looks usable."""
    problem = api_key_env_problem(config)
    if problem or config.api_key_env:
        return problem
    if any(b for b in config.api_bases()):
        return None  # a self-hosted server: keys are its business
    if config.model.partition("/")[0] in _LOCAL_PROVIDERS:
        return None
    litellm = load_litellm()
    try:
        env = litellm.validate_environment(model=config.model)
    except Exception:  # unknown provider: let the call itself report it
        return None
    missing = [str(k) for k in env.get("missing_keys") or []]
    if env.get("keys_in_environment") or not missing:
        return None
    who = config.name or config.model
    names = ", ".join(missing)
    return (
        f"model {who!r} ({config.model}): litellm finds no {names} in the environment; "
        "set it, or name the variable with api_key_env in the model config"
    )


def _model_for(model: str, adapter: str | None, providers: Any) -> str:
    if not adapter:
        return model
    prefix, sep, _ = model.partition("/")
    if sep and prefix in providers:
        return f"{prefix}/{adapter}"
    return adapter


class LiteLLMBackend(Backend):
    config: HTTPModelConfig

    def __init__(self, config: HTTPModelConfig) -> None:
        super().__init__(config)
        self._picker = ReplicaPicker(list(config.api_bases()))
        self._import_lock: asyncio.Lock | None = None
        self._providers: frozenset[str] = frozenset()
        self._key: str | None = None

    async def _lib(self) -> Any:
        lib = loaded_litellm()
        if lib is not None:
            return lib
        if self._import_lock is None:
            self._import_lock = asyncio.Lock()
        async with self._import_lock:
            return await asyncio.to_thread(load_litellm)

    async def chat(self, request: ChatRequest) -> ChatResult:
        litellm = await self._lib()
        if not self._providers:
            self._providers = frozenset(str(getattr(p, "value", p)) for p in litellm.provider_list)
        self._key = read_api_key(self.config)
        kwargs = dict(self.merged_params(request))
        kwargs.update(
            model=_model_for(self.config.model, request.adapter, self._providers),
            messages=request.messages,
            timeout=self.config.timeout,
            num_retries=0,
            max_retries=0,
        )
        i = self._picker.acquire()
        base = self._picker.bases[i]
        if base:
            kwargs["api_base"] = base
        if self._key:
            kwargs["api_key"] = self._key
        elif base and self.config.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
            kwargs["api_key"] = "no-key"  # a keyless OpenAI-compatible server (vLLM's "EMPTY")
        try:
            resp = await litellm.acompletion(**kwargs)
        except BackendError:
            raise
        except Exception as exc:  # every provider failure becomes a BackendError
            raise self._map_error(exc) from None
        finally:
            self._picker.release(i)
        return self._result(litellm, resp)

    def _result(self, litellm: Any, resp: Any) -> ChatResult:
        try:
            choice = resp.choices[0]
            content = choice.message.content
            finish = choice.finish_reason
        except (AttributeError, IndexError, TypeError):
            raise BackendError("bad_response", "reply has no choices[0].message") from None
        content = checked_content(content, finish)
        usage = getattr(resp, "usage", None)
        return ChatResult(
            text=content,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost=self._cost(litellm, resp),
            finish_reason=finish,
        )

    @staticmethod
    def _cost(litellm: Any, resp: Any) -> float | None:
        hidden = getattr(resp, "_hidden_params", None)
        if isinstance(hidden, dict) and "response_cost" in hidden:
            cost = hidden["response_cost"]  # litellm priced it already (None: unknown price)
        else:
            try:
                cost = litellm.completion_cost(completion_response=resp)
            except Exception:  # unknown price: no cost
                return None
        try:
            return float(cost) if cost is not None else None
        except (TypeError, ValueError):
            return None

    def _map_error(self, exc: Exception) -> BackendError:
        kind, status, retry_after = _classify(exc)
        msg = clean_message(f"{type(exc).__name__}: {_error_text(exc)}", (self._key,))
        retryable = kind not in ("auth", "bad_request")
        return BackendError(kind, msg, retryable=retryable, retry_after=retry_after, status=status)


_PREFIX = re.compile(r"^\s*(?:litellm\.)?(?:[A-Za-z]+(?:Error|Exception)|Timeout)\s*(?::|-)\s*")


def _error_text(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc)
    while True:  # "RateLimitError: RateLimitError: OpenAIException - rate limited" -> "rate limited"
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 12 and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _headers(exc: BaseException) -> Any:
    for h in (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if h:
            return h
    return None


def _classify(exc: Exception) -> tuple[str, int | None, float | None]:
    """(kind, status, retry_after) for a litellm / openai / transport exception."""
    import httpx  # litellm's dependencies, already imported by now: cheap
    import litellm.exceptions as lx
    import openai

    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    retry_after = parse_retry_after(_headers(exc))
    if isinstance(exc, lx.ContentPolicyViolationError):
        return "content_filter", status, None
    if isinstance(exc, lx.RateLimitError):
        return "rate_limit", 429, retry_after
    if isinstance(exc, (lx.Timeout, openai.APITimeoutError, asyncio.TimeoutError)):
        return "timeout", status, None
    if isinstance(exc, (lx.AuthenticationError, lx.PermissionDeniedError)):
        return "auth", status, None
    if isinstance(exc, (lx.BadRequestError, lx.NotFoundError, lx.UnprocessableEntityError)):
        return "bad_request", status, None
    if isinstance(exc, lx.APIResponseValidationError):
        return "bad_response", status, None
    if isinstance(exc, lx.APIConnectionError):
        return "connection", status, None
    if "Missing credentials" in str(exc) or "api_key client option" in str(exc):
        return "auth", None, None
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return error_for_status(status, "").kind, status, None
    # litellm reports local failures (a dropped connection, a reply that is not JSON or
    # has the wrong shape) as a 500: look at what actually happened.
    chain = _chain(exc)
    if not any(isinstance(e, (openai.APIStatusError, httpx.HTTPStatusError)) for e in chain[1:]):
        if any(isinstance(e, (openai.APITimeoutError, httpx.TimeoutException)) for e in chain):
            return "timeout", None, None
        connection = (openai.APIConnectionError, httpx.TransportError, ConnectionError)
        if any(isinstance(e, connection) for e in chain):
            return "connection", None, None
        if any(isinstance(e, ValueError) for e in chain):  # JSONDecodeError is a ValueError
            return "bad_response", None, None
        if isinstance(exc, (lx.InternalServerError, lx.APIError)) and status in (None, 500):
            return "bad_response", None, None
    if status == 408:
        return "timeout", status, None
    if status == 429:
        return "rate_limit", status, retry_after
    return "server_error", status, retry_after
