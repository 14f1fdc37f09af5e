"""What the sentient seeker answers and keeps: strict reply formats and the per-turn state.

Each seeker call answers with one JSON object and nothing else (one surrounding markdown code
fence is tolerated). A reply that is not exactly that -- extra prose, a missing or unknown key, a
wrong type, a change outside [-10, +10], an empty line -- raises ValueError with a short reason:
the engine asks again (a new sample, not a cache hit), then records the turn as failed. Nothing
is ever guessed from a malformed reply.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from esc_bench.protocols.sage_mechanics import MAX_CHANGE, MAX_EMOTION, MIN_EMOTION

_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(.*)\n```\Z", re.DOTALL)


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _non_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("is empty")
    return v.strip()


Text = Annotated[StrictStr, AfterValidator(_non_blank)]


class FeelReply(_Reply):
    """After a supporter reply: the seeker's inner thoughts and its emotion change."""

    thoughts: Text
    change: StrictInt = Field(ge=-MAX_CHANGE, le=MAX_CHANGE)


class SpeakReply(_Reply):
    """The seeker's next line, and whether it says goodbye."""

    line: Text
    goodbye: StrictBool


class OpeningReply(_Reply):
    """The seeker's first line, when the profile has none (ESC-Eval cards)."""

    line: Text


class SageState(BaseModel):
    """What a seeker turn keeps in the dialogue record (never shown to the supporter)."""

    model_config = ConfigDict(extra="forbid")

    emotion: int = Field(ge=MIN_EMOTION, le=MAX_EMOTION)  # after this turn
    change: int | None = None  # None on the opening turn
    thoughts: str | None = None  # None on the opening turn
    goodbye: bool = False


R = TypeVar("R", bound=_Reply)


def _json_object(text: str) -> dict[str, Any]:
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ValueError("the reply is not one JSON object")
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise ValueError("invalid JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise ValueError("the reply is not one JSON object")
    return obj


def parse_reply(text: str, model: type[R]) -> R:
    """`text` as `model`, or ValueError with one short reason."""
    obj = _json_object(text)
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "reply"
        raise ValueError(f"field {field!r}: {err['msg']}") from None


def parse_feel(text: str) -> FeelReply:
    return parse_reply(text, FeelReply)


def parse_speak(text: str) -> SpeakReply:
    return parse_reply(text, SpeakReply)


def parse_opening(text: str) -> OpeningReply:
    return parse_reply(text, OpeningReply)
