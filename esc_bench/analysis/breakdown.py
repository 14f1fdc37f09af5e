"""Scores broken down by the card's language, source dataset and category, per model.

Groups pool the tasks of a model. Sources are shown with the paper's names (upstream cards
spell ESconv, Psych, smile); categories are the card's `res` with an English label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from esc_bench.analysis.leaderboard import aggregate
from esc_bench.data.cards import CATEGORIES, DATASETS, normalize_category, paper_source_name
from esc_bench.records import ESC_EVAL_SPEC, DialogueRecord, DimensionScore, ProtocolSpec, ScoreRecord

FACETS: tuple[str, ...] = ("language", "source", "category")
UNKNOWN = "unknown"

LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh": "Chinese"}


def source_name(raw: str | None) -> str:
    """The paper's name of a card source ('ESconv' -> 'ESConv'); unknown spellings as given."""
    if raw is None or not raw.strip():
        return UNKNOWN
    return paper_source_name(raw)


def category_label(raw: str | None) -> str:
    """'family life (家庭生活)' for the upstream categories; others as given."""
    if raw is None or not raw.strip():
        return UNKNOWN
    raw = normalize_category(raw)  # the card filters' aliases: "work" -> "工作学习"
    en = CATEGORIES.get(raw)
    return f"{en} ({raw})" if en else raw


def group_key(d: DialogueRecord, facet: str) -> str:
    if facet == "language":
        return d.language
    if facet == "source":
        return source_name(d.source)
    if facet == "category":
        raw = (d.category or "").strip()
        return normalize_category(raw) if raw else UNKNOWN
    raise ValueError(f"unknown breakdown {facet!r} (one of {', '.join(FACETS)})")


def group_label(facet: str, key: str) -> str:
    if facet == "language":
        return LANGUAGE_NAMES.get(key, key)
    if facet == "category":
        return category_label(key) if key != UNKNOWN else UNKNOWN
    return key


def group_order(facet: str, key: str) -> tuple[int, str]:
    """Sort key of a group: the paper's order, then others by name, unknown last."""
    known = {
        "language": list(LANGUAGE_NAMES),
        "source": [paper for _, paper in DATASETS.values()],
        "category": list(CATEGORIES),
    }[facet]
    if key == UNKNOWN:
        return (len(known) + 1, key)
    return (known.index(key), key) if key in known else (len(known), key)


@dataclass
class BreakdownRow:
    facet: str
    group: str  # the key: 'en', 'ESConv', '家庭生活'
    label: str  # for display: 'English', 'ESConv', 'family life (家庭生活)'
    model: str
    n_dialogues: int
    n_failed: int
    scores: dict[str, DimensionScore]
    average: DimensionScore

    def to_dict(self) -> dict[str, Any]:
        return {
            "facet": self.facet,
            "group": self.group,
            "label": self.label,
            "model": self.model,
            "n_dialogues": self.n_dialogues,
            "n_failed": self.n_failed,
            "scores": {k: v.model_dump(mode="json") for k, v in self.scores.items()},
            "average": self.average.model_dump(mode="json"),
        }


def breakdown(
    dialogues: list[DialogueRecord],
    scores: list[ScoreRecord],
    facet: str,
    *,
    spec: ProtocolSpec = ESC_EVAL_SPEC,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    order: list[str] | None = None,
) -> list[BreakdownRow]:
    """Rows per (group, model): n, failed, per-dimension means with bootstrap CIs, average.

    `scores` must be one judge's per task (as LoadedRun.scores are). Within a group the models
    follow `order` (the report's model order; default: as the dialogues first name them).
    """
    groups: dict[tuple[str, str], list[DialogueRecord]] = {}
    for d in dialogues:
        groups.setdefault((group_key(d, facet), d.model), []).append(d)
    by_dialogue: dict[tuple[str, str, str], list[ScoreRecord]] = {}
    for s in scores:
        by_dialogue.setdefault((s.task, s.model, s.card_id), []).append(s)
    rows = []
    for (key, model), recs in groups.items():
        recs_scores = [s for d in recs for s in by_dialogue.get(d.key, [])]
        agg = aggregate(recs, recs_scores, spec=spec, seed=seed, confidence=confidence, n_resamples=n_resamples)
        rows.append(
            BreakdownRow(
                facet=facet, group=key, label=group_label(facet, key), model=model,
                n_dialogues=agg.n_dialogues, n_failed=agg.n_failed, scores=agg.scores, average=agg.average,
            )
        )
    from esc_bench.analysis.model_order import in_order

    rows = in_order(rows, order or list(dict.fromkeys(d.model for d in dialogues)), lambda r: r.model)
    rows.sort(key=lambda r: group_order(facet, r.group))  # stable: the model order within a group
    return rows


def all_breakdowns(
    dialogues: list[DialogueRecord],
    scores: list[ScoreRecord],
    *,
    facets: tuple[str, ...] = FACETS,
    spec: ProtocolSpec = ESC_EVAL_SPEC,
    seed: int = 0,
    skip_unknown_only: bool = True,
    order: list[str] | None = None,
) -> dict[str, list[BreakdownRow]]:
    """Each facet's rows; a facet whose every dialogue lacks the field is left out."""
    out = {}
    for facet in facets:
        rows = breakdown(dialogues, scores, facet, spec=spec, seed=seed, order=order)
        if skip_unknown_only and all(r.group == UNKNOWN for r in rows):
            continue
        out[facet] = rows
    return out
