"""SAGE's published result files, parsed strictly (against ../shared/sage's real sample)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from esc_bench.ingest.sage_results import parse_result_file
from esc_bench.errors import DataError
from tests.support.sage_data import RESULT_SAMPLE, shared_sage_or_skip

# Worked out by hand from the sample's 12 lines: (id prefix, final emo_point, seeker turns,
# supporter replies). Trajectories checked below for four of them.
EXPECTED = [
    ("d3c386e4", 15, 10, 10), ("66aaf749", 50, 10, 10), ("cf31b2b2", 40, 10, 10), ("6d6ee798", 100, 9, 8),
    ("ebaede21", 95, 10, 10), ("ac4c7182", 90, 10, 10), ("1417207a", 25, 10, 10), ("72567917", 65, 10, 10),
    ("fe3aaa62", 75, 10, 10), ("d72ddfeb", 100, 9, 8), ("950e84da", 100, 9, 8), ("ddd191c1", 5, 8, 7),
]


def test_the_published_sample_parses() -> None:
    dialogues = parse_result_file(shared_sage_or_skip(RESULT_SAMPLE))
    got = [(d.id[:8], d.final_emotion, sum(t.speaker == "seeker" for t in d.turns), d.replies) for d in dialogues]
    assert got == EXPECTED
    by = {d.id[:8]: d for d in dialogues}
    assert by["d3c386e4"].trajectory == [40, 45, 40, 45, 40, 35, 30, 25, 20, 15]
    assert by["6d6ee798"].trajectory == [40, 45, 55, 65, 70, 80, 90, 95, 100]
    assert by["ddd191c1"].trajectory == [40, 35, 30, 25, 20, 15, 10, 5]
    assert by["950e84da"].trajectory == [40, 50, 60, 70, 80, 85, 90, 95, 100]
    first = by["d3c386e4"]
    assert first.emo_state == "Emotion-C" and first.character == "负面型"
    opening, second = first.turns[0], first.turns[2]
    assert (opening.emotion, opening.change, opening.thoughts) == (40, None, None)
    assert second.change == 5 and second.thoughts and not second.thoughts.startswith("心理活动")


def _row(**over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "a", "emo_point": 45, "emo_state": "Emotion-B", "character": "被动型", "topic": "t",
        "history": [
            {"role": "user", "content": "hi", "emotion-point": 40},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "ok", "emotion-point": 45, "thinking": "x",
             "planning": {"activity": "a", "change": 5}},
        ],
    }
    row.update(over)
    return row


def _write(tmp_path: Path, *rows: Any) -> Path:
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows))
    return path


@pytest.mark.parametrize(
    "rows, expected",
    [
        (["{oops"], r"r\.jsonl:1: invalid JSON"),
        ([[1]], r"r\.jsonl:1: a dialogue must be a JSON object"),
        ([{"emo_point": 1, "history": []}], r"r\.jsonl:1: no 'id'"),
        ([_row(emo_point=None)], r":1: dialogue a: emo_point is None, not a whole number"),
        ([_row(emo_point=140)], r":1: dialogue a: emo_point 140 is outside 0-100"),
        ([_row(history=[])], r"'history' is not a non-empty list"),
        ([_row(emo_point=50)], r"emo_point 50 differs from the last seeker turn's emotion-point 45"),
        ([_row(history=[{"role": "user", "content": "hi"}], emo_point=40)], r"history\[0\] \(a seeker turn\) has no 'emotion-point'"),
        ([_row(history=[{"role": "bot", "content": "hi"}])], r"history\[0\] role is 'bot'"),
        ([_row(history=[{"role": "assistant", "content": "hi"}])], r"history\[0\] is a supporter turn where a seeker turn belongs"),
        ([_row(history=[{"role": "user", "content": 3, "emotion-point": 40}])], r"history\[0\] has no text 'content'"),
        ([_row(history=[{"role": "user", "content": "x", "emotion-point": 40, "planning": "p"}], emo_point=40)],
         r"planning is str, not an object"),
        ([_row(history=[{"role": "user", "content": "x", "emotion-point": 40, "planning": {"change": "lots"}}],
               emo_point=40)], r"planning change is 'lots'"),
        ([_row(), _row()], r"r\.jsonl:2: duplicate dialogue id 'a' \(first at line 1\)"),
        (["", " "], r"r\.jsonl: no dialogues"),
    ],
)
def test_malformed_result_files_are_one_line_errors(tmp_path: Path, rows: list[Any], expected: str) -> None:
    with pytest.raises(DataError, match=expected) as e:
        parse_result_file(_write(tmp_path, *rows))
    assert "\n" not in str(e.value)


def test_numeric_strings_are_read_as_numbers(tmp_path: Path) -> None:
    row = _row(emo_point="45")
    row["history"][0]["emotion-point"] = "40"
    row["history"][2]["planning"]["change"] = "+5"
    [d] = parse_result_file(_write(tmp_path, row))
    assert d.final_emotion == 45 and d.trajectory == [40, 45] and d.turns[2].change == 5


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        parse_result_file(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "\xff"}')
    with pytest.raises(DataError, match="not UTF-8"):
        parse_result_file(bad)
