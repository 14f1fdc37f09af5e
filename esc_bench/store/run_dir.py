"""One run's output folder: manifest, dialogues.jsonl, scores.jsonl, leaderboard.json.

A run folder is also what a resumed run starts from: the engine reads it back, keeps finished work
and does the rest (engine/runner.py decides what is left). Appends are line-atomic; a torn last line
is dropped and redone.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from esc_bench.errors import UserError
from esc_bench.records import DialogueRecord, Leaderboard, Manifest, ScoreRecord, Turn
from esc_bench.store.jsonl import JsonlWriter, iter_records, read_records, write_json_atomic

MANIFEST = "manifest.json"
DIALOGUES = "dialogues.jsonl"
SCORES = "scores.jsonl"
LEADERBOARD = "leaderboard.json"
LOCK = ".lock"


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.dialogues_path = self.path / DIALOGUES
        self.scores_path = self.path / SCORES
        self.manifest_path = self.path / MANIFEST
        self.leaderboard_path = self.path / LEADERBOARD

    # -- checks -------------------------------------------------------------------

    def check_writable(self) -> None:
        """Refuse an --output that is a file, or a folder we cannot write, before any call."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise UserError(f"--output {p} exists and is not a folder")
        probe_dir = p if p.exists() else _nearest_existing_parent(p)
        if probe_dir is None or not os.access(probe_dir, os.W_OK | os.X_OK):
            raise UserError(f"--output {p} is not writable")

    def exists(self) -> bool:
        return self.manifest_path.exists()

    # -- the lock -----------------------------------------------------------------

    def acquire(self) -> None:
        """Hold the folder for this process, before anything in it is read.

        Two processes that both read the folder and then write it would pay twice, append every
        record twice and lose one invocation from the manifest; so the lock comes first and a second
        process is refused at once. Re-entrant within a process (resume → run, run → execute).
        """
        key = os.path.realpath(self.path)
        held = _HELD.get(key)
        if held is not None:
            held.depth += 1
            return
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path} exists and is not a folder")
        created = not self.path.exists()
        new_lock = not (self.path / LOCK).exists()
        self.path.mkdir(parents=True, exist_ok=True)
        _HELD[key] = _Held(_take_lock(self.path / LOCK, self.path), created, new_lock)

    def release(self) -> None:
        """Undo one acquire; the last one frees the folder. A folder this process created and
        left without a manifest is removed again (a refused or failed start leaves nothing)."""
        key = os.path.realpath(self.path)
        held = _HELD.get(key)
        if held is None:
            return
        held.depth -= 1
        if held.depth > 0:
            return
        del _HELD[key]
        try:
            if held.new_lock and not self.manifest_path.exists():  # nothing ran here: leave it as found
                (self.path / LOCK).unlink()  # still held: a newcomer notices the file is gone
                if held.created and not any(self.path.iterdir()):
                    self.path.rmdir()
        except OSError:
            pass
        held.fh.close()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """`with run_dir.lock():` — acquire, and release on the way out."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    # -- manifest -----------------------------------------------------------------

    def read_manifest(self) -> Manifest:
        try:
            return Manifest.model_validate_json(self.manifest_path.read_bytes())
        except FileNotFoundError:
            self.refuse_orphan_results()
            raise UserError(f"{self.path} is not an esc-bench run folder (no {MANIFEST})") from None
        except ValidationError as exc:
            raise UserError(f"{self.manifest_path}: not a valid manifest ({exc.errors()[0]['msg']})") from None

    def refuse_orphan_results(self) -> None:
        """Results without a manifest cannot be resumed: what produced them is unknown, and
        treating the folder as new would do every dialogue again and append each line twice."""
        found = [n for n in (DIALOGUES, SCORES, LEADERBOARD) if (self.path / n).is_file()]
        if found and not self.manifest_path.exists():
            raise UserError(
                f"{self.path} holds {', '.join(found)} but no {MANIFEST}; nothing was changed. "
                f"Put its {MANIFEST} back to resume it, or move those files out to start afresh there"
            )

    def write_manifest(self, manifest: Manifest) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.manifest_path, manifest.model_dump(mode="json"))

    # -- records ------------------------------------------------------------------

    def read_dialogues(self) -> list[DialogueRecord]:
        return read_records(self.dialogues_path, DialogueRecord)

    def read_scores(self) -> list[ScoreRecord]:
        return read_records(self.scores_path, ScoreRecord)

    def latest_dialogues(self, *, slim: bool = False) -> dict[tuple[str, str, str], DialogueRecord]:
        """The last record per (task, model, card): a rerun's success replaces an old failure.

        slim: each record without its text (see `dialogue_facts`), for tallies over a large run.
        """
        out: dict[tuple[str, str, str], DialogueRecord] = {}
        for rec in iter_records(self.dialogues_path, DialogueRecord):
            rec = dialogue_facts(rec) if slim else rec
            out[rec.key] = rec
        return out

    def dialogues_by_key(self, keys: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], DialogueRecord]:
        """The latest whole record of each of `keys` (the others are not kept)."""
        out: dict[tuple[str, str, str], DialogueRecord] = {}
        for rec in iter_records(self.dialogues_path, DialogueRecord) if keys else ():
            if rec.key in keys:
                out[rec.key] = rec
        return out

    def latest_scores(self, *, slim: bool = False) -> dict[tuple[str, str, str, str, str], ScoreRecord]:
        """The last record per (task, model, card, judge, dimension); slim: see `score_facts`."""
        out: dict[tuple[str, str, str, str, str], ScoreRecord] = {}
        for rec in iter_records(self.scores_path, ScoreRecord):
            rec = score_facts(rec) if slim else rec
            out[rec.key] = rec
        return out

    def dialogue_writer(self) -> JsonlWriter:
        return JsonlWriter(self.dialogues_path)

    def score_writer(self) -> JsonlWriter:
        return JsonlWriter(self.scores_path)

    # -- leaderboard --------------------------------------------------------------

    def write_leaderboard(self, board: Leaderboard) -> None:
        write_json_atomic(self.leaderboard_path, board.model_dump(mode="json"))

    def read_leaderboard(self) -> Leaderboard:
        try:
            return Leaderboard.model_validate_json(self.leaderboard_path.read_bytes())
        except FileNotFoundError:
            raise UserError(f"{self.path} has no {LEADERBOARD} yet") from None


@dataclass
class _Held:
    fh: IO[bytes]
    created: bool  # the folder
    new_lock: bool  # its lock file
    depth: int = 1


_HELD: dict[str, _Held] = {}  # run folders this process holds, by real path


def _take_lock(path: Path, folder: Path) -> IO[bytes]:
    import fcntl

    for _ in range(5):
        fh = open(path, "ab")  # noqa: SIM115 - held open for the whole command
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise UserError(f"{folder} is in use by another esc-bench process; wait for it or stop it") from None
        try:
            if os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino:
                return fh
        except FileNotFoundError:
            pass
        fh.close()  # its holder removed that lock file as it left: take the folder's new one
        folder.mkdir(parents=True, exist_ok=True)
    raise UserError(f"{folder} is in use by another esc-bench process; wait for it or stop it")


_KEPT_REPLY = 300  # characters of a reply with no score kept in a slim score record
# Every field is set in a slim record: one shared set, not one per record (it never grows).
_DIALOGUE_FIELDS = set(DialogueRecord.model_fields)
_SCORE_FIELDS = set(ScoreRecord.model_fields)
_TURN_FIELDS = set(Turn.model_fields)


def dialogue_facts(d: DialogueRecord) -> DialogueRecord:
    """A dialogue without its text: status, error, end, and the seeker's non-text state per turn
    (what tallies, leaderboards and trajectories read). Its memory does not grow with the text."""
    turns = [
        Turn.model_construct(_TURN_FIELDS, speaker=t.speaker, text="", state=_numbers(t.state), cut=False)
        for t in d.transcript if t.speaker == "seeker" and t.state
    ]
    return DialogueRecord.model_construct(
        _DIALOGUE_FIELDS, task=sys.intern(d.task), model=sys.intern(d.model), card_id=d.card_id, language=d.language,
        source=_intern(d.source), category=_intern(d.category), card=None, status=d.status, transcript=turns,
        error=d.error, started=d.started, duration_s=d.duration_s, usage={}, card_sha=d.card_sha,
        end=_intern(d.end), state=_numbers(d.state),
    )


def score_facts(s: ScoreRecord) -> ScoreRecord:
    """A score without the judge's reply (kept, cut short, only when it gave no score)."""
    raw = s.raw[:_KEPT_REPLY] if s.raw is not None and s.score is None and s.error is None else None
    return ScoreRecord.model_construct(
        _SCORE_FIELDS, task=sys.intern(s.task), model=sys.intern(s.model), card_id=sys.intern(s.card_id),
        judge=sys.intern(s.judge), dimension=sys.intern(s.dimension), score=s.score, raw=raw,
        attempts=s.attempts, expected=s.expected, probs=None, error=s.error, usage=None, cut=s.cut,
    )


def _intern(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def _numbers(state: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if state is None else {k: v for k, v in state.items() if not isinstance(v, str)}


def config_differences(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Names whose config hash changed between a run folder and the current command."""
    return sorted(k for k in new if k in old and old[k] != new[k])


def _nearest_existing_parent(p: Path) -> Path | None:
    p = p.absolute()
    for parent in [p, *p.parents]:
        if parent.exists():
            return parent if parent.is_dir() else None
    return None
