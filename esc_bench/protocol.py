"""The Protocol: every string and rule of one evaluation, and how requests are built.

The engine asks the protocol for each message it sends, so what each role sees is
decided here and nowhere else. Two protocols ship: `esc-eval` (upstream strings,
fetched at run time: esc_bench.data.upstream) and `esc-bench` (ours, bundled).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from esc_bench.backends.base import Message
from esc_bench.dimensions import BY_NAME
from esc_bench.records import Card, Language, Turn


class LanguageStrings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seeker_system_before_card: str
    seeker_system_after_card: str
    greeting: str
    judge_rubrics: dict[str, str]  # upstream dimension key -> rubric text
    # Optional per-language versions of the protocol-wide strings (None = use the protocol's).
    supporter_system: str | None = None
    supporter_prefix: str | None = None
    seeker_prefix: str | None = None
    judge_header: str | None = None
    judge_after_dialogue: str | None = None
    judge_ask_before: str | None = None
    judge_ask_after: str | None = None
    judge_dimension_names: dict[str, str] | None = None


class Protocol(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    rounds: int = 5
    supporter_system: str  # the supporter's system prompt (upstream: inserted when none)
    # Transcript as shown to the judge: separator.join(prefix + text), then replacements.
    supporter_prefix: str
    seeker_prefix: str
    transcript_separator: str = "\n\n"
    transcript_replacements: tuple[tuple[str, str], ...] = ()
    # Judge prompt = rubric + judge_header + dialogue.strip() + judge_after_dialogue
    #                + judge_ask_before + <dimension's name in the prompt> + judge_ask_after
    judge_header: str
    judge_after_dialogue: str
    judge_ask_before: str
    judge_ask_after: str
    judge_dimension_names: dict[str, str]  # upstream key -> name used inside the prompt
    languages: dict[str, LanguageStrings] = Field(default_factory=dict)

    def _pick(self, language: Language, field: str) -> Any:
        own = getattr(self.languages[language], field, None) if language in self.languages else None
        return own if own is not None else getattr(self, field)

    def strings(self, language: Language) -> LanguageStrings:
        try:
            return self.languages[language]
        except KeyError:
            raise KeyError(f"protocol {self.name!r} has no {language!r} strings") from None

    # -- dialogue -----------------------------------------------------------------

    def seeker_system(self, card: Card, language: Language) -> str:
        s = self.strings(language)
        return s.seeker_system_before_card + card.base + s.seeker_system_after_card

    def greeting(self, language: Language) -> str:
        return self.strings(language).greeting

    def seeker_messages(self, card: Card, language: Language, transcript: list[Turn]) -> list[Message]:
        """The seeker's view: system, the greeting as 'user', then its own lines as 'assistant'."""
        msgs: list[Message] = [{"role": "system", "content": self.seeker_system(card, language)}]
        for turn in transcript:
            role = "user" if turn.speaker == "supporter" else "assistant"
            msgs.append({"role": role, "content": turn.text})
        return msgs

    def supporter_messages(self, transcript: list[Turn], language: Language) -> list[Message]:
        """The supporter's view: its system prompt, then the dialogue without the greeting."""
        msgs: list[Message] = [{"role": "system", "content": self._pick(language, "supporter_system")}]
        for turn in transcript[1:]:
            role = "user" if turn.speaker == "seeker" else "assistant"
            msgs.append({"role": role, "content": turn.text})
        return msgs

    # -- judge --------------------------------------------------------------------

    def transcript_text(self, transcript: list[Turn], language: Language) -> str:
        sup, seek = self._pick(language, "supporter_prefix"), self._pick(language, "seeker_prefix")
        lines = [(sup if t.speaker == "supporter" else seek) + t.text for t in transcript]
        text = self.transcript_separator.join(lines)
        for old, new in self.transcript_replacements:
            text = text.replace(old, new)
        return text

    def judge_prompt(self, dimension: str, transcript: list[Turn], language: Language) -> str:
        key = BY_NAME[dimension].key
        rubric = self.strings(language).judge_rubrics[key]
        return (
            rubric
            + self._pick(language, "judge_header")
            + self.transcript_text(transcript, language).strip()
            + self._pick(language, "judge_after_dialogue")
            + self._pick(language, "judge_ask_before")
            + self._pick(language, "judge_dimension_names")[key]
            + self._pick(language, "judge_ask_after")
        )

    def judge_messages(self, dimension: str, transcript: list[Turn], language: Language) -> list[Message]:
        return [{"role": "user", "content": self.judge_prompt(dimension, transcript, language)}]
