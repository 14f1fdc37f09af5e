"""Reference scores for agreement: read from a file (JSONL, CSV or a JSON list) or a run's scores.

Reference format (JSONL, one object a line; or CSV with a header; or a JSON list):
    {"task": "esc_eval_en", "model": "llama3", "card_id": "32025", "dimension": "empathy", "score": 3}
`task` and `model` are optional (then a row matches on card and dimension alone, and must match
exactly one scored dialogue). `dimension` is a paper name (fluency, expression, empathy,
information, skillful, humanoid, overall) or an upstream key (diversity, empathic, suggestion,
tech, human). `score` is 0-4; empty, null or -1 = missing. A run folder is a reference too.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esc_bench.dimensions import BY_KEY, BY_NAME, DIMENSION_NAMES, SCORE_MAX, SCORE_MIN
from esc_bench.errors import DataError, UserError, parse_json, read_text
from esc_bench.records import ScoreRecord


@dataclass(frozen=True)
class RefScore:
    card_id: str
    dimension: str
    score: int | None
    task: str | None = None
    model: str | None = None


def normalize_dimension(name: str) -> str:
    """A paper name or upstream key (any case) -> the paper name."""
    key = str(name).strip().lower()
    if key in BY_NAME:
        return key
    if key in BY_KEY:
        return BY_KEY[key].name
    raise ValueError(f"unknown dimension {name!r} (one of {', '.join(DIMENSION_NAMES)} or their upstream keys)")


def parse_score(value: Any, where: str) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() in ("", "null", "None", "NA", "nan")):
        return None
    if isinstance(value, bool):
        raise DataError(f"{where}: score {value!r} is not a number")
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: score {value!r} is not a number") from None
    if not math.isfinite(f):
        raise DataError(f"{where}: score {value!r} is not a finite number")
    if f != int(f):
        raise DataError(f"{where}: score {value!r} is not a whole number")
    v = int(f)
    if v == -1:
        return None
    if not SCORE_MIN <= v <= SCORE_MAX:
        raise DataError(f"{where}: score {v} is outside {SCORE_MIN}-{SCORE_MAX}")
    return v


def _row_to_ref(row: dict[str, Any], where: str) -> RefScore:
    for need in ("card_id", "dimension", "score"):
        if need not in row:
            raise DataError(f"{where}: missing field {need!r} (need card_id, dimension, score; task, model optional)")
    try:
        dim = normalize_dimension(row["dimension"])
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None
    opt = {k: (str(row[k]).strip() or None) if row.get(k) is not None else None for k in ("task", "model")}
    return RefScore(card_id=str(row["card_id"]).strip(), dimension=dim,
                    score=parse_score(row["score"], where), **opt)


def load_reference_file(path: Path) -> list[RefScore]:
    """Reference scores from JSONL (.jsonl/.ndjson), CSV (.csv) or a JSON list (.json)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"reference {path} not found")
    suffix = path.suffix.lower()
    text = read_text(path, what="reference")
    out = []
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        for i, row in enumerate(reader, start=2):
            out.append(_row_to_ref({k.strip(): v for k, v in row.items() if k}, f"{path}:{i}"))
        return out
    if suffix == ".json":
        data = parse_json(text, str(path))
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of score objects")
        for i, r in enumerate(data):
            if not isinstance(r, dict):
                raise DataError(f"{path}[{i}]: expected a score object, got {type(r).__name__}")
            out.append(_row_to_ref(r, f"{path}[{i}]"))
        return out
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = parse_json(line, str(path), line=i)
        if not isinstance(row, dict):
            raise DataError(f"{path}:{i}: expected an object")
        out.append(_row_to_ref(row, f"{path}:{i}"))
    return out


def refs_from_scores(scores: list[ScoreRecord]) -> list[RefScore]:
    return [RefScore(card_id=s.card_id, dimension=s.dimension, score=_int_score(s.score), task=s.task, model=s.model)
            for s in scores]


def _int_score(score: float | None) -> int | None:
    """A rubric score (0-4) as the int the confusion matrix indexes by."""
    return None if score is None else int(score)
