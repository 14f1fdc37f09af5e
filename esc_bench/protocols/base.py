"""The protocol plugin interface: everything one evaluation decides, and nothing the engine does.

A plugin decides what each role sees, what the seeker's turn is (one call, or several with a
structured state carried from turn to turn), when a dialogue ends, how a dialogue is scored
(judge calls, or a score the dialogue produced itself) and which metrics its reports show.
The engine (esc_bench.engine) schedules, limits, caches, resumes, records and reports.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from esc_bench.backends.base import BackendError, ChatRequest, ChatResult, Message, ModelClient
from esc_bench.config.schema import ModelConfig
from esc_bench.records import Card, DialogueRecord, Language, ProtocolSpec, ScoreRecord, Turn, Usage

T = TypeVar("T")

# The judge name of scores a dialogue produced itself (no judge model is called).
SELF_JUDGE = "self"


class Seat:
    """One role's line to its model: counts the role's usage; a failed call raises BackendError."""

    def __init__(self, backend: ModelClient, role: str, usage: Usage) -> None:
        self.backend = backend
        self.role = role
        self.usage = usage
        self.cut_replies = 0  # replies cut at the model's max_reply_chars (the engine marks their turns)

    async def chat(self, request: ChatRequest) -> ChatResult:
        res: ChatResult = await self.backend.chat(request)
        self.usage.add(res.prompt_tokens, res.completion_tokens, res.cost, res.cached)
        self.cut_replies += res.cut
        return res

    async def ask(self, messages: list[Message], *, purpose: str | None = None) -> str:
        res = await self.chat(ChatRequest(messages=messages, purpose=purpose or self.role))
        return res.text

    async def ask_parsed(
        self, messages: list[Message], parse: Callable[[str], T], *, retries: int, purpose: str | None = None
    ) -> tuple[T, str, int]:
        """A reply parsed strictly by `parse` (which raises ValueError on a malformed reply).

        A malformed reply is asked again as a new sample (not a cache hit), up to `retries` times;
        then the turn fails with BackendError("bad_response") -- never guessed.
        Returns (parsed, raw reply, attempts).
        """
        problem = ""
        for attempt in range(retries + 1):
            res = await self.chat(
                ChatRequest(messages=messages, sample_index=attempt, purpose=purpose or self.role)
            )
            try:
                return parse(res.text), res.text, attempt + 1
            except ValueError as exc:
                problem = str(exc)
        raise BackendError(
            "bad_response", f"malformed {self.role} reply after {retries + 1} attempt(s): {problem}", retryable=False
        )


@dataclass
class JudgeSeat:
    """The judge of a task: its managed model, name, config and re-asks."""

    backend: ModelClient
    name: str
    config: ModelConfig
    retries: int


@dataclass
class TurnContext:
    """What the plugin gets for the seeker's turn."""

    card: Card
    language: Language
    transcript: list[Turn]  # the dialogue so far, each seeker turn with its state
    state: BaseModel | None  # the state after the previous seeker turn (initial_state at first)
    replies: int  # supporter replies so far (the opening turns not counted)
    rounds: int  # the task's round cap
    seeker: Seat


@dataclass
class SeekerStep:
    """One seeker turn: its line (None = no line), its state, and whether the dialogue ends."""

    text: str | None
    state: BaseModel | None = None
    end: str | None = None  # why the dialogue ends after this turn ("rounds", "goodbye", ...)


@dataclass
class CallBudget:
    """At most this many calls per dialogue, before retries and re-asks."""

    seeker: int
    supporter: int
    judge: int


class ProtocolPlugin(abc.ABC):
    """One evaluation protocol. Subclass, then `esc_bench.protocols.registry.register` it."""

    name: str
    # The typed state a seeker turn keeps (None: stateless). Stored per turn as a plain dict.
    state_model: type[BaseModel] | None = None

    @property
    @abc.abstractmethod
    def spec(self) -> ProtocolSpec:
        """The metrics (names, scales), outcome counts and whether a judge model is called."""

    @property
    @abc.abstractmethod
    def languages(self) -> tuple[Language, ...]: ...

    @property
    @abc.abstractmethod
    def default_rounds(self) -> int: ...

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """Everything that changes requests or scores: a run folder pins it."""

    # -- dialogue -------------------------------------------------------------------

    def opening(self, card: Card, language: Language) -> list[Turn]:
        """Turns before the seeker's first line (e.g. the supporter's greeting)."""
        return []

    def initial_state(self, card: Card, language: Language) -> BaseModel | None:
        return None

    @abc.abstractmethod
    async def seeker_turn(self, ctx: TurnContext) -> SeekerStep: ...

    @abc.abstractmethod
    def supporter_messages(self, card: Card, language: Language, transcript: list[Turn]) -> list[Message]:
        """The supporter's view: never the seeker's state, never a word about being evaluated."""

    def load_state(self, data: dict[str, Any] | None) -> BaseModel | None:
        """A recorded state, typed again (records hold plain dicts)."""
        if data is None or self.state_model is None:
            return None
        return self.state_model.model_validate(data)

    # -- scoring --------------------------------------------------------------------

    def score_names(self) -> tuple[str, ...]:
        """The score records each dialogue gets (one per metric by default)."""
        return tuple(m.name for m in self.spec.metrics)

    @abc.abstractmethod
    async def score(
        self, dialogue: DialogueRecord, judge: JudgeSeat | None, names: tuple[str, ...]
    ) -> list[ScoreRecord]:
        """Score records for `names` of an ok dialogue; `judge` is None when spec.judged is False."""

    def call_budget(self, rounds: int) -> CallBudget:
        return CallBudget(seeker=rounds, supporter=rounds, judge=len(self.score_names()) if self.spec.judged else 0)

    def judge_adapters(self, judge: ModelConfig, language: Language) -> list[str]:
        """LoRA adapters a local judge must have for this protocol (none by default)."""
        return []


def self_score(dialogue: DialogueRecord, name: str, value: float | None, **kw: Any) -> ScoreRecord:
    """A score record the dialogue itself produced (no judge)."""
    return ScoreRecord(
        task=dialogue.task,
        model=dialogue.model,
        card_id=dialogue.card_id,
        judge=SELF_JUDGE,
        dimension=name,
        score=value,
        **kw,
    )
