"""One conversation: the seeker and the supporter take turns for the protocol's rounds."""

from __future__ import annotations

import time
from typing import Protocol as TypingProtocol

from esc_bench.backends.base import BackendError, ChatRequest, ChatResult
from esc_bench.protocol import Protocol
from esc_bench.records import Card, DialogueRecord, ErrorInfo, Language, Turn, Usage


class ChatBackend(TypingProtocol):
    async def chat(self, request: ChatRequest) -> ChatResult: ...


async def run_dialogue(
    *,
    task: str,
    model: str,
    card: Card,
    language: Language,
    protocol: Protocol,
    rounds: int,
    seeker: ChatBackend,
    supporter: ChatBackend,
) -> DialogueRecord:
    """Greeting (seen by the seeker only), then `rounds` x (seeker line, supporter reply).

    A failure of either side ends this dialogue as `failed` with the error recorded;
    it never raises BackendError, so other dialogues go on.
    """
    transcript = [Turn(speaker="supporter", text=protocol.greeting(language))]
    usage = {"seeker": Usage(), "supporter": Usage()}
    started = time.time()
    t0 = time.perf_counter()
    role = "seeker"
    rnd = 0
    try:
        for rnd in range(1, rounds + 1):
            role = "seeker"
            res = await seeker.chat(
                ChatRequest(
                    messages=protocol.seeker_messages(card, language, transcript),
                    purpose="seeker",
                )
            )
            _count(usage["seeker"], res)
            transcript.append(Turn(speaker="seeker", text=res.text))
            role = "supporter"
            res = await supporter.chat(
                ChatRequest(messages=protocol.supporter_messages(transcript, language), purpose="supporter")
            )
            _count(usage["supporter"], res)
            transcript.append(Turn(speaker="supporter", text=res.text))
    except BackendError as exc:
        return _record(
            task, model, card, language, "failed", transcript, started, t0, usage,
            ErrorInfo(type=exc.kind, message=_one_line(exc.message), role=role, round=rnd),
        )
    return _record(task, model, card, language, "ok", transcript, started, t0, usage, None)


def _count(u: Usage, res: ChatResult) -> None:
    u.add(res.prompt_tokens, res.completion_tokens, res.cost, res.cached)


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _record(
    task: str,
    model: str,
    card: Card,
    language: Language,
    status: str,
    transcript: list[Turn],
    started: float,
    t0: float,
    usage: dict[str, Usage],
    error: ErrorInfo | None,
) -> DialogueRecord:
    return DialogueRecord(
        task=task,
        model=model,
        card_id=card.id,
        language=language,
        source=card.source,
        category=card.res,
        status=status,  # type: ignore[arg-type]
        transcript=transcript,
        error=error,
        started=started,
        duration_s=round(time.perf_counter() - t0, 4),
        usage=usage,
    )
