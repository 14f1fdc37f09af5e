"""SAGE's published result files (`SAGE/dataset/<simulator>_based_simulator/<model>_result.jsonl`).

One JSON object a line, one dialogue each: `id` (the profile's), the final `emo_point` (0-100)
and `emo_state`, the profile fields (`player`, `scene`, `character`, `topic`, `task`, `target`)
and `history`, which alternates seeker turns (`role: user`: `content`, `emotion-point` and,
after the first, `thinking` and `planning` with its `activity` and `change`) and supporter
turns (`role: assistant`: `content`). Parsed strictly: anything else is one error naming the
file and line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from esc_bench.errors import DataError, parse_json, read_text
from esc_bench.protocols.sage_mechanics import MAX_EMOTION, MIN_EMOTION

# SAGE's own parser leaves the section label in front of a planning field ("心理活动]\n...").
_LABEL = re.compile(r"\A[^\]\n]{1,30}\]\s*")


class PublishedTurn(BaseModel):
    model_config = ConfigDict(frozen=True)

    speaker: str  # "seeker" | "supporter"
    text: str
    emotion: int | None = None  # seeker turns: emotion after the turn
    change: int | None = None  # seeker turns after the first: the change the agent reported
    thoughts: str | None = None  # seeker turns after the first: its inner activity


class PublishedDialogue(BaseModel):
    """One dialogue of a SAGE result file."""

    model_config = ConfigDict(frozen=True)

    id: str
    final_emotion: int
    emo_state: str | None
    character: str | None  # the profile's main character type
    topic: str | None
    turns: tuple[PublishedTurn, ...]

    @property
    def trajectory(self) -> list[int]:
        """The emotion at each seeker turn (the opening line first)."""
        return [t.emotion for t in self.turns if t.speaker == "seeker" and t.emotion is not None]

    @property
    def replies(self) -> int:
        return sum(1 for t in self.turns if t.speaker == "supporter")


class _Bad(Exception):
    pass


def _emotion(value: Any, what: str) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{what} is {value!r}, not a whole number")
    if not MIN_EMOTION <= value <= MAX_EMOTION:
        raise _Bad(f"{what} {value} is outside {MIN_EMOTION}-{MAX_EMOTION}")
    return value


def _opt_str(obj: dict[str, Any], key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise _Bad(f"{what} '{key}' is {type(value).__name__}, not text")
    return value


def _turn(i: int, item: Any) -> PublishedTurn:
    where = f"history[{i}]"
    if not isinstance(item, dict):
        raise _Bad(f"{where} is {type(item).__name__}, not an object")
    role, content = item.get("role"), item.get("content")
    if role not in ("user", "assistant"):
        raise _Bad(f"{where} role is {role!r}, not 'user' or 'assistant'")
    if not isinstance(content, str):
        raise _Bad(f"{where} has no text 'content'")
    if role == "assistant":
        return PublishedTurn(speaker="supporter", text=content)
    if "emotion-point" not in item:
        raise _Bad(f"{where} (a seeker turn) has no 'emotion-point'")
    emotion = _emotion(item["emotion-point"], f"{where} emotion-point")
    planning = item.get("planning")
    change, thoughts = None, None
    if planning is not None:
        if not isinstance(planning, dict):
            raise _Bad(f"{where} planning is {type(planning).__name__}, not an object")
        if "change" in planning:
            raw = planning["change"]
            if isinstance(raw, str) and raw.strip().lstrip("+-").isdigit():
                raw = int(raw.strip())
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise _Bad(f"{where} planning change is {raw!r}, not a whole number")
            change = raw
        activity = _opt_str(planning, "activity", f"{where} planning")
        thoughts = _LABEL.sub("", activity).strip() if activity else None
    _opt_str(item, "thinking", where)
    return PublishedTurn(speaker="seeker", text=content, emotion=emotion, change=change, thoughts=thoughts)


def _dialogue(obj: Any) -> PublishedDialogue:
    if not isinstance(obj, dict):
        raise _Bad(f"a dialogue must be a JSON object, got {type(obj).__name__}")
    did = obj.get("id")
    if isinstance(did, int) and not isinstance(did, bool):
        did = str(did)
    if not isinstance(did, str) or not did.strip():
        raise _Bad("no 'id'")
    if "emo_point" not in obj:
        raise _Bad(f"dialogue {did}: no 'emo_point'")
    final = _emotion(obj["emo_point"], f"dialogue {did}: emo_point")
    history = obj.get("history")
    if not isinstance(history, list) or not history:
        raise _Bad(f"dialogue {did}: 'history' is not a non-empty list")
    try:
        turns = tuple(_turn(i, item) for i, item in enumerate(history))
    except _Bad as exc:
        raise _Bad(f"dialogue {did}: {exc}") from None
    for i, t in enumerate(turns):
        want = "seeker" if i % 2 == 0 else "supporter"
        if t.speaker != want:
            raise _Bad(f"dialogue {did}: history[{i}] is a {t.speaker} turn where a {want} turn belongs "
                       "(the seeker opens and the two alternate)")
    last = [t for t in turns if t.speaker == "seeker"][-1]
    if last.emotion != final:
        raise _Bad(
            f"dialogue {did}: emo_point {final} differs from the last seeker turn's emotion-point {last.emotion}"
        )
    return PublishedDialogue(
        id=did,
        final_emotion=final,
        emo_state=_opt_str(obj, "emo_state", f"dialogue {did}:"),
        character=_opt_str(obj, "character", f"dialogue {did}:"),
        topic=_opt_str(obj, "topic", f"dialogue {did}:"),
        turns=turns,
    )


def parse_result_file(path: Path) -> list[PublishedDialogue]:
    """The dialogues of a SAGE result file, or a DataError naming the file and line."""
    path = Path(path)
    text = read_text(path, what="SAGE result file")
    out: list[PublishedDialogue] = []
    first_at: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj = parse_json(line, str(path), line=n)
        try:
            d = _dialogue(obj)
        except _Bad as exc:
            raise DataError(f"{path}:{n}: {exc}") from None
        if d.id in first_at:
            raise DataError(f"{path}:{n}: duplicate dialogue id {d.id!r} (first at line {first_at[d.id]})")
        first_at[d.id] = n
        out.append(d)
    if not out:
        raise DataError(f"{path}: no dialogues in the file")
    return out
