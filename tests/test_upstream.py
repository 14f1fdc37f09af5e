"""Pinned upstream downloads (sha256, cache) and the `ast` extraction of the esc-eval protocol."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from esc_bench.data import upstream
from esc_bench.data.upstream import (
    PINNED_SHA256,
    UPSTREAM_COMMIT,
    cache_dir,
    extract_protocol,
    fetch_pinned,
    file_url,
    load_upstream_protocol,
)
from esc_bench.dimensions import BY_KEY, UPSTREAM_KEY_ORDER
from esc_bench.errors import DataError
from esc_bench.records import Card, Turn
from tests.support.static_server import StaticServer
from tests.support.upstream_standins import (
    ESC_EVAL,
    recipe,
    reference,
    shared_or_skip,
    standin_evaluate,
    standin_score,
)


def _cached(path: str) -> Path:
    return cache_dir() / "upstream" / UPSTREAM_COMMIT / path


def _pin(path: str) -> str:
    return json.loads(Path(os.environ["ESC_BENCH_UPSTREAM_PINS"]).read_text())[path]


def _one_line(e: pytest.ExceptionInfo[DataError]) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# -- download and cache ---------------------------------------------------------------


def test_defaults_point_at_github_and_home_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ESC_BENCH_UPSTREAM_URL", "ESC_BENCH_CACHE_DIR", "ESC_BENCH_UPSTREAM_PINS"):
        monkeypatch.delenv(var, raising=False)
    assert file_url("score.py") == (
        f"https://raw.githubusercontent.com/haidequanbu/ESC-Eval/{UPSTREAM_COMMIT}/score.py"
    )
    assert cache_dir() == Path.home() / ".cache" / "esc-bench"
    assert set(upstream.pins()) == set(PINNED_SHA256) == {
        "data/card_high_en.json", "data/card_high_zh.json", "score.py", "evaluate.py",
    }


def test_pins_match_shared_readme_hashes() -> None:
    ref = reference()
    assert ref["upstream"]["commit"] == UPSTREAM_COMMIT
    assert ref["upstream"]["files"] == PINNED_SHA256


def test_download_is_verified_and_cached_once(upstream_mirror: StaticServer) -> None:
    first = fetch_pinned("evaluate.py")
    second = fetch_pinned("evaluate.py")
    assert first == second == _cached("evaluate.py")
    assert hashlib.sha256(first.read_bytes()).hexdigest() == _pin("evaluate.py")
    assert upstream_mirror.count(f"/{UPSTREAM_COMMIT}/evaluate.py") == 1
    assert upstream_mirror.count() == 1


def test_loading_the_protocol_twice_downloads_each_file_once(upstream_mirror: StaticServer) -> None:
    assert load_upstream_protocol() == load_upstream_protocol()
    assert sorted(upstream_mirror.requests) == sorted(
        f"/{UPSTREAM_COMMIT}/{p}" for p in ("evaluate.py", "score.py")
    )


def test_corrupt_cache_is_downloaded_again(upstream_mirror: StaticServer) -> None:
    path = fetch_pinned("data/card_high_en.json")
    good = path.read_bytes()
    path.write_bytes(good[:100])  # truncated
    assert fetch_pinned("data/card_high_en.json").read_bytes() == good
    assert upstream_mirror.count() == 2


def test_hash_mismatch_is_refused_and_not_cached(
    upstream_mirror: StaticServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad-pins.json"
    bad.write_text(json.dumps({"score.py": "0" * 64}))
    monkeypatch.setenv("ESC_BENCH_UPSTREAM_PINS", str(bad))
    with pytest.raises(DataError) as e:
        fetch_pinned("score.py")
    msg = _one_line(e)
    assert "score.py" in msg and "0" * 64 in msg and "sha256 mismatch" in msg
    assert hashlib.sha256((tmp_path / "mirror" / UPSTREAM_COMMIT / "score.py").read_bytes()).hexdigest() in msg
    assert not _cached("score.py").exists()
    assert list(_cached("score.py").parent.glob("*")) == []


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_unreachable_without_cache_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _closed_port_url()
    monkeypatch.setenv("ESC_BENCH_UPSTREAM_URL", url)
    monkeypatch.setenv("ESC_BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ESC_BENCH_UPSTREAM_PINS", raising=False)
    with pytest.raises(DataError) as e:
        fetch_pinned("evaluate.py")
    msg = _one_line(e)
    assert f"{url}/{UPSTREAM_COMMIT}/evaluate.py" in msg
    assert "ESC_BENCH_UPSTREAM_URL" in msg and str(tmp_path / "cache") in msg
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_unreachable_with_a_good_cache_works_offline(
    upstream_mirror: StaticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch_pinned("score.py")
    monkeypatch.setenv("ESC_BENCH_UPSTREAM_URL", _closed_port_url())
    assert fetch_pinned("score.py") == _cached("score.py")


def test_missing_file_on_the_mirror(upstream_mirror: StaticServer, tmp_path: Path) -> None:
    (tmp_path / "mirror" / UPSTREAM_COMMIT / "score.py").unlink()
    with pytest.raises(DataError) as e:
        fetch_pinned("score.py")
    assert "404" in _one_line(e) and "score.py" in str(e.value)


def test_unpinned_path_and_bad_pins_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESC_BENCH_UPSTREAM_PINS", raising=False)
    with pytest.raises(DataError, match="no sha256 pin for upstream file 'README.md'"):
        fetch_pinned("README.md")
    pins = tmp_path / "pins.json"
    pins.write_text("[1, 2]")
    monkeypatch.setenv("ESC_BENCH_UPSTREAM_PINS", str(pins))
    with pytest.raises(DataError, match="ESC_BENCH_UPSTREAM_PINS=.*expected a JSON object"):
        fetch_pinned("score.py")


# -- extraction -----------------------------------------------------------------------


def _check_against_reference(proto: Any, ref: dict[str, Any]) -> None:
    assert proto.name == "esc-eval"
    assert proto.rounds == ref["rounds"]
    assert proto.supporter_system == ref["supporter_system_if_missing"]
    assert proto.supporter_prefix == ref["transcript_speaker_prefix"]["supporter"]
    assert proto.seeker_prefix == ref["transcript_speaker_prefix"]["seeker"]
    assert proto.judge_dimension_names == {d["rank_adapter"]: d["name_in_judge_prompt"] for d in ref["dimensions"]}
    rec = recipe(ref)
    assert proto.transcript_separator == rec.separator
    assert proto.transcript_replacements == rec.replacements
    assert (proto.judge_header, proto.judge_after_dialogue, proto.judge_ask_before, proto.judge_ask_after) == rec.pieces
    for lang in ("en", "zh"):
        want, got = ref["languages"][lang], proto.languages[lang]
        assert got.seeker_system_before_card == want["seeker_system_before_card"]
        assert got.seeker_system_after_card == want["seeker_system_after_card"]
        assert got.greeting == want["greeting"]
        assert list(got.judge_rubrics) == list(UPSTREAM_KEY_ORDER)
        assert [got.judge_rubrics[k] for k in UPSTREAM_KEY_ORDER] == want["judge_rubrics"]


def test_extraction_equals_the_reference_strings(upstream_mirror: StaticServer) -> None:
    proto = load_upstream_protocol()
    _check_against_reference(proto, reference())


def _transcript(lines: list[str], ref: dict[str, Any]) -> list[Turn]:
    prefixes = ref["transcript_speaker_prefix"]
    speaker_of = {prefixes[s].split("：")[0]: s for s in ("supporter", "seeker")}
    turns = []
    for line in lines:
        label, text = line.split("：", 1)
        turns.append(Turn(speaker=speaker_of[label], text=text))
    return turns


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_judge_prompts_for_real_transcripts_match_the_upstream_recipe(
    upstream_mirror: StaticServer, lang: str
) -> None:
    ref, rec = reference(), recipe()
    proto = load_upstream_protocol()
    dialogues = json.loads((ESC_EVAL / "transcripts" / f"llama3_{lang}.json").read_text(encoding="utf-8"))
    assert dialogues
    for lines in dialogues.values():
        assert len(lines) == 2 * proto.rounds + 1
        turns = _transcript(lines, ref)
        for i, dim in enumerate(ref["dimensions"]):
            expected = rec.judge_prompt(
                ref["languages"][lang]["judge_rubrics"][i], dim["name_in_judge_prompt"], lines
            )
            name = BY_KEY[dim["rank_adapter"]].name
            assert proto.judge_prompt(name, turns, lang) == expected  # type: ignore[arg-type]
            assert proto.judge_messages(name, turns, lang) == [{"role": "user", "content": expected}]  # type: ignore[arg-type]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_seeker_and_supporter_messages_follow_the_upstream_loop(upstream_mirror: StaticServer, lang: str) -> None:
    ref = reference()
    proto = load_upstream_protocol()
    strings = ref["languages"][lang]
    raw = json.loads((ESC_EVAL / f"card_high_{lang}.json").read_text(encoding="utf-8"))[0]
    card = Card.model_validate(raw)
    lines = next(iter(json.loads((ESC_EVAL / "transcripts" / f"llama3_{lang}.json").read_text("utf-8")).values()))
    turns = _transcript(lines, ref)
    # Replay upstream's run_rolellm with the recorded replies.
    system = strings["seeker_system_before_card"] + raw["base"] + strings["seeker_system_after_card"]
    message_ill = [{"role": "system", "content": system}, {"role": "user", "content": strings["greeting"]}]
    message_doc: list[dict[str, str]] = []
    so_far = turns[:1]
    assert so_far[0].text == strings["greeting"] and so_far[0].speaker == "supporter"
    for r in range(ref["rounds"]):
        assert proto.seeker_messages(card, lang, so_far) == message_ill  # type: ignore[arg-type]
        seeker_turn, supporter_turn = turns[1 + 2 * r], turns[2 + 2 * r]
        message_ill.append({"role": "assistant", "content": seeker_turn.text})
        message_doc.append({"role": "user", "content": seeker_turn.text})
        so_far = so_far + [seeker_turn]
        if message_doc[0]["role"] != "system":  # what upstream's model wrappers do
            message_doc.insert(0, {"role": "system", "content": ref["supporter_system_if_missing"]})
        assert proto.supporter_messages(so_far, lang) == message_doc  # type: ignore[arg-type]
        message_ill.append({"role": "user", "content": supporter_turn.text})
        message_doc.append({"role": "assistant", "content": supporter_turn.text})
        so_far = so_far + [supporter_turn]
    assert so_far == turns


# -- structure changes and safety -----------------------------------------------------


def test_extraction_never_executes_the_source(tmp_path: Path) -> None:
    shared_or_skip()
    sentinel = tmp_path / "ran"
    trap = f"open({str(sentinel)!r}, 'w').write('x')\n"
    extract_protocol(trap + standin_evaluate(), trap + standin_score())
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("which", "mutate", "expected"),
    [
        ("evaluate", lambda s: s.replace("def run_rolellm", "def run_other"), "run_rolellm() not found"),
        ("evaluate", lambda s: s.replace('{"role": "user", "content": ', '{"role": "user", "text": '), "seeker prompt"),
        ("evaluate", lambda s: s.replace('tem_data["base"]', 'tem_data["card"]'), "seeker prompt"),
        ("evaluate", lambda s: s.replace('"content": \'', '"content": \'X', 1), "disagree"),
        ("evaluate", lambda s: s.replace('.insert(0, {"role": "system"', '.insert(0, {"role": "sys"'), "default system"),
        ("evaluate", lambda s: s.replace("range(", "len("), "rounds loop"),
        ("evaluate", lambda s: s.replace('tem["role"] == "assistant"', 'tem["role"] == "bot"'), "speaker prefixes"),
        ("evaluate", lambda s: s + "\ndef broken(:\n", "not valid Python"),
        ("score", lambda s: s.replace("key_list =", "keys ="), "key_list not found"),
        ("score", lambda s: s.replace("dimention_list = [", "dimention_list = [x, "), "not a list of string constants"),
        ("score", lambda s: s.replace("prompt_ZH = [", "prompt_ZH = ['extra', "), "prompt_ZH has 8 entries"),
        ("score", lambda s: s.replace(".replace(", ".swap("), "dialogue line"),
        ("score", lambda s: s.replace("dialogue.strip()", "dialogue"), "judge prompt line"),
        ("score", lambda s: s.replace("prompt1 += ", "prompt2 = "), "judge ask line"),
    ],
)
def test_unexpected_structure_is_a_data_error(which: str, mutate: Any, expected: str) -> None:
    shared_or_skip()
    ev, sc = standin_evaluate(), standin_score()
    if which == "evaluate":
        ev = mutate(ev)
        assert ev != standin_evaluate()
    else:
        sc = mutate(sc)
        assert sc != standin_score()
    with pytest.raises(DataError) as e:
        extract_protocol(ev, sc)
    msg = _one_line(e)
    assert expected in msg and f"upstream {which}.py" in msg
