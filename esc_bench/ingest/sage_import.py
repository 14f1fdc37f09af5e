"""A SAGE result file as a run folder of the `sage` protocol (written through esc_bench.store).

Each published dialogue becomes a dialogue record (task `sage_zh` by default, card_id = the
profile id, so it pairs with esc-bench runs of SAGE's profiles) whose seeker turns carry the
state the sage plugin records (emotion, change, inner thoughts, goodbye), and one self-score:
the final emotion. The ending is read from the record: the emotion's verdict (>= 100 success,
< 10 failure), else the reply cap when the supporter spoke last, else the seeker's goodbye.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from esc_bench.errors import UserError
from esc_bench.ingest.sage_results import PublishedDialogue, parse_result_file
from esc_bench.protocols import sage_mechanics as rules
from esc_bench.protocols.base import SELF_JUDGE, self_score
from esc_bench.protocols.sage import NAME, SPEC
from esc_bench.protocols.sage_replies import SageState
from esc_bench.records import DialogueRecord, Leaderboard, ScoreRecord, Turn

if TYPE_CHECKING:
    from esc_bench.store.run_dir import RunDir

DEFAULT_TASK = "sage_zh"
_SIMULATOR_DIR = re.compile(r"^(.+)_based_simulator$")


def simulator_from_path(path: Path) -> str | None:
    """SAGE files sit in `<simulator>_based_simulator/`: that folder names the sentient agent."""
    m = _SIMULATOR_DIR.match(Path(path).resolve().parent.name)
    return m.group(1) if m else None


def _end(d: PublishedDialogue) -> str:
    verdict = rules.emotion_end(d.final_emotion)
    if verdict:
        return verdict
    return "rounds" if d.turns[-1].speaker == "supporter" else "goodbye"


def dialogue_records(dialogues: list[PublishedDialogue], *, task: str, model: str) -> list[DialogueRecord]:
    out = []
    for d in dialogues:
        end = _end(d)
        last_seeker = max(i for i, t in enumerate(d.turns) if t.speaker == "seeker")
        transcript, state = [], None
        for i, t in enumerate(d.turns):
            if t.speaker == "supporter":
                transcript.append(Turn(speaker="supporter", text=t.text))
                continue
            assert t.emotion is not None  # the parser requires it on seeker turns
            state = SageState(emotion=t.emotion, change=t.change, thoughts=t.thoughts,
                              goodbye=end == "goodbye" and i == last_seeker)
            transcript.append(Turn(speaker="seeker", text=t.text, state=state.model_dump(mode="json")))
        out.append(DialogueRecord(
            task=task, model=model, card_id=d.id, language="zh", source="SAGE", category=d.character,
            status="ok", transcript=transcript, end=end,
            state=None if state is None else state.model_dump(mode="json"),
        ))
    return out


def import_sage(
    result_path: Path,
    out: Path,
    *,
    model: str,
    task: str = DEFAULT_TASK,
    simulator: str | None = None,
    argv: list[str] | None = None,
    seed: int = 0,
) -> tuple[RunDir, Leaderboard]:
    """Write (or add a model to) a run folder from one SAGE result file; returns (RunDir, board)."""
    from esc_bench import __version__
    from esc_bench.analysis.leaderboard import run_leaderboard
    from esc_bench.analysis.runs import load_run
    from esc_bench.records import Manifest
    from esc_bench.store.manifest import now_iso
    from esc_bench.store.run_dir import RunDir

    published = parse_result_file(Path(result_path))
    simulator = simulator or simulator_from_path(Path(result_path)) or "sage-published"
    dialogues = dialogue_records(published, task=task, model=model)
    scores: list[ScoreRecord] = [self_score(d, "emotion", published[i].final_emotion) for i, d in enumerate(dialogues)]
    rd = RunDir(Path(out))
    rd.check_writable()
    if rd.exists():
        manifest = rd.read_manifest()
        old: dict[str, Any] | None = manifest.tasks.get(task)
        if old is not None:
            for key, value in (("protocol", NAME), ("simulator", simulator)):
                if old.get(key) != value:
                    raise UserError(f"{rd.path}: task {task} has {key} {old.get(key)}, not {value}")
    elif rd.path.exists() and any(rd.path.iterdir()):
        raise UserError(f"{rd.path} exists and is not an esc-bench run folder")
    with rd.lock():
        if rd.exists():
            if any(d.task == task and d.model == model for d in rd.read_dialogues()):
                raise UserError(f"{rd.path} already holds {model} on {task}; import into another folder")
        else:
            manifest = Manifest(run_id=rd.path.name or f"sage-{model}", created=now_iso(),
                                command=list(argv or []), seed=seed, esc_bench_version=__version__)
        manifest.supporters = list(dict.fromkeys([*manifest.supporters, model]))
        manifest.tasks[task] = {
            "name": task, "language": "zh", "protocol": NAME, "simulator": simulator, "judge": SELF_JUDGE,
            "rounds": rules.MAX_REPLIES, "imported_from": {"sage_results": str(result_path)},
        }
        manifest.protocols[task] = NAME
        manifest.specs[task] = SPEC
        ids = manifest.cards.setdefault(task, [])
        ids.extend(d.card_id for d in dialogues if d.card_id not in ids)
        rd.write_manifest(manifest)
        writer = rd.dialogue_writer()
        d_lines: list[BaseModel] = [*dialogues]
        writer.write_many(d_lines)
        writer.close()
        swriter = rd.score_writer()
        s_lines: list[BaseModel] = [*scores]
        swriter.write_many(s_lines)
        swriter.close()
        board = run_leaderboard(load_run(rd.path), seed=seed)
        rd.write_leaderboard(board)
    return rd, board
