"""The end of a run streams: its peak memory does not grow with the number (or length) of dialogues.

Before, the leaderboard step held every dialogue whole (≈85 KB of memory each on a real run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.records import Card, DialogueRecord, ScoreRecord, Turn
from esc_bench.store.run_dir import Manifest, RunDir

# In a fresh process: the end of a run (board, summary) over a folder; prints the growth of the
# peak RSS over the process's size once everything is imported.
_MEASURE = """
import io, json, resource, sys
from pathlib import Path
from rich.console import Console
import esc_bench.analysis.leaderboard, esc_bench.analysis.runs, esc_bench.analysis.tables, numpy
from esc_bench.engine import finalize
from esc_bench.store.run_dir import RunDir
rd = RunDir(Path(sys.argv[1]))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if hasattr(finalize, "end_of_run"):
    end = finalize.end_of_run(rd)
    board, dialogues, scores = end.board, end.dialogues, end.scores
else:  # the code before streaming
    board = finalize.build_run_leaderboard(rd)
    dialogues, scores = list(rd.latest_dialogues().values()), list(rd.latest_scores().values())
finalize.print_summary(Console(file=io.StringIO(), width=160), board, dialogues, scores)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (peak - base) / 1024, "entries": len(board.entries)}))
"""

_LINE = "I keep going over what my manager said, and I cannot sleep before the night shifts. " * 18


def _write_run(path: Path, n: int) -> None:
    """n dialogues (two models) of 11 turns of ~1.5 KB each and a role card: ~20 KB a line."""
    rd = RunDir(path)
    rd.write_manifest(Manifest(
        run_id=path.name, created="2024-06-24T00:00:00+00:00", command=["esc-bench"], seed=0,
        esc_bench_version="test", supporters=["a", "b"],
        tasks={"t_en": {"name": "t_en", "language": "en", "protocol": "esc-eval", "judge": "esc-rank"}},
        protocols={"t_en": "esc-eval"},
    ))
    dw, sw = rd.dialogue_writer(), rd.score_writer()
    for i in range(n):
        model, card = ("a", "b")[i % 2], f"c{i // 2}"
        turns = [Turn(speaker="supporter" if j % 2 == 0 else "seeker", text=f"{_LINE} {i}.{j}") for j in range(11)]
        failed = i % 50 == 7
        dw.write(DialogueRecord(
            task="t_en", model=model, card_id=card, language="en", status="failed" if failed else "ok",
            transcript=turns, card=Card(id=card, base=_LINE + card, language="en"),
        ))
        if not failed:
            sw.write_many([ScoreRecord(task="t_en", model=model, card_id=card, judge="esc-rank", dimension=dim,
                                       score=(i + k) % 5, raw=f"The {dim} is {(i + k) % 5}. " + _LINE[:200])
                           for k, dim in enumerate(DIMENSION_NAMES)])
    dw.close()
    sw.close()


def _growth_mb(path: Path) -> float:
    res = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["entries"] == 2
    return float(out["growth_mb"])


@pytest.mark.slow
def test_the_end_of_a_run_does_not_grow_with_the_number_of_dialogues(tmp_path: Path) -> None:
    _write_run(tmp_path / "small", 200)
    _write_run(tmp_path / "large", 2000)
    assert (tmp_path / "large" / "dialogues.jsonl").stat().st_size > 30_000_000
    small, large = _growth_mb(tmp_path / "small"), _growth_mb(tmp_path / "large")
    print(f"end of run: +{small:.1f} MB over 200 dialogues, +{large:.1f} MB over 2000")
    # 1,800 more dialogues of ~20 KB each (36 MB of text): held whole they cost > 150 MB.
    assert large - small < 25, (small, large)
