"""Cards: official (via the stand-in mirror), bundled, user files; filters, sampling, errors."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from esc_bench.config.schema import CardSelection
from esc_bench.data.cards import MAX_BASE_CHARS, load_cards
from esc_bench.errors import ConfigError, DataError, UserError
from esc_bench.records import Card
from tests.support.static_server import StaticServer
from tests.support.upstream_standins import ESC_EVAL, shared_or_skip

CATEGORIES = {"家庭生活", "工作学习", "社会与其他"}


def sel(**kw: Any) -> CardSelection:
    return CardSelection.model_validate(kw)


def _error(exc: type[UserError], selection: CardSelection, lang: str = "en", **kw: Any) -> str:
    with pytest.raises(exc) as e:
        load_cards(selection, lang, **kw)  # type: ignore[arg-type]
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# -- official ------------------------------------------------------------------------


def test_official_cards_come_from_the_pinned_mirror(upstream_mirror: StaticServer) -> None:
    en = load_cards(sel(), "en")
    zh = load_cards(sel(), "zh")
    assert (len(en), len(zh)) == (331, 324)
    assert {c.language for c in en} == {"en"} and {c.language for c in zh} == {"zh"}
    assert en[0].id == str(json.loads((ESC_EVAL / "card_high_en.json").read_text("utf-8"))[0]["id"])
    assert load_cards(sel(), "en") == en
    assert upstream_mirror.count() == 2  # one download per file, then cache


def test_selection_language_overrides_the_task_language(upstream_mirror: StaticServer) -> None:
    assert len(load_cards(sel(language="chinese"), "en")) == 324


@pytest.mark.parametrize(
    ("lang", "sources", "n"),
    [
        ("en", ["ESConv"], 158),
        ("en", ["esconv"], 158),
        ("en", ["Psych8k"], 25),
        ("en", ["psych", "EPITOME"], 30),
        ("en", ["MHP", "ExTES"], 143),
        ("zh", ["SMILE"], 72),
        ("zh", ["PsyQA"], 252),
    ],
)
def test_source_filter_accepts_paper_names(upstream_mirror: StaticServer, lang: str, sources: list[str], n: int) -> None:
    assert len(load_cards(sel(sources=sources), lang)) == n  # type: ignore[arg-type]


def test_category_filter_accepts_english_aliases(upstream_mirror: StaticServer) -> None:
    family = load_cards(sel(categories=["family"]), "en")
    assert len(family) == 172 and {c.res for c in family} == {"家庭生活"}
    assert load_cards(sel(categories=["家庭生活"]), "en") == family
    assert len(load_cards(sel(categories=["Work", "society"]), "en")) == 87 + 72


def test_id_filter_and_unknown_ids(upstream_mirror: StaticServer) -> None:
    first = load_cards(sel(), "en")[:3]
    picked = load_cards(sel(ids=[int(first[2].id), first[0].id]), "en")
    assert picked == [first[0], first[2]]  # original order
    msg = _error(ConfigError, sel(ids=[first[0].id, "999999999"]))
    assert "999999999" in msg and "not found" in msg


def test_sample_is_seeded_and_keeps_file_order(upstream_mirror: StaticServer) -> None:
    cards = load_cards(sel(sources=["ESConv"]), "en")
    got = load_cards(sel(sources=["ESConv"], sample=10, seed=7), "en")
    want = [cards[i] for i in sorted(random.Random(7).sample(range(len(cards)), 10))]
    assert got == want
    assert load_cards(sel(sources=["ESConv"], sample=10, seed=7), "en") == got
    assert load_cards(sel(sources=["ESConv"], sample=10, seed=8), "en") != got
    assert load_cards(sel(first=4), "en") == load_cards(sel(), "en")[:4]


def test_no_cards_left_names_the_filters(upstream_mirror: StaticServer) -> None:
    msg = _error(ConfigError, sel(sources=["PsyQA"]))
    assert "sources ['PsyQA'] kept 0" in msg and "available: EPITOME, ESconv, ExTES, MHP, Psych" in msg
    msg = _error(ConfigError, sel(sources=["SMILE"], categories=["nothing"]), "zh")
    assert "sources ['SMILE'] kept 72; categories ['nothing'] kept 0" in msg and "社会与其他" in msg
    assert "sample is 400 but only 331" in _error(ConfigError, sel(sample=400))


# -- bundled -------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bundled_cards_are_valid_and_varied(lang: str) -> None:
    cards = load_cards(sel(source="bundled"), lang)  # type: ignore[arg-type]
    assert len(cards) >= 24
    assert len({c.id for c in cards}) == len(cards) and all(int(c.id) > 900000 for c in cards)
    assert {c.res for c in cards} == CATEGORIES
    assert {c.source for c in cards} == {"esc-bench"} and {c.language for c in cards} == {lang}
    assert all(c.base_biaozhu for c in cards)
    assert len({c.base[:40] for c in cards}) == len(cards)
    assert len(load_cards(sel(source="bundled", sources=["esc-bench"], first=3), lang)) == 3  # type: ignore[arg-type]


def test_bundled_cards_share_no_text_with_upstream_cards() -> None:
    shared = shared_or_skip()
    upstream = " ".join(c["base"] for f in ("card_high_en.json", "card_high_zh.json")
                        for c in json.loads((shared / f).read_text("utf-8")))
    upstream = " ".join(upstream.split())
    for lang in ("en", "zh"):
        for card in load_cards(sel(source="bundled"), lang):  # type: ignore[arg-type]
            text = " ".join(card.base.split())
            for i in range(0, max(1, len(text) - 32), 4):
                assert text[i:i + 32] not in upstream, (card.id, text[i:i + 32])


# -- user files ----------------------------------------------------------------------


def _card(i: int, lang: str = "english", **kw: Any) -> dict[str, Any]:
    return {"id": i, "base": f"Profile number {i}.", "language": lang, "res": "工作学习", "source": "mine", **kw}


def test_user_json_list_and_jsonl_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "cards.json").write_text(json.dumps([_card(1), _card(2, "chinese"), _card(3)]))
    (tmp_path / "cards.jsonl").write_text("\n".join(json.dumps(_card(i)) for i in (7, 8)) + "\n\n")
    got = load_cards(sel(source="cards.json"), "en", base_dir=tmp_path)
    assert [c.id for c in got] == ["1", "3"]
    assert [c.id for c in load_cards(sel(source="cards.json"), "zh", base_dir=tmp_path)] == ["2"]
    assert [c.id for c in load_cards(sel(source=str(tmp_path / "cards.jsonl")), "en")] == ["7", "8"]


def test_cards_without_language_take_the_selected_one(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"id": "a", "base": "x"}]))
    assert load_cards(sel(source=str(path)), "zh") == [Card(id="a", base="x", language="zh")]


def test_user_file_is_cached_until_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps([_card(1)]))
    assert len(load_cards(sel(source=str(path)), "en")) == 1
    path.write_text(json.dumps([_card(1), _card(2), _card(3)]))
    assert len(load_cards(sel(source=str(path)), "en")) == 3


@pytest.mark.parametrize(
    ("name", "content", "exc", "pattern"),
    [
        ("c.json", b"", DataError, r"c\.json: empty card file"),
        ("c.json", b"  \n", DataError, r"c\.json: empty card file"),
        ("c.json", b"[]", DataError, r"c\.json: no cards in the file"),
        ("c.json", b'[\n  {"id": 1,\n  "base": "caf\xe9"}]', DataError, r"c\.json:3: not UTF-8 text"),
        ("c.json", b'[\n {"id": 1, "base": "x"},\n {"id": 2 "base": "y"}\n]', DataError, r"c\.json:3: invalid JSON"),
        ("c.json", b'{"id": 1, "base": "x"}', DataError, r"c\.json: expected a JSON list of cards, got dict"),
        ("c.jsonl", b'{"id": 1, "base": "x"}\n{"id": 2, "base": "y"\n', DataError, r"c\.jsonl:2: invalid JSON"),
        ("c.json", b'[{"id": 1, "base": "x"}, {"id": 2}]', ConfigError, r"c\.json\[1\]: field 'base': Field required"),
        ("c.json", b'[{"id": 1, "base": ""}]', ConfigError, r"c\.json\[0\]: field 'base': String should have at least 1"),
        ("c.json", b'[{"id": 1, "base": "x", "language": "fr"}]', ConfigError, r"c\.json\[0\]: field 'language'"),
        ("c.json", b'[{"id": 1, "base": "x"}, 5]', ConfigError, r"c\.json\[1\]: a card must be a JSON object, got int"),
        ("c.jsonl", b'{"id": 1, "base": "x"}\n\n{"base": "y"}\n', ConfigError, r"c\.jsonl:3: field 'id': Field required"),
        ("c.json", b'[{"id": 1, "base": "x"}, {"id": "1", "base": "y"}]', ConfigError,
         r"c\.json\[1\]: duplicate card id '1' \(first at .*c\.json\[0\]\)"),
    ],
)
def test_bad_user_files_are_one_line_errors(
    tmp_path: Path, name: str, content: bytes, exc: type[UserError], pattern: str
) -> None:
    (tmp_path / name).write_bytes(content)
    assert re.search(pattern, _error(exc, sel(source=name), base_dir=tmp_path))


def test_huge_card_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps([_card(1), _card(2, base="x" * (MAX_BASE_CHARS + 1))]))
    msg = _error(ConfigError, sel(source="c.json"), base_dir=tmp_path)
    assert "c.json[1]" in msg and "20000" in msg


def test_missing_user_file(tmp_path: Path) -> None:
    msg = _error(ConfigError, sel(source="nope.json"), base_dir=tmp_path)
    assert str(tmp_path / "nope.json") in msg and "official" in msg


def test_filters_normalise_the_cards_side_too(tmp_path: Path) -> None:
    """A user card labelled with the paper's names matches filters in either spelling."""
    from esc_bench.data.cards import normalize_category, normalize_source

    cards = [
        {"id": 1, "base": "a", "language": "en", "source": "Psych8k", "res": "work"},
        {"id": 2, "base": "b", "language": "en", "source": "ESConv", "res": "家庭生活"},
    ]
    f = tmp_path / "c.json"
    f.write_text(json.dumps(cards))
    for sources in (["Psych8k"], ["psych"], ["Psych"]):
        got = load_cards(CardSelection(source=str(f), sources=sources), "en")
        assert [c.id for c in got] == ["1"]
    for cats in (["work"], ["工作学习"]):
        got = load_cards(CardSelection(source=str(f), categories=cats), "en")
        assert [c.id for c in got] == ["1"]
    assert normalize_source("Psych8k") == "Psych" and normalize_source("esconv") == "ESconv"
    assert normalize_category("work") == "工作学习" and normalize_category("Misc") == "Misc"
