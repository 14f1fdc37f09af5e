"""Run folders with synthetic records, for the analysis tests (no model is ever called)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.records import Card, DialogueRecord, ErrorInfo, ScoreRecord, Turn
from esc_bench.store.run_dir import Manifest, RunDir

SOURCES_EN = ["ESconv", "ExTES", "MHP", "Psych", "EPITOME"]
CATEGORIES = ["家庭生活", "工作学习", "社会与其他"]

ScoreFn = Callable[[str, str, int, str], int | None]  # (task, model, card index, dimension) -> score


def dialogue(task: str, model: str, card: str, *, language: str = "en", status: str = "ok",
             source: str | None = None, category: str | None = None, text: str = "",
             card_text: str | None = None) -> DialogueRecord:
    transcript = [] if status == "failed" else [
        Turn(speaker="supporter", text=f"Hello from {model}"),
        Turn(speaker="seeker", text=text or f"I need help ({card})"),
        Turn(speaker="supporter", text=f"I hear you ({model})"),
    ]
    return DialogueRecord(
        task=task, model=model, card_id=card, language=language, source=source, category=category,
        status=status, transcript=transcript,
        card=None if card_text is None else Card(id=card, base=card_text, language=language, res=category,
                                                 source=source),
        error=ErrorInfo(type="timeout", message="supporter timed out", role="supporter", round=2)
        if status == "failed" else None,
    )


def make_run(
    path: Path,
    *,
    run_id: str | None = None,
    tasks: dict[str, dict[str, Any]] | None = None,
    models: list[str] = ("a", "b"),
    n_cards: int = 6,
    score: ScoreFn | None = None,
    failed: set[tuple[str, str, int]] = frozenset(),
    judge: str = "esc-rank",
    extra_scores: list[ScoreRecord] | None = None,
    raw: Callable[[str, str, int, str], str | None] | None = None,
    text: Callable[[str, str, int], str] | None = None,
    card_text: Callable[[str, int], str | None] | None = None,
) -> RunDir:
    """A run folder: each task x model x card a dialogue, each ok dialogue 7 scores by `judge`.

    tasks: name -> {language, protocol, simulator, judge}; default one English task `t_en`.
    score(task, model, i, dim) gives each score (None = missing); default a fixed pattern.
    text(task, model, i) gives the seeker's line of each transcript (default names the card).
    card_text(task, i) is the role card's text stored with each dialogue (default none: an older run).
    """
    tasks = tasks or {"t_en": {"language": "en"}}
    score = score or (lambda task, model, i, dim: (i + len(model) + DIMENSION_NAMES.index(dim)) % 5)
    rd = RunDir(path)
    manifest = Manifest(
        run_id=run_id or path.name, created="2024-06-24T00:00:00+00:00", command=["esc-bench"], seed=0,
        esc_bench_version="test", supporters=list(models),
    )
    dialogues, scores = [], []
    for task, meta in tasks.items():
        lang = meta.get("language", "en")
        tjudge = meta.get("judge", judge)
        manifest.tasks[task] = {
            "name": task, "language": lang, "protocol": meta.get("protocol", "esc-eval"),
            "simulator": meta.get("simulator", "esc-role"), "judge": tjudge,
        }
        manifest.protocols[task] = meta.get("protocol", "esc-eval")
        manifest.cards[task] = [f"{task}-{i}" for i in range(n_cards)]
        for model in models:
            for i in range(n_cards):
                card = f"{task}-{i}"
                status = "failed" if (task, model, i) in failed else "ok"
                src = (SOURCES_EN[i % len(SOURCES_EN)] if lang == "en" else ["PsyQA", "smile"][i % 2])
                dialogues.append(dialogue(task, model, card, language=lang, status=status, source=src,
                                          category=CATEGORIES[i % 3], text=text(task, model, i) if text else "",
                                          card_text=card_text(task, i) if card_text else None))
                if status == "failed":
                    continue
                for dim in DIMENSION_NAMES:
                    scores.append(ScoreRecord(
                        task=task, model=model, card_id=card, judge=tjudge, dimension=dim,
                        score=score(task, model, i, dim),
                        raw=raw(task, model, i, dim) if raw else f"score: {score(task, model, i, dim)}",
                    ))
    rd.write_manifest(manifest)
    w = rd.dialogue_writer()
    w.write_many(dialogues)
    w.close()
    w = rd.score_writer()
    w.write_many(scores + list(extra_scores or []))
    w.close()
    return rd
