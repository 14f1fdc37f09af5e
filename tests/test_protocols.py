"""load_protocol: the bundled esc-bench protocol, the upstream esc-eval one, user YAML files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from esc_bench.data.protocols import KNOWN_PROTOCOLS, load_protocol
from esc_bench.dimensions import DIMENSION_NAMES, UPSTREAM_KEY_ORDER
from esc_bench.errors import ConfigError
from esc_bench.protocol import Protocol
from esc_bench.records import Card, Turn
from tests.support.static_server import StaticServer
from tests.support.upstream_standins import reference

BUNDLED = Path(__file__).resolve().parents[1] / "esc_bench" / "resources" / "protocols" / "esc-bench.yaml"


def _error(name: str, **kw: object) -> str:
    with pytest.raises(ConfigError) as e:
        load_protocol(name, **kw)  # type: ignore[arg-type]
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# -- bundled ---------------------------------------------------------------------------


def test_bundled_protocol_is_complete_in_both_languages() -> None:
    p = load_protocol("esc-bench")
    assert p.name == "esc-bench" and p.rounds == 5
    assert set(p.judge_dimension_names) == set(UPSTREAM_KEY_ORDER)
    assert set(p.languages) == {"en", "zh"}
    for lang, strings in p.languages.items():
        assert list(strings.judge_rubrics) == list(UPSTREAM_KEY_ORDER)
        for key, rubric in strings.judge_rubrics.items():
            for score in "01234":
                assert re.search(rf"^{score}[:：]", rubric, re.M), (lang, key, score)
        assert strings.greeting and strings.seeker_system_before_card and strings.seeker_system_after_card
    assert re.search(r"single digit.*0.*4", p.judge_ask_after)


def test_bundled_protocol_builds_every_message() -> None:
    p = load_protocol("esc-bench")
    card = Card(id="1", base="A 30-year-old teacher.", language="en")
    turns = [
        Turn(speaker="supporter", text=p.greeting("en")),
        Turn(speaker="seeker", text="I can't sleep."),
        Turn(speaker="supporter", text="That sounds hard."),
    ]
    system = p.seeker_messages(card, "en", turns)[0]["content"]
    assert card.base in system and system.startswith(p.languages["en"].seeker_system_before_card)
    assert p.supporter_messages(turns, "en")[1:] == [
        {"role": "user", "content": "I can't sleep."},
        {"role": "assistant", "content": "That sounds hard."},
    ]
    for dim in DIMENSION_NAMES:
        for lang in ("en", "zh"):
            prompt = p.judge_prompt(dim, turns, lang)  # type: ignore[arg-type]
            ask_after = p.languages[lang].judge_ask_after or p.judge_ask_after
            seeker = p.languages[lang].seeker_prefix or p.seeker_prefix
            assert f"{seeker}I can't sleep." in prompt and prompt.endswith(ask_after)


def test_bundled_protocol_is_memoized() -> None:
    assert load_protocol("esc-bench") is load_protocol("esc-bench")


def test_bundled_protocol_shares_no_text_with_upstream() -> None:
    ref = reference()
    texts = [ref["supporter_system_if_missing"]]
    for lang in ref["languages"].values():
        texts += [lang["seeker_system_before_card"], lang["seeker_system_after_card"], lang["greeting"]]
        texts += lang["judge_rubrics"]
    upstream = " ".join(" ".join(texts).split())
    ours = " ".join(BUNDLED.read_text(encoding="utf-8").split())
    for i in range(0, len(ours) - 32, 4):
        assert ours[i:i + 32] not in upstream, ours[i:i + 32]


# -- esc-eval ----------------------------------------------------------------------------


def test_esc_eval_is_fetched_once_per_process(upstream_mirror: StaticServer) -> None:
    p = load_protocol("esc-eval")
    assert p.name == "esc-eval"
    assert p.languages["en"].greeting == reference()["languages"]["en"]["greeting"]
    assert load_protocol("esc-eval") is p
    assert upstream_mirror.count() == 2  # evaluate.py and score.py


# -- user files and errors ----------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_user_protocol_file_relative_to_base_dir(tmp_path: Path) -> None:
    data = yaml.safe_load(BUNDLED.read_text(encoding="utf-8"))
    data["name"] = "mine"
    data["rounds"] = 3
    del data["languages"]["zh"]
    _write(tmp_path, yaml.safe_dump(data, allow_unicode=True), "mine.yml")
    p = load_protocol("mine.yml", base_dir=tmp_path)
    assert isinstance(p, Protocol) and (p.name, p.rounds, set(p.languages)) == ("mine", 3, {"en"})


def test_unknown_name_lists_known_protocols() -> None:
    msg = _error("esc-evil")
    assert "esc-evil" in msg and all(k in msg for k in KNOWN_PROTOCOLS) and ".yaml" in msg


def test_missing_protocol_file(tmp_path: Path) -> None:
    assert str(tmp_path / "nope.yaml") in _error("nope.yaml", base_dir=tmp_path)


def _bundled_with(old: str, new: str) -> str:
    text = BUNDLED.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("old", "new", "needle", "pattern"),
    [
        ("rounds: 5", "rounds: five", "rounds:", r"rounds: Input should be a valid integer"),
        ("rounds: 5", "rounds: 0", "rounds:", r"rounds: must be at least 1"),
        ("rounds: 5", "rounds: 5\nround: 6", "round: 6", r"round: unknown key"),
        ("rounds: 5", "rounds: 5\nrounds: 6", "rounds: 6", r"duplicate key 'rounds'"),
        ("  human: human-likeness\n", "", "judge_dimension_names:", r"judge_dimension_names: expected the keys"),
        ("    greeting: \"Hi,", "    greting: \"Hi,", "seeker_system_before_card",
         r"languages\.en\.greeting: Field required"),
        ("      tech: |\n        You will", "      tek: |\n        You will", "judge_rubrics:",
         r"languages\.en\.judge_rubrics: expected the keys fluency, diversity"),
        ("  zh:\n", "  fr:\n", "fr:", r"languages\.fr: unknown language"),
        ("judge_header: \"", "judge_header: [\"", "judge_header: [", r"malformed YAML"),
    ],
)
def test_bad_protocol_files_are_one_line_errors_with_a_line(
    tmp_path: Path, old: str, new: str, needle: str, pattern: str
) -> None:
    text = _bundled_with(old, new)
    path = _write(tmp_path, text)
    msg = _error(str(path))
    assert re.search(pattern, msg), msg
    line = int(re.match(rf"{re.escape(str(path))}:(\d+): ", msg).group(1))  # type: ignore[union-attr]
    assert abs(line - _line_of(text, needle)) <= 1, (line, msg)


def test_protocol_file_must_be_a_mapping(tmp_path: Path) -> None:
    assert "expected a mapping" in _error(str(_write(tmp_path, "- a\n- b\n")))
