"""The two roles of a model in esc-bench, and what they exchange.

- `Backend`: talks to one model, ONE attempt per call (BackendError on failure). One subclass per
  kind of model: openai_http (thin OpenAI-API client), litellm_backend, hf (local weights).
- `ModelClient`: what the engine and the protocols talk to: a Backend behind the model's limits,
  retries, timeout, reply size limit and the response cache (managed.ManagedClient), applied once.

Both are built by registry.make_client(config) (make_backend(config) for the bare Backend).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Protocol

from esc_bench.config.schema import ModelConfig

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


@dataclass
class ChatRequest:
    messages: list[Message]
    params: dict[str, Any] = field(default_factory=dict)  # overrides config.generation
    adapter: str | None = None  # LoRA adapter (hf) or served LoRA name (vLLM)
    score_labels: tuple[str, ...] | None = None  # ask for P(label) at the first token
    sample_index: int = 0  # distinguishes repeated samples at temperature > 0
    purpose: str = ""  # "seeker" | "supporter" | "judge:<dimension>": logs and stats only


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    cached: bool = False
    finish_reason: str | None = None
    label_probs: dict[str, float] | None = None  # only when score_labels was asked for
    cut: bool = False  # the reply was longer than the model's max_reply_chars and was cut there


class BackendError(Exception):
    """One failed attempt. `kind` names the failure for records and summaries."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        # rate_limit | server_error | timeout | connection | bad_response | empty_reply | content_filter | auth
        # | bad_request | local
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        self.attempts = 1  # set by the managed backend after its last retry

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class ModelClient(Protocol):
    """One model as the engine and protocols use it (managed.ManagedClient): retried, limited, cached."""

    async def chat(self, request: ChatRequest) -> ChatResult: ...


class Backend(abc.ABC):
    """Talks to one model. Subclasses implement `chat` (one attempt)."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    @abc.abstractmethod
    async def chat(self, request: ChatRequest) -> ChatResult: ...

    async def start(self) -> None:  # optional hook
        """Get ready before the first call (a local model loads here), outside any call's timeout."""
        return None

    async def aclose(self) -> None:  # optional hook
        return None

    def identity(self) -> dict[str, Any]:
        """What makes two calls interchangeable (the cache key); never secrets."""
        return {
            "backend": self.config.backend,
            "model": self.config.model,
            "api_base": getattr(self.config, "api_base", None),  # HTTP backends have one
        }

    def merged_params(self, request: ChatRequest) -> dict[str, Any]:
        params = dict(self.config.generation)
        params.update(request.params)
        return params
