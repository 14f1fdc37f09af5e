"""The judge-reply parser and the crash-tolerant JSONL store, by example and by property."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esc_bench.protocols.rubric_judge import parse_score
from esc_bench.records import Turn, DialogueRecord
from esc_bench.store.jsonl import JsonlWriter, read_records


@pytest.mark.parametrize(
    "reply, score",
    [
        ("3", 3),
        ("Score: 4", 4),
        ("I'd give it a 2 out of 4.", 2),
        ("On a scale of 0-4 this deserves 3.", 3),
        ("評分：３", 3),  # full-width digit
        ("得分为2分", 2),
        ("10 out of 10", None),
        ("3.5", None),
        ("It scores 7", None),
        ("", None),
        (None, None),
        ("no number here", None),
        ("5 stars, but on this rubric: 1", 1),
    ],
)
def test_parse_score_examples(reply: str | None, score: int | None) -> None:
    assert parse_score(reply) == score


@given(st.text())
def test_parse_score_is_total_and_in_range(reply: str) -> None:
    s = parse_score(reply)
    assert s is None or 0 <= s <= 4


_NO_DIGITS = st.text(max_size=40).filter(
    lambda s: not any(ch.isdigit() for ch in unicodedata.normalize("NFKC", s))
)


@given(_NO_DIGITS, st.integers(0, 4), st.text(alphabet="abc .!", max_size=10))
def test_a_lone_digit_is_found(prefix: str, digit: int, suffix: str) -> None:
    assert parse_score(f"{prefix} {digit} {suffix}") == digit


def _rec(i: int) -> DialogueRecord:
    return DialogueRecord(
        task="t", model="m", card_id=str(i), language="en", status="ok",
        transcript=[Turn(speaker="supporter", text=f"hello {i} ✓")],
    )


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 6), cut=st.integers(0, 10_000))
def test_jsonl_survives_truncation_anywhere(tmp_path_factory, n: int, cut: int) -> None:
    path = tmp_path_factory.mktemp("j") / "d.jsonl"
    w = JsonlWriter(path, fsync=False)
    w.write_many([_rec(i) for i in range(n)])
    w.close()
    data = path.read_bytes()
    cut = cut % (len(data) + 1)
    path.write_bytes(data[:cut])
    got = read_records(path, DialogueRecord)
    whole_lines = data[:cut].count(b"\n")
    assert [r.card_id for r in got] == [str(i) for i in range(whole_lines)]
    # Appending after a torn line drops the torn part and keeps every record whole.
    w = JsonlWriter(path, fsync=False)
    w.write(_rec(99))
    w.close()
    again = read_records(path, DialogueRecord)
    assert [r.card_id for r in again] == [str(i) for i in range(whole_lines)] + ["99"]


def test_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    from esc_bench.errors import DataError

    path = tmp_path / "d.jsonl"
    w = JsonlWriter(path, fsync=False)
    w.write(_rec(1))
    w.close()
    path.write_bytes(path.read_bytes() + b'{"task": 1}\n')
    with pytest.raises(DataError, match=r"d.jsonl:2"):
        read_records(path, DialogueRecord)
