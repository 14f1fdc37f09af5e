"""SAGE's profiles: pinned download (loopback mirror, sha256, cache) and strict parsing."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from esc_bench.data import upstream
from esc_bench.data.sage_profiles import (
    PROFILES_PATH,
    SageProfile,
    load_profiles,
    parse_profiles,
)
from esc_bench.data.upstream import SAGE, cached_path, fetch_pinned, file_url
from esc_bench.errors import DataError
from tests.support.sage_data import (
    PROFILES_FILE,
    serve_sage_mirror,
    shared_sage_or_skip,
)
from tests.support.static_server import StaticServer


@pytest.fixture
def sage_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StaticServer]:
    with serve_sage_mirror(tmp_path, monkeypatch) as server:
        yield server

SHARED_README_SHA = "99a2ed2ce2da3702a12c4abb4ccac85703bd1ad2a984012bf81b292458c3ee8b"


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_pin_and_default_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESC_BENCH_UPSTREAM_URL", raising=False)
    monkeypatch.delenv("ESC_BENCH_UPSTREAM_PINS", raising=False)
    assert SAGE.commit == "6dcfa78b6556e7398a82809e383bd60a67fe19eb"
    assert upstream.pins(SAGE) == {PROFILES_PATH: SHARED_README_SHA}
    assert file_url(PROFILES_PATH, SAGE) == (
        "https://raw.githubusercontent.com/Tencent/digitalhuman/"
        "6dcfa78b6556e7398a82809e383bd60a67fe19eb/SAGE/profile/simulator_profile_withfirsttalk.jsonl"
    )
    # the ESC-Eval source is unchanged by the second one
    assert PROFILES_PATH not in upstream.pins()


def test_shared_copy_matches_the_pin() -> None:
    data = shared_sage_or_skip().read_bytes()
    assert hashlib.sha256(data).hexdigest() == SAGE.files[PROFILES_PATH]


def test_download_is_verified_parsed_and_cached_once(sage_mirror: StaticServer) -> None:
    profiles = load_profiles()
    assert len(profiles) == 100
    assert len({p.id for p in profiles}) == 100
    raw = [json.loads(line) for line in PROFILES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    first = profiles[0]
    assert isinstance(first, SageProfile)
    assert first.id == raw[0]["id"] and first.first_talk == raw[0]["first_talk"]
    assert first.cha_group == tuple(raw[0]["cha_group"]) and first.main_cha == raw[0]["main_cha"]
    assert [p.task for p in profiles] == [r["task"] for r in raw]
    assert cached_path(PROFILES_PATH, SAGE).read_bytes() == PROFILES_FILE.read_bytes()
    assert load_profiles() == profiles
    assert sage_mirror.requests == [f"/{SAGE.commit}/{PROFILES_PATH}"]


def test_cache_hit_works_offline(sage_mirror: StaticServer, monkeypatch: pytest.MonkeyPatch) -> None:
    fetch_pinned(PROFILES_PATH, SAGE)
    monkeypatch.setenv("ESC_BENCH_UPSTREAM_URL", _closed_port_url())
    assert len(load_profiles()) == 100
    assert sage_mirror.count() == 1


def test_sha256_mismatch_is_refused_and_not_cached(sage_mirror: StaticServer, tmp_path: Path) -> None:
    served = tmp_path / "sage-mirror" / SAGE.commit / PROFILES_PATH
    served.write_bytes(served.read_bytes().replace("王".encode(), "汪".encode(), 1))
    with pytest.raises(DataError) as e:
        load_profiles()
    msg = str(e.value)
    assert "\n" not in msg and "sha256 mismatch" in msg and SHARED_README_SHA in msg and "SAGE" in msg
    assert hashlib.sha256(served.read_bytes()).hexdigest() in msg
    assert not cached_path(PROFILES_PATH, SAGE).exists()


def test_unreachable_without_cache_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _closed_port_url()
    monkeypatch.setenv("ESC_BENCH_UPSTREAM_URL", url)
    monkeypatch.setenv("ESC_BENCH_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError) as e:
        load_profiles()
    msg = str(e.value)
    assert "\n" not in msg and f"{url}/{SAGE.commit}/{PROFILES_PATH}" in msg and "ESC_BENCH_UPSTREAM_URL" in msg


GOOD = {
    "id": "p1", "player": "someone", "scene": "a story", "main_cha": "trait",
    "cha_group": ["a", "b"], "task": "be heard", "first_talk": "hello",
}


def _jsonl(*rows: object) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode("utf-8")


@pytest.mark.parametrize(
    "data, expected",
    [
        (_jsonl(GOOD, "{not json"), r"^f\.jsonl:2: invalid JSON"),
        (_jsonl(GOOD, [1, 2]), r"^f\.jsonl:2: a profile must be a JSON object, got list"),
        (_jsonl({k: v for k, v in GOOD.items() if k != "first_talk"}), r"^f\.jsonl:1: field 'first_talk': Field required"),
        (_jsonl({**GOOD, "task": ""}), r"^f\.jsonl:1: field 'task'"),
        (_jsonl({**GOOD, "cha_group": "angry"}), r"^f\.jsonl:1: field 'cha_group'"),
        (_jsonl({**GOOD, "extra": 1}), r"^f\.jsonl:1: field 'extra': Extra inputs"),
        (_jsonl(GOOD, "", {**GOOD}), r"^f\.jsonl:3: duplicate profile id 'p1' \(first at line 1\)"),
        (b"\n\n", r"^f\.jsonl: no profiles"),
        (b'{"id": "\xff"}', r"^f\.jsonl:1: not UTF-8"),
    ],
)
def test_malformed_profile_files_are_one_line_errors(data: bytes, expected: str) -> None:
    with pytest.raises(DataError, match=expected) as e:
        parse_profiles(data, "f.jsonl")
    assert "\n" not in str(e.value)


def test_a_local_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_bytes(_jsonl(GOOD, {**GOOD, "id": "p2"}))
    assert [p.id for p in load_profiles(path)] == ["p1", "p2"]
    with pytest.raises(DataError, match="not found"):
        load_profiles(tmp_path / "none.jsonl")


def test_sage_card_source(sage_mirror: StaticServer) -> None:
    from esc_bench.config.schema import CardSelection
    from esc_bench.data.cards import load_cards
    from esc_bench.errors import ConfigError

    cards = load_cards(CardSelection(source="sage", first=3), "zh")
    profiles = load_profiles()[:3]
    assert [c.id for c in cards] == [p.id for p in profiles]
    assert all(c.opening == p.first_talk and c.source == "SAGE" and c.res == p.main_cha for c, p in zip(cards, profiles))
    assert profiles[0].scene.strip() in cards[0].base and profiles[0].first_talk in cards[0].base
    with pytest.raises(ConfigError, match="SAGE's profiles are Chinese"):
        load_cards(CardSelection(source="sage"), "en")


def test_sage_tasks_plan_with_no_judge(sage_mirror: StaticServer, tmp_path: Path) -> None:
    from esc_bench.engine.plan import RunOptions, build_plan

    models = tmp_path / "models"
    models.mkdir()
    for name in ("sim", "sup"):
        (models / f"{name}.yaml").write_text(f"backend: openai\nmodel: {name}\napi_base: http://127.0.0.1:9/v1\n")
    plan = build_plan(RunOptions(models=["sup"], tasks=["sage_zh"], simulator="sim", judge=None, limit=5,
                                 output=tmp_path / "out", model_configs=[models]))
    [tp] = plan.tasks
    assert tp.protocol.name == "sage" and tp.rounds == 10 and len(tp.cards) == 5 and tp.cards[0].opening
    assert tp.judge == "self" and set(plan.models) == {"sim", "sup"}
