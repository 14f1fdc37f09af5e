"""The sentient-agent protocol's rules (pure functions) and its strict reply formats."""

from __future__ import annotations

import pytest

from esc_bench.protocols import sage_mechanics as m
from esc_bench.protocols.sage_replies import (
    FeelReply,
    SageState,
    SpeakReply,
    parse_feel,
    parse_opening,
    parse_speak,
)

# -- mechanics ------------------------------------------------------------------------


def test_constants_follow_sage() -> None:
    assert (m.START_EMOTION, m.MIN_EMOTION, m.MAX_EMOTION) == (40, 0, 100)
    assert (m.MAX_CHANGE, m.SUCCESS_AT, m.FAILURE_BELOW, m.MAX_REPLIES) == (10, 100, 10, 10)


@pytest.mark.parametrize(
    "emotion, change, after",
    [(40, 5, 45), (40, -10, 30), (40, 25, 50), (40, -25, 30), (95, 10, 100), (100, 3, 100), (4, -10, 0), (0, -1, 0)],
)
def test_change_is_bounded_and_emotion_clamped(emotion: int, change: int, after: int) -> None:
    assert m.apply_change(emotion, change) == after


@pytest.mark.parametrize(
    "emotion, goodbye, reason",
    [
        (100, False, "success"), (100, True, "success"), (9, False, "failure"), (0, True, "failure"),
        (10, False, None), (99, False, None), (50, True, "goodbye"), (10, True, "goodbye"),
    ],
)
def test_end_after_turn(emotion: int, goodbye: bool, reason: str | None) -> None:
    assert m.end_after_turn(emotion, goodbye) == reason


def test_reply_cap() -> None:
    assert not m.reply_cap_reached(9)
    assert m.reply_cap_reached(10)
    assert m.reply_cap_reached(3, max_replies=3)


def test_outcomes_by_final_emotion() -> None:
    assert [m.outcome(x) for x in (100, 99.5, 10, 9.9, 0)] == ["success", None, None, "failure", "failure"]


def test_mean_trajectory_carries_ended_dialogues_forward() -> None:
    traj, active = m.mean_trajectory([[40, 50, 60], [40, 30], [40]])
    assert traj == (40.0, round((50 + 30 + 40) / 3, 4), round((60 + 30 + 40) / 3, 4))
    assert active == (3, 2, 1)
    assert m.mean_trajectory([]) == ((), ())


def test_summary_counts_and_ci() -> None:
    finals = [100, 100, 5, 40, 65, 9]
    s = m.summarize(finals, [[40, 100], [40, 100], [40, 5]], seed=1)
    assert s.n == 6 and s.success == 2 and s.failure == 2
    assert s.mean == pytest.approx(sum(finals) / 6)
    assert s.ci95 is not None and s.ci95[0] < s.mean < s.ci95[1]
    assert s.trajectory == (40.0, round(205 / 3, 4))
    empty = m.summarize([])
    assert (empty.n, empty.mean, empty.ci95, empty.success, empty.trajectory) == (0, None, None, 0, ())


# -- reply formats --------------------------------------------------------------------


def test_feel_reply_parses() -> None:
    assert parse_feel('{"thoughts": "  They listened. ", "change": -3}') == FeelReply(thoughts="They listened.", change=-3)
    fenced = '```json\n{"thoughts": "ok", "change": 10}\n```'
    assert parse_feel(fenced).change == 10


@pytest.mark.parametrize(
    "text, reason",
    [
        ('Sure! {"thoughts": "x", "change": 1}', "not one JSON object"),
        ('{"thoughts": "x", "change": 1} hope this helps', "not one JSON object"),
        ('{"thoughts": "x", "change": 11}', "'change'"),
        ('{"thoughts": "x", "change": -11}', "'change'"),
        ('{"thoughts": "x", "change": 2.5}', "'change'"),
        ('{"thoughts": "x", "change": "+2"}', "'change'"),
        ('{"thoughts": "x", "change": true}', "'change'"),
        ('{"thoughts": "   ", "change": 1}', "'thoughts'"),
        ('{"thoughts": "x"}', "'change'"),
        ('{"thoughts": "x", "change": 1, "line": "hi"}', "'line'"),
        ("{'thoughts': 'x', 'change': 1}", "invalid JSON"),
        ("[1, 2]", "not one JSON object"),
        ("", "not one JSON object"),
    ],
)
def test_malformed_feel_replies_are_refused_not_guessed(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as e:
        parse_feel(text)
    assert "\n" not in str(e.value)


def test_speak_and_opening_replies() -> None:
    assert parse_speak('{"line": "Bye then.", "goodbye": true}') == SpeakReply(line="Bye then.", goodbye=True)
    for bad in ('{"line": "hi"}', '{"line": "hi", "goodbye": "no"}', '{"line": "", "goodbye": false}',
                '{"line": 3, "goodbye": false}'):
        with pytest.raises(ValueError):
            parse_speak(bad)
    assert parse_opening('{"line": "I need to talk."}').line == "I need to talk."
    with pytest.raises(ValueError, match="'goodbye'"):
        parse_opening('{"line": "hi", "goodbye": false}')


def test_state_is_bounded() -> None:
    assert SageState(emotion=40).model_dump() == {"emotion": 40, "change": None, "thoughts": None, "goodbye": False}
    with pytest.raises(ValueError):
        SageState(emotion=101)
