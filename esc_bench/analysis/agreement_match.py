"""Pairing a judge's scores with reference scores of the same dialogue and dimension."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from esc_bench.analysis.agreement_refs import RefScore, parse_score
from esc_bench.errors import DataError, UserError
from esc_bench.records import DialogueRecord, ScoreRecord

Pair = tuple[tuple[str, str, str], str, int, int]  # (dialogue key, dimension, judge score, reference score)


def transcript_digest(d: DialogueRecord) -> str:
    """A digest of a dialogue's transcript: the speaker and text of every turn, in order."""
    turns = [[t.speaker, t.text] for t in d.transcript]
    return hashlib.sha256(json.dumps(turns, ensure_ascii=False).encode("utf-8")).hexdigest()


def transcript_mismatches(
    judged: list[ScoreRecord],
    refs: list[RefScore],
    dialogues: list[DialogueRecord],
    ref_dialogues: list[DialogueRecord],
) -> set[tuple[str, str, str]]:
    """(task, model, card) of the dialogues scored on both sides whose transcripts differ.

    For a reference that is another run: the same card ids do not make the same dialogue. A
    dialogue with no record on one side counts as differing (nothing shows it is the same).
    """
    mine = {d.key: transcript_digest(d) for d in dialogues}
    theirs = {d.key: transcript_digest(d) for d in ref_dialogues}
    ref_keys = {(r.task, r.model, r.card_id) for r in refs}
    both = {(s.task, s.model, s.card_id) for s in judged} & ref_keys
    return {k for k in both if mine.get(k) is None or mine.get(k) != theirs.get(k)}


@dataclass
class Matched:
    pairs: list[Pair]  # (dialogue key, dimension, judge, reference)
    n_judge_missing: int = 0
    n_ref_missing: int = 0
    n_unmatched_ref: int = 0  # reference rows with no scored dialogue
    n_unreferenced: int = 0  # judge scores without a reference


def match(judged: list[ScoreRecord], refs: list[RefScore]) -> Matched:
    """Pair each reference row with the judge's score of the same dialogue and dimension."""
    index: dict[tuple[str, str], list[ScoreRecord]] = {}
    for s in judged:
        index.setdefault((s.card_id, s.dimension), []).append(s)
    out = Matched(pairs=[])
    used: dict[tuple, RefScore] = {}
    for r in refs:
        cands = [s for s in index.get((r.card_id, r.dimension), [])
                 if (r.task is None or s.task == r.task) and (r.model is None or s.model == r.model)]
        if not cands:
            out.n_unmatched_ref += 1
            continue
        if len(cands) > 1:
            where = ", ".join(sorted({f"{s.task}/{s.model}" for s in cands})[:4])
            raise UserError(
                f"reference card {r.card_id} {r.dimension} matches {len(cands)} scored dialogues ({where}); "
                "give task/model in the reference or choose with --task/--model"
            )
        s = cands[0]
        if s.key in used:
            raise DataError(f"two reference scores for {s.task}/{s.model} card {s.card_id} {s.dimension}")
        used[s.key] = r
        if s.score is None:
            out.n_judge_missing += 1
        elif r.score is None:
            out.n_ref_missing += 1
        else:
            judge_score = parse_score(s.score, f"judge {s.judge}, {s.task}/{s.model} card {s.card_id} {s.dimension}")
            if judge_score is None:
                out.n_judge_missing += 1
                continue
            out.pairs.append(((s.task, s.model, s.card_id), s.dimension, judge_score, r.score))
    out.n_unreferenced = sum(1 for s in judged if s.key not in used)
    return out


# -- metrics from confusion matrices (rows: judge, columns: reference) --------------------------
