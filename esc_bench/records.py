"""Records that cross a file boundary: cards, dialogues, scores, leaderboard, protocol specs,
run options and the run manifest.

Each is one pydantic model, the definition of its file format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from esc_bench.dimensions import DIMENSION_NAMES, SCALE_100, SCORE_MAX, SCORE_MIN

Language = Literal["en", "zh"]
Speaker = Literal["supporter", "seeker"]

_LANGUAGE_ALIASES = {"en": "en", "english": "en", "zh": "zh", "chinese": "zh", "cn": "zh"}


def normalize_language(value: Any) -> Any:
    if isinstance(value, str):
        return _LANGUAGE_ALIASES.get(value.strip().lower(), value)
    return value


class Card(BaseModel):
    """A role card: who the help-seeker is and what troubles them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    base: str = Field(min_length=1)
    language: Language
    base_biaozhu: str | None = None
    res: str | None = None  # category
    source: str | None = None  # dataset the card came from
    opening: str | None = None  # the seeker's first line, when the card's source gives one (SAGE profiles)

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return v
        if isinstance(v, int):
            return str(v)
        return v

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, v: Any) -> Any:
        return normalize_language(v)


class Turn(BaseModel):
    speaker: Speaker
    text: str
    # What the protocol's seeker kept after this turn (its typed state, as a plain dict);
    # absent for stateless protocols. Never shown to the supporter.
    state: dict[str, Any] | None = None
    # The reply was longer than the model's max_reply_chars: `text` is its beginning.
    cut: bool = False

    @model_serializer(mode="wrap")
    def _omit_no_state(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if out.get("state", 0) is None:
            del out["state"]
        if out.get("cut") is False:
            del out["cut"]
        return out


class Usage(BaseModel):
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    cached_calls: int = 0

    def add(self, prompt_tokens: int, completion_tokens: int, cost: float | None, cached: bool) -> None:
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        if cached:
            self.cached_calls += 1
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost


class ErrorInfo(BaseModel):
    type: str  # e.g. "rate_limit", "timeout", "server_error", "bad_response", "empty_reply"
    message: str
    role: str | None = None  # seeker | supporter | judge
    round: int | None = None


class DialogueRecord(BaseModel):
    """One line of dialogues.jsonl: task x model x card."""

    model_config = ConfigDict(extra="forbid")

    task: str
    model: str
    card_id: str
    language: Language
    source: str | None = None
    category: str | None = None
    card: Card | None = None  # the role card the seeker was given (absent in runs made before it was stored)
    status: Literal["ok", "failed"]
    transcript: list[Turn] = Field(default_factory=list)
    error: ErrorInfo | None = None
    started: float | None = None  # unix time
    duration_s: float | None = None
    usage: dict[str, Usage] = Field(default_factory=dict)  # by role: seeker, supporter
    card_sha: str | None = None  # digest of the card text the seeker played
    end: str | None = None  # why the dialogue ended, as the protocol says ("rounds", "goodbye", ...)
    state: dict[str, Any] | None = None  # the seeker's state when the dialogue ended (stateful protocols)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.task, self.model, self.card_id)


class ScoreRecord(BaseModel):
    """One line of scores.jsonl: dialogue x judge x dimension."""

    model_config = ConfigDict(extra="forbid")

    task: str
    model: str
    card_id: str
    judge: str
    dimension: str
    score: int | float | None = None  # None = missing (no parsable score after retries)
    raw: str | None = None  # the judge's reply as received
    attempts: int = 1
    expected: float | None = None  # logits mode: sum(p_i * i)
    probs: list[float] | None = None  # logits mode: P("0") .. P("4")
    error: ErrorInfo | None = None
    usage: Usage | None = None
    cut: bool = False  # `raw` was longer than the judge's max_reply_chars: its beginning

    @model_serializer(mode="wrap")
    def _omit_not_cut(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if out.get("cut") is False:
            del out["cut"]
        return out

    @property
    def missing(self) -> bool:
        return self.score is None

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.task, self.model, self.card_id, self.judge, self.dimension)


class MetricSpec(BaseModel):
    """One metric a protocol reports: its name (the score records' `dimension`) and scale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    low: float = SCORE_MIN
    high: float = SCORE_MAX
    to_100: float | None = SCALE_100  # factor to the 0-100 view (`--scale 100`); None: no such view
    higher_is_better: bool = True
    label: str | None = None  # a longer name for the protocol's own report section ("final emotion")

    @property
    def display(self) -> str:
        return self.label or self.name


class TrajectorySpec(BaseModel):
    """A value the seeker's per-turn state carries, drawn turn by turn (mean per model, each dialogue)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str  # the state's key holding the value (e.g. "emotion")
    low: float
    high: float
    change: str | None = None  # the state's key of the turn's change, shown beside each seeker line
    note: str | None = None  # the state's key of a text shown beside each seeker line (e.g. inner thoughts)
    marks: dict[str, float] = Field(default_factory=dict)  # lines drawn across the chart: label -> value


class ProtocolSpec(BaseModel):
    """What a protocol's reports show, carried in manifests and leaderboards."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: tuple[MetricSpec, ...]
    average: bool = True  # an "average" column: per dialogue, the mean of its metrics (on one scale)
    outcomes: tuple[str, ...] = ()  # dialogue endings (`DialogueRecord.end`) counted per entry
    judged: bool = True  # False: the dialogue scores itself, no judge model is called
    trajectory: TrajectorySpec | None = None  # a per-turn value whose mean per turn entries carry
    title: str | None = None  # heading of the protocol's own report section (None: no section)
    note: str | None = None  # a line under that heading saying what the numbers mean

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    @property
    def columns(self) -> list[str]:
        return [*self.metric_names, *(["average"] if self.average else [])]

    def metric(self, column: str) -> MetricSpec:
        """The scale of a column: its metric's, or (for "average") the first metric's."""
        return next((m for m in self.metrics if m.name == column), self.metrics[0])


# ESC-Eval's seven dimensions, 0-4: the spec of runs recorded before protocols declared theirs.
ESC_EVAL_SPEC = ProtocolSpec(metrics=tuple(MetricSpec(name=n) for n in DIMENSION_NAMES))


class DimensionScore(BaseModel):
    mean: float | None  # None when no dialogue has this score
    score_100: float | None
    ci95: tuple[float, float] | None
    n: int
    n_missing: int = 0


class LeaderboardEntry(BaseModel):
    model: str
    task: str
    protocol: str | None = None
    simulator: str | None = None
    judge: str | None = None
    n_dialogues: int
    n_failed: int
    scores: dict[str, DimensionScore]
    average: DimensionScore
    outcomes: dict[str, int] = Field(default_factory=dict)  # dialogues per ending the protocol counts
    trajectory: list[float] = Field(default_factory=list)  # mean per seeker turn (spec.trajectory); ended ones carry on

    @property
    def headline(self) -> float | None:
        """The value an entry ranks by: its average, or (a spec without one) its first metric's mean."""
        if self.average.n or not self.scores:
            return self.average.mean
        return next(iter(self.scores.values())).mean


class Leaderboard(BaseModel):
    """leaderboard.json: comparable across runs and model versions."""

    schema_version: Literal[1] = 1
    run_id: str
    created: str  # ISO 8601
    protocol: str | None
    simulator: str | None
    judge: str | None
    dimensions: list[str] = Field(default_factory=lambda: list(DIMENSION_NAMES))  # every task's metrics
    specs: dict[str, ProtocolSpec] = Field(default_factory=dict)  # task -> its metrics, scales, outcomes
    entries: list[LeaderboardEntry] = Field(default_factory=list)

    def spec(self, task: str) -> ProtocolSpec:
        """A task's spec (ESC-Eval's seven dimensions for boards written before specs were kept)."""
        return self.specs.get(task, ESC_EVAL_SPEC)


RunMode = Literal["run", "score"]


class RunOptions(BaseModel):
    """What a run was asked to do. The manifest keeps the last run's, with absolute paths, so
    `resume` and `score` start from them wherever they are called from.

    `mode`: "run" simulates what is left and judges it; "score" judges saved dialogues only.
    """

    model_config = ConfigDict(extra="forbid")

    models: list[str]
    tasks: list[str]
    simulator: str | None = None
    judge: str | None = None
    limit: int | None = None
    output: Path | None = None
    model_configs: list[Path] = Field(default_factory=list)
    tasks_dirs: list[Path] = Field(default_factory=list)
    seed: int = 0
    use_cache: bool = True
    cache_dir: Path | None = None
    max_failures: str = "0"
    skip_judge: bool = False
    mode: RunMode = "run"
    preflight: bool = True  # one tiny call per model endpoint before the first dialogue
    scale: Literal["4", "100"] = "4"  # of the console tables
    argv: list[str] = Field(default_factory=list)

    def resolved(self, base: Path) -> RunOptions:
        """These options with every relative path taken from `base` (the folder the command ran in)."""

        def at(p: Path) -> Path:
            return p if p.is_absolute() else base / p

        return self.model_copy(update={
            "output": None if self.output is None else at(self.output),
            "model_configs": [at(p) for p in self.model_configs],
            "tasks_dirs": [at(p) for p in self.tasks_dirs],
            "cache_dir": None if self.cache_dir is None else at(self.cache_dir),
        })


class Invocation(BaseModel):
    """One command run on a run folder: its command line, when, how it ended, its calls."""

    argv: list[str]
    started: str
    finished: str | None = None
    status: str = "running"  # running | completed | interrupted | failed
    cache_hits: int = 0
    calls: int = 0


class Manifest(BaseModel):
    """manifest.json: what was run, with which resolved configs (secrets never stored)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    run_id: str
    created: str
    command: list[str]
    cwd: str | None = None  # where the first command ran
    # The last run's options, paths absolute: what `resume` and `score` start from. None in a folder
    # written before they were stored: `command` (then invocations) and `cwd` stand for them there.
    options: RunOptions | None = None
    seed: int
    esc_bench_version: str
    packages: dict[str, str] = Field(default_factory=dict)
    git_commit: str | None = None
    supporters: list[str] = Field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = Field(default_factory=dict)  # name -> resolved TaskConfig
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)  # name -> resolved ModelConfig
    config_hashes: dict[str, str] = Field(default_factory=dict)  # "task:NAME" / "model:NAME" -> hash
    protocols: dict[str, str] = Field(default_factory=dict)  # task -> protocol name
    specs: dict[str, ProtocolSpec] = Field(default_factory=dict)  # task -> its protocol's metrics (absent: ESC-Eval's)
    cards: dict[str, list[str]] = Field(default_factory=dict)  # task -> card ids, in plan order
    extra_judges: list[str] = Field(default_factory=list)  # added later by `esc-bench score`
    cache: dict[str, Any] = Field(default_factory=dict)
    invocations: list[Invocation] = Field(default_factory=list)
