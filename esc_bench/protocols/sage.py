"""The sentient-agent protocol (SAGE, Tencent 2025) as a plugin: `protocol: sage` in a task.

The seeker plays a profile (a SAGE profile, or any card) and keeps an emotion score. Its first
line is the profile's opening line (or, for a card without one, a line it writes in character).
After each supporter reply it makes two calls: `feel` (inner thoughts and an emotion change,
esc_bench.protocols.sage_prompts) and `speak` (its next line, knowing the new emotion). Each
turn's state -- emotion, change, thoughts, goodbye -- is kept in the dialogue record, so a resumed
dialogue replays its turns from the cache. The rules (start 40, change within +-10, end at 100,
below 10, on a goodbye or after 10 supporter replies) are esc_bench.protocols.sage_mechanics.
No judge: the score is the final emotion, with success and failure counted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from esc_bench.backends.base import Message
from esc_bench.protocols import sage_mechanics as rules
from esc_bench.protocols.base import (
    CallBudget,
    JudgeSeat,
    ProtocolPlugin,
    SeekerStep,
    TurnContext,
    self_score,
)
from esc_bench.protocols.sage_prompts import (
    WORDING,
    feel_messages,
    opening_messages,
    speak_messages,
    supporter_messages,
)
from esc_bench.protocols.sage_replies import (
    SageState,
    parse_feel,
    parse_opening,
    parse_speak,
)
from esc_bench.records import (
    Card,
    DialogueRecord,
    Language,
    MetricSpec,
    ProtocolSpec,
    ScoreRecord,
    TrajectorySpec,
    Turn,
)

NAME = "sage"
METRIC = "emotion"
# A malformed seeker reply is asked again this many times (each a new sample), then the turn fails.
SEEKER_RETRIES = 2

SPEC = ProtocolSpec(
    metrics=(MetricSpec(name=METRIC, low=rules.MIN_EMOTION, high=rules.MAX_EMOTION, to_100=1.0,
                        label="final emotion"),),
    average=False,
    outcomes=rules.OUTCOMES,
    judged=False,
    trajectory=TrajectorySpec(key="emotion", low=rules.MIN_EMOTION, high=rules.MAX_EMOTION, change="change",
                              note="thoughts", marks={"success": rules.SUCCESS_AT, "failure": rules.FAILURE_BELOW}),
    title="Sentient agent (SAGE)",
    note=(f"Final emotion 0–100 (start {rules.START_EMOTION}); success: final ≥ {rules.SUCCESS_AT}, "
          f"failure: final < {rules.FAILURE_BELOW}; trajectory: mean emotion at each seeker turn, "
          "a dialogue that ended keeps its final emotion."),
)


def opening_line(card: Card) -> str | None:
    """The profile's own opening line, when its source gives one (SAGE's profiles do)."""
    return card.opening.strip() if card.opening and card.opening.strip() else None


def final_emotion(dialogue: DialogueRecord) -> int | None:
    """The emotion the dialogue ended with (from its last recorded seeker state)."""
    states = [t.state for t in dialogue.transcript if t.speaker == "seeker" and t.state]
    if dialogue.state and "emotion" in dialogue.state:
        return int(dialogue.state["emotion"])
    return int(states[-1]["emotion"]) if states else None


def trajectory(dialogue: DialogueRecord) -> list[int]:
    """The emotion at each seeker turn: the opening line first."""
    return [int(t.state["emotion"]) for t in dialogue.transcript if t.speaker == "seeker" and t.state]


class SageProtocol(ProtocolPlugin):
    name = NAME
    state_model = SageState

    @property
    def spec(self) -> ProtocolSpec:
        return SPEC

    @property
    def languages(self) -> tuple[Language, ...]:
        return ("en", "zh")

    @property
    def default_rounds(self) -> int:
        return rules.MAX_REPLIES

    def fingerprint(self) -> str:
        rules_part = {k: getattr(rules, k) for k in (
            "START_EMOTION", "MIN_EMOTION", "MAX_EMOTION", "MAX_CHANGE", "SUCCESS_AT", "FAILURE_BELOW")}
        blob = json.dumps(
            {"protocol": NAME, "rules": rules_part, "retries": SEEKER_RETRIES,
             "wording": {lang: asdict(w) for lang, w in WORDING.items()}},
            sort_keys=True, ensure_ascii=False,
        )
        return f"{NAME}:{hashlib.sha256(blob.encode()).hexdigest()}"

    async def seeker_turn(self, ctx: TurnContext) -> SeekerStep:
        profile = ctx.card.base
        if not any(t.speaker == "seeker" for t in ctx.transcript):
            line = opening_line(ctx.card)
            if line is None:
                opened, _, _ = await ctx.seeker.ask_parsed(
                    opening_messages(profile, ctx.language), parse_opening, retries=SEEKER_RETRIES,
                    purpose="seeker:opening",
                )
                line = opened.line
            return SeekerStep(text=line, state=SageState(emotion=rules.START_EMOTION))
        if rules.reply_cap_reached(ctx.replies, ctx.rounds):
            return SeekerStep(text=None, end="rounds")  # the last reply is not rated (as in SAGE)
        before = ctx.state.emotion if isinstance(ctx.state, SageState) else rules.START_EMOTION
        felt, _, _ = await ctx.seeker.ask_parsed(
            feel_messages(profile, ctx.language, ctx.transcript, before), parse_feel,
            retries=SEEKER_RETRIES, purpose="seeker:feel",
        )
        emotion = rules.apply_change(before, felt.change)
        said, _, _ = await ctx.seeker.ask_parsed(
            speak_messages(profile, ctx.language, ctx.transcript, emotion, felt.thoughts, rules.emotion_end(emotion)),
            parse_speak, retries=SEEKER_RETRIES, purpose="seeker:speak",
        )
        state = SageState(emotion=emotion, change=felt.change, thoughts=felt.thoughts, goodbye=said.goodbye)
        return SeekerStep(text=said.line, state=state, end=rules.end_after_turn(emotion, said.goodbye))

    def supporter_messages(self, card: Card, language: Language, transcript: list[Turn]) -> list[Message]:
        return supporter_messages(language, transcript)

    async def score(
        self, dialogue: DialogueRecord, judge: JudgeSeat | None, names: tuple[str, ...]
    ) -> list[ScoreRecord]:
        return [self_score(dialogue, METRIC, final_emotion(dialogue)) for name in names if name == METRIC]

    def call_budget(self, rounds: int) -> CallBudget:
        # an opening line (cards without one) + feel and speak after each rated reply
        return CallBudget(seeker=1 + 2 * max(rounds - 1, 0), supporter=rounds, judge=0)


def factory(base_dir: Path | None = None) -> SageProtocol:
    return SageProtocol()
