"""Rubric judging: one judge request per dimension, a 0-4 score parsed from each reply (or read
from the label probabilities of a local judge)."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from typing import Any

from esc_bench.backends.base import BackendError, ChatRequest, ModelClient
from esc_bench.config.schema import ModelConfig
from esc_bench.dimensions import BY_NAME
from esc_bench.errors import one_line
from esc_bench.protocol import Protocol
from esc_bench.records import DialogueRecord, ErrorInfo, ScoreRecord, Usage

LABELS = ("0", "1", "2", "3", "4")

# A scale written out ("0-4", "0 to 4", "(0～4)") is not a score: drop it before searching.
_RANGE = re.compile(r"(?<!\d)0\s*(?:-|–|—|~|～|to|至|到)\s*4(?!\d)", re.IGNORECASE)
# The first digit 0-4 standing alone: not part of a longer number or a decimal.
_SCORE = re.compile(r"(?<![\d.])(?<!\d\.)([0-4])(?!\d)(?!\.\d)")


def parse_score(reply: str | None) -> int | None:
    """The reply's first standalone digit 0-4 (full-width digits count), or None."""
    if not reply:
        return None
    text = unicodedata.normalize("NFKC", reply)
    text = _RANGE.sub(" ", text)
    m = _SCORE.search(text)
    return int(m.group(1)) if m else None


async def judge_dialogue(
    dialogue: DialogueRecord,
    *,
    protocol: Protocol,
    judge: ModelClient,
    judge_name: str,
    judge_config: ModelConfig,
    retries: int,
    dimensions: tuple[str, ...],
) -> list[ScoreRecord]:
    """One request per dimension, all at once (a batching backend runs them together)."""
    return list(
        await asyncio.gather(
            *(
                _score_one(dialogue, d, protocol, judge, judge_name, judge_config, retries)
                for d in dimensions
            )
        )
    )


async def _score_one(
    dialogue: DialogueRecord,
    dimension: str,
    protocol: Protocol,
    judge: ModelClient,
    judge_name: str,
    cfg: ModelConfig,
    retries: int,
) -> ScoreRecord:
    messages = protocol.judge_messages(dimension, dialogue.transcript, dialogue.language)
    adapter = cfg.dimension_adapter(BY_NAME[dimension].key, dialogue.language) if cfg.dimension_adapters else None
    labels = LABELS if cfg.scoring == "logits" else None
    usage = Usage()
    reply: str | None = None
    base: dict[str, Any] = dict(
        task=dialogue.task, model=dialogue.model, card_id=dialogue.card_id,
        judge=judge_name, dimension=dimension,
    )
    for attempt in range(retries + 1):
        try:
            res = await judge.chat(
                ChatRequest(
                    messages=messages,
                    adapter=adapter,
                    score_labels=labels,
                    sample_index=attempt,  # a re-ask is a new sample, not a cache hit
                    purpose=f"judge:{dimension}",
                )
            )
        except BackendError as exc:
            return ScoreRecord(
                **base, score=None, raw=reply, attempts=attempt + 1, usage=usage,
                error=ErrorInfo(type=exc.kind, message=one_line(exc.message), role="judge"),
            )
        usage.add(res.prompt_tokens, res.completion_tokens, res.cost, res.cached)
        reply = res.text
        base["cut"] = res.cut  # the last reply's
        if res.label_probs:
            probs = [float(res.label_probs.get(label, 0.0)) for label in LABELS]
            total = sum(probs) or 1.0
            probs = [p / total for p in probs]
            best = max(range(len(LABELS)), key=lambda i: probs[i])
            return ScoreRecord(
                **base, score=best, raw=reply, attempts=attempt + 1, usage=usage,
                probs=probs, expected=sum(i * p for i, p in enumerate(probs)),
            )
        score = parse_score(reply)
        if score is not None:
            return ScoreRecord(**base, score=score, raw=reply, attempts=attempt + 1, usage=usage)
    # No score in any reply: recorded as missing, never averaged in.
    return ScoreRecord(**base, score=None, raw=reply, attempts=retries + 1, usage=usage)
