"""The sentient seeker's prompts: what each call carries, and what the supporter never sees."""

from __future__ import annotations

import pytest

from esc_bench.data.sage_profiles import SageProfile, profile_text
from esc_bench.protocols.sage_prompts import (
    EN,
    ZH,
    band,
    feel_messages,
    opening_messages,
    speak_messages,
    supporter_messages,
)
from esc_bench.protocols.sage_replies import parse_feel, parse_opening, parse_speak
from esc_bench.records import Turn

PROFILE = "A 30-year-old nurse, exhausted after night shifts; hidden topic: wants her effort to be seen."
TRANSCRIPT = [
    Turn(speaker="seeker", text="I can't sleep anymore."),
    Turn(speaker="supporter", text="That sounds exhausting. What keeps you awake?"),
]


@pytest.mark.parametrize("lang, w", [("en", EN), ("zh", ZH)])
def test_feel_call_carries_profile_emotion_history_and_latest_reply(lang: str, w) -> None:
    msgs = feel_messages(PROFILE, lang, TRANSCRIPT, 55)  # type: ignore[arg-type]
    assert [m["role"] for m in msgs] == ["system", "user"]
    system, user = msgs[0]["content"], msgs[1]["content"]
    assert PROFILE in system and "55" in system and band(w, 55) in system
    assert '"thoughts"' in system and '"change"' in system and "-10" in system
    assert f"{w.me}: I can't sleep anymore." in user
    assert user.rstrip().endswith(f"{w.them}: That sounds exhausting. What keeps you awake?")
    # the latest reply is set apart from the history before it
    assert user.count("That sounds exhausting") == 1 and w.latest_header in user


def test_feel_needs_a_supporter_reply_last() -> None:
    with pytest.raises(ValueError):
        feel_messages(PROFILE, "en", TRANSCRIPT[:1], 40)


@pytest.mark.parametrize("lang, w", [("en", EN), ("zh", ZH)])
def test_speak_call_carries_new_emotion_thoughts_and_ending(lang: str, w) -> None:
    plain = speak_messages(PROFILE, lang, TRANSCRIPT, 62, "They asked the right thing.")  # type: ignore[arg-type]
    system = plain[0]["content"]
    assert "62" in system and "They asked the right thing." in system and '"goodbye"' in system
    assert w.ending_success.strip() not in system and w.ending_failure.strip() not in system
    assert "That sounds exhausting" in plain[1]["content"]
    won = speak_messages(PROFILE, lang, TRANSCRIPT, 100, "x", ending="success")  # type: ignore[arg-type]
    lost = speak_messages(PROFILE, lang, TRANSCRIPT, 5, "x", ending="failure")  # type: ignore[arg-type]
    assert w.ending_success.strip() in won[0]["content"]
    assert w.ending_failure.strip() in lost[0]["content"]


def test_opening_call_asks_for_a_line_only() -> None:
    msgs = opening_messages(PROFILE, "en")
    assert len(msgs) == 1 and PROFILE in msgs[0]["content"] and '{"line"' in msgs[0]["content"]


def test_bands_cover_the_scale() -> None:
    for w in (EN, ZH):
        assert band(w, 100) == w.bands[0][1] and band(w, 0) == w.bands[-1][1]
        assert band(w, 9) != band(w, 10) and band(w, 39) != band(w, 40) and band(w, 69) != band(w, 70)


def test_the_supporter_sees_lines_only() -> None:
    transcript = [
        Turn(speaker="seeker", text="hello"),
        Turn(speaker="supporter", text="hi, how are you?"),
        Turn(speaker="seeker", text="not great"),
    ]
    for lang in ("en", "zh"):
        msgs = supporter_messages(lang, transcript)  # type: ignore[arg-type]
        assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
        assert [m["content"] for m in msgs[1:]] == ["hello", "hi, how are you?", "not great"]
        system = msgs[0]["content"].lower()
        for word in ("emotion", "evaluat", "score", "role-play", "test", "情绪值", "评估", "扮演", "测试"):
            assert word not in system


def test_profile_text_holds_every_field() -> None:
    p = SageProfile(id="x", player="* 姓名：小王", scene="## 背景\n故事", main_cha="被动型",
                    cha_group=("敏感", "内向"), task="你希望被倾听", first_talk="唉，最近好累。")
    text = profile_text(p)
    for part in ("* 姓名：小王", "故事", "被动型（敏感、内向）", "你希望被倾听", "唉，最近好累。"):
        assert part in text


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_format_shown_in_each_prompt_parses(lang: str) -> None:
    """The example object each prompt shows, filled in, is accepted by the strict parsers."""
    feel = feel_messages(PROFILE, lang, TRANSCRIPT, 40)[0]["content"]  # type: ignore[arg-type]
    speak = speak_messages(PROFILE, lang, TRANSCRIPT, 40, "x")[0]["content"]  # type: ignore[arg-type]
    opening = opening_messages(PROFILE, lang)[0]["content"]  # type: ignore[arg-type]
    assert '{"thoughts": "<' in feel and '{"line": "<' in speak and '{"line": "<' in opening
    assert parse_feel('{"thoughts": "a", "change": 0}').change == 0
    assert parse_speak('{"line": "a", "goodbye": false}').goodbye is False
    assert parse_opening('{"line": "a"}').line == "a"
