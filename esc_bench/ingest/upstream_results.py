"""Import ESC-Eval's upstream result files as an esc-bench run folder.

Transcripts: `{index: ["AI assistant：…", "ESC-Role：…", …]}` (full-width colon U+FF1A; the first
line is the supporter's greeting). Scores: `{index: {fluency, diversity, empathic, suggestion,
human, tech, overall}}` with -1 = no score. The index is the card's position in the card file
upstream ran; without `cards` it becomes the card_id, with `cards` the card's own id (so the
imported run pairs with esc-bench runs over the same cards) and its language, source and category.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esc_bench.dimensions import BY_KEY, BY_NAME, SCORE_MAX, SCORE_MIN
from esc_bench.errors import DataError, UserError, parse_json, read_text
from esc_bench.records import (
    Card,
    DialogueRecord,
    ErrorInfo,
    Language,
    Leaderboard,
    ScoreRecord,
    Turn,
    normalize_language,
)

if TYPE_CHECKING:
    from esc_bench.store.run_dir import RunDir

SPEAKERS = {"AI assistant": "supporter", "ESC-Role": "seeker"}
_LINE = re.compile(r"^\s*(AI assistant|ESC-Role)\s*[：:]\s?(.*)\Z", re.S)
TASK_BY_LANGUAGE = {"en": "esc_eval_en", "zh": "esc_eval_zh"}


def _load_json(path: Path, what: str) -> Any:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} file {path} is a folder")
    if not path.is_file():
        raise UserError(f"{what} file {path} not found")
    return parse_json(read_text(path), str(path))


def _index_key(k: str) -> tuple[int, str]:
    return (int(k), k) if str(k).isdigit() else (1 << 62, str(k))


def parse_transcripts(path: Path) -> dict[str, list[Turn]]:
    """index -> turns. A line without a known speaker prefix is an error naming the index."""
    data = _load_json(path, "transcript")
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected an object {{index: [lines]}}, got {type(data).__name__}")
    out: dict[str, list[Turn]] = {}
    for index in sorted(data, key=_index_key):
        lines = data[index]
        if not isinstance(lines, list):
            raise DataError(f"{path}: index {index}: expected a list of lines")
        turns = []
        for i, line in enumerate(lines):
            m = _LINE.match(line) if isinstance(line, str) else None
            if m is None:
                shown = repr(line)[:60]
                raise DataError(f"{path}: index {index} line {i}: no 'AI assistant：' or 'ESC-Role：' prefix ({shown})")
            turns.append(Turn(speaker=SPEAKERS[m.group(1)], text=m.group(2)))  # type: ignore[arg-type]
        out[str(index)] = turns
    return out


def _dimension(key: str) -> str | None:
    k = str(key).strip().lower()
    if k in BY_KEY:
        return BY_KEY[k].name
    if k in BY_NAME:
        return k
    return None


def parse_scores(path: Path) -> dict[str, dict[str, int | None]]:
    """index -> dimension (paper name) -> score; -1 (or null) = missing."""
    data = _load_json(path, "score")
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected an object {{index: {{dimension: score}}}}")
    out: dict[str, dict[str, int | None]] = {}
    for index, dims in data.items():
        if not isinstance(dims, dict):
            raise DataError(f"{path}: index {index}: expected an object of dimension scores")
        row: dict[str, int | None] = {}
        for key, value in dims.items():
            dim = _dimension(key)
            if dim is None:
                raise DataError(f"{path}: index {index}: unknown dimension {key!r}")
            if value is None or value == -1:
                row[dim] = None
                continue
            if isinstance(value, float) and not math.isfinite(value):
                raise DataError(f"{path}: index {index} {key}: score {value!r} is not a finite number")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
                raise DataError(f"{path}: index {index} {key}: score {value!r} is not a whole number")
            if not SCORE_MIN <= int(value) <= SCORE_MAX:
                raise DataError(
                    f"{path}: index {index} {key}: score {value} is outside {SCORE_MIN}-{SCORE_MAX} (or -1)"
                )
            row[dim] = int(value)
        out[str(index)] = row
    return out


def load_card_list(path: Path, language: Language) -> list[Card]:
    """An upstream card file (a JSON list), in order."""
    data = _load_json(path, "card")
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of cards")
    cards = []
    first_at: dict[str, int] = {}
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise DataError(f"{path}[{i}]: expected a card object")
        try:
            card = Card.model_validate({"language": language, **obj})
        except Exception as exc:  # pydantic ValidationError: one line
            raise DataError(f"{path}[{i}]: not a valid card ({str(exc).splitlines()[0]})") from None
        if card.language != language:
            raise UserError(f"{path}: card {card.id} is in {card.language!r}, not --language {language!r}")
        if card.id in first_at:
            raise DataError(
                f"{path}[{i}]: duplicate card id {card.id!r} (first at [{first_at[card.id]}]); "
                "each card needs its own id"
            )
        first_at[card.id] = i
        cards.append(card)
    return cards


def build_records(
    transcripts: dict[str, list[Turn]],
    scores: dict[str, dict[str, int | None]] | None,
    *,
    language: Language,
    model: str,
    judge: str,
    task: str,
    cards: list[Card] | None = None,
) -> tuple[list[DialogueRecord], list[ScoreRecord]]:
    """Records of one imported run: a dialogue per index, a score per index and dimension."""
    if scores is not None:
        extra = sorted(set(scores) - set(transcripts), key=_index_key)
        if extra:
            raise DataError(f"scores for indices with no transcript: {', '.join(extra[:10])}")
    dialogues, score_recs = [], []
    for index, turns in transcripts.items():
        card = None
        if cards is not None:
            if not index.isdigit() or int(index) >= len(cards):
                raise DataError(f"transcript index {index} is not a position in the card file ({len(cards)} cards)")
            card = cards[int(index)]
        card_id = card.id if card else index
        failed = not any(t.speaker == "seeker" for t in turns)
        dialogues.append(
            DialogueRecord(
                task=task,
                model=model,
                card_id=card_id,
                language=language,
                source=card.source if card else None,
                category=card.res if card else None,
                status="failed" if failed else "ok",
                transcript=turns,
                error=ErrorInfo(type="empty_reply", message="upstream transcript has no seeker turn")
                if failed
                else None,
            )
        )
        if failed or scores is None or index not in scores:
            continue
        for dim, value in scores[index].items():
            score_recs.append(
                ScoreRecord(task=task, model=model, card_id=card_id, judge=judge, dimension=dim, score=value)
            )
    return dialogues, score_recs


def import_upstream(
    transcripts_path: Path,
    scores_path: Path | None,
    out: Path,
    *,
    language: str,
    model: str,
    cards_path: Path | None = None,
    judge: str = "esc-rank",
    simulator: str = "esc-role",
    protocol: str = "esc-eval",
    task: str | None = None,
    argv: list[str] | None = None,
    seed: int = 0,
) -> tuple[RunDir, Leaderboard]:
    """Write (or add a task to) a run folder: dialogues, scores, manifest, leaderboard."""
    from esc_bench import __version__
    from esc_bench.analysis.leaderboard import run_leaderboard
    from esc_bench.analysis.runs import load_run
    from esc_bench.records import Manifest
    from esc_bench.store.manifest import now_iso
    from esc_bench.store.run_dir import RunDir

    lang = normalize_language(language)
    if lang not in TASK_BY_LANGUAGE:
        raise UserError(f"--language must be en or zh, not {language!r}")
    task = task or TASK_BY_LANGUAGE[lang]
    transcripts = parse_transcripts(Path(transcripts_path))
    if not transcripts:
        raise DataError(f"{transcripts_path}: no transcripts")
    scores = parse_scores(Path(scores_path)) if scores_path is not None else None
    cards = load_card_list(Path(cards_path), lang) if cards_path is not None else None
    dialogues, score_recs = build_records(
        transcripts, scores, language=lang, model=model, judge=judge, task=task, cards=cards
    )
    rd = RunDir(Path(out))
    rd.check_writable()
    if rd.exists():
        manifest = rd.read_manifest()
        if any(d.task == task and d.model == model for d in rd.read_dialogues()):
            raise UserError(f"{rd.path} already holds {model} on {task}; import into another folder")
        old = manifest.tasks.get(task)
        for key, value in (("protocol", protocol), ("simulator", simulator), ("judge", judge)):
            if old is not None and old.get(key) != value:
                raise UserError(f"{rd.path}: task {task} has {key} {old.get(key)}, not {value}")
    else:
        if rd.path.exists() and any(rd.path.iterdir()):
            raise UserError(f"{rd.path} exists and is not an esc-bench run folder")
        manifest = Manifest(
            run_id=rd.path.name or f"upstream-{model}",
            created=now_iso(),
            command=list(argv or []),
            seed=seed,
            esc_bench_version=__version__,
        )
    with rd.lock():  # one writer at a time, as for a run; checked again under the lock
        if rd.exists():
            manifest = rd.read_manifest()
            if any(d.task == task and d.model == model for d in rd.read_dialogues()):
                raise UserError(f"{rd.path} already holds {model} on {task}; import into another folder")
        rounds = max((sum(t.speaker == "seeker" for t in d.transcript) for d in dialogues), default=0)
        manifest.supporters = list(dict.fromkeys([*manifest.supporters, model]))
        manifest.tasks[task] = {
            "name": task,
            "language": lang,
            "protocol": protocol,
            "simulator": simulator,
            "judge": judge,
            "rounds": rounds,
            "imported_from": {
                "transcripts": str(transcripts_path),
                "scores": str(scores_path) if scores_path is not None else None,
                "cards": str(cards_path) if cards_path is not None else None,
            },
        }
        manifest.protocols[task] = protocol
        ids = manifest.cards.setdefault(task, [])
        ids.extend(d.card_id for d in dialogues if d.card_id not in ids)
        rd.write_manifest(manifest)
        writer = rd.dialogue_writer()
        writer.write_many(dialogues)
        writer.close()
        if score_recs:
            swriter = rd.score_writer()
            swriter.write_many(score_recs)
            swriter.close()
        board = run_leaderboard(load_run(rd.path), seed=seed)
        rd.write_leaderboard(board)
    return rd, board
