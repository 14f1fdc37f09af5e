"""The rubric protocols: `esc-eval` (upstream strings), `esc-bench` (ours) and protocol YAML files.

Their shape: the supporter greets, then the seeker and the supporter alternate for the task's
rounds; each dialogue is then judged once per dimension, 0-4. Every string comes from the
`Protocol` string set (esc_bench.protocol), so upstream requests stay byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable

from esc_bench.backends.base import Message
from esc_bench.config.schema import ModelConfig
from esc_bench.dimensions import DIMENSIONS
from esc_bench.protocol import Protocol
from esc_bench.protocols.base import JudgeSeat, ProtocolPlugin, SeekerStep, TurnContext
from esc_bench.protocols.rubric_judge import judge_dialogue
from esc_bench.records import ESC_EVAL_SPEC, Card, DialogueRecord, Language, ProtocolSpec, ScoreRecord, Turn


class RubricProtocol(ProtocolPlugin):
    """The strings load on first use (esc-eval's may download), so a plan checks models and
    keys before any download."""

    def __init__(self, load: Callable[[], Protocol]) -> None:
        self._load = load
        self._strings: Protocol | None = None

    @property
    def strings(self) -> Protocol:
        if self._strings is None:
            self._strings = self._load()
        return self._strings

    @property
    def name(self) -> str:  # type: ignore[override]  # read-only here: the name comes with the strings
        return self.strings.name

    @property
    def spec(self) -> ProtocolSpec:
        return ESC_EVAL_SPEC

    @property
    def languages(self) -> tuple[Language, ...]:
        return tuple(self.strings.languages)  # type: ignore[arg-type]

    @property
    def default_rounds(self) -> int:
        return self.strings.rounds

    def fingerprint(self) -> str:
        return self.strings.model_dump_json()

    def opening(self, card: Card, language: Language) -> list[Turn]:
        return [Turn(speaker="supporter", text=self.strings.greeting(language))]

    async def seeker_turn(self, ctx: TurnContext) -> SeekerStep:
        if ctx.replies >= ctx.rounds:
            return SeekerStep(text=None, end="rounds")
        text = await ctx.seeker.ask(self.strings.seeker_messages(ctx.card, ctx.language, ctx.transcript))
        return SeekerStep(text=text)

    def supporter_messages(self, card: Card, language: Language, transcript: list[Turn]) -> list[Message]:
        return self.strings.supporter_messages(transcript, language)

    async def score(
        self, dialogue: DialogueRecord, judge: JudgeSeat | None, names: tuple[str, ...]
    ) -> list[ScoreRecord]:
        assert judge is not None, "a rubric protocol is judged"
        return await judge_dialogue(
            dialogue,
            protocol=self.strings,
            judge=judge.backend,
            judge_name=judge.name,
            judge_config=judge.config,
            retries=judge.retries,
            dimensions=names,
        )

    def judge_adapters(self, judge: ModelConfig, language: Language) -> list[str]:
        if not judge.dimension_adapters:
            return []
        return [judge.dimension_adapter(d.key, language) for d in DIMENSIONS]
