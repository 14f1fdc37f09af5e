"""One conversation: the protocol's seeker turns and the supporter's replies, until the protocol ends it."""

from __future__ import annotations

import time

from esc_bench.backends.base import BackendError, ModelClient
from esc_bench.errors import one_line
from esc_bench.protocols.base import ProtocolPlugin, Seat, TurnContext
from esc_bench.records import Card, DialogueRecord, ErrorInfo, Language, Turn, Usage


class ProtocolBug(RuntimeError):
    """A plugin broke the interface's rules (a bug in the plugin, not bad input)."""


async def run_dialogue(
    *,
    task: str,
    model: str,
    card: Card,
    language: Language,
    protocol: ProtocolPlugin,
    rounds: int,
    seeker: ModelClient,
    supporter: ModelClient,
) -> DialogueRecord:
    """The protocol's opening turns, then seeker turn / supporter reply until a seeker turn ends it.

    A failure of either side ends this dialogue as `failed` with the error recorded;
    it never raises BackendError, so other dialogues go on.
    """
    transcript = list(protocol.opening(card, language))
    usage = {"seeker": Usage(), "supporter": Usage()}
    seeker_seat = Seat(seeker, "seeker", usage["seeker"])
    supporter_seat = Seat(supporter, "supporter", usage["supporter"])
    state = protocol.initial_state(card, language)
    started = time.time()
    t0 = time.perf_counter()
    role = "seeker"
    replies = 0
    end: str | None = None

    def record(status: str, error: ErrorInfo | None) -> DialogueRecord:
        return DialogueRecord(
            task=task, model=model, card_id=card.id, language=language, source=card.source,
            category=card.res, status=status,  # type: ignore[arg-type]
            transcript=transcript, error=error, started=started,
            duration_s=round(time.perf_counter() - t0, 4), usage=usage,
            end=end, state=None if state is None else state.model_dump(mode="json"),
        )

    try:
        while end is None:
            role = "seeker"
            cut_before = seeker_seat.cut_replies
            step = await protocol.seeker_turn(
                TurnContext(card=card, language=language, transcript=list(transcript), state=state,
                            replies=replies, rounds=rounds, seeker=seeker_seat)
            )
            if step.state is not None:
                state = step.state
            if step.text is not None:
                turn_state = None if step.state is None else step.state.model_dump(mode="json")
                cut = seeker_seat.cut_replies > cut_before
                transcript.append(Turn(speaker="seeker", text=step.text, state=turn_state, cut=cut))
            if step.end is not None:
                end = step.end
                break
            if step.text is None:
                raise ProtocolBug(f"protocol {protocol.name!r}: a seeker turn with no line must end the dialogue")
            if replies > rounds:
                raise ProtocolBug(f"protocol {protocol.name!r} did not end the dialogue after {rounds} rounds")
            role = "supporter"
            cut_before = supporter_seat.cut_replies
            reply = await supporter_seat.ask(protocol.supporter_messages(card, language, transcript))
            transcript.append(Turn(speaker="supporter", text=reply, cut=supporter_seat.cut_replies > cut_before))
            replies += 1
    except BackendError as exc:
        return record("failed", ErrorInfo(type=exc.kind, message=one_line(exc.message), role=role, round=replies + 1))
    return record("ok", None)
