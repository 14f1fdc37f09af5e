"""Role cards: official (pinned upstream), bundled (ours) or a user file; filters and sampling.

A user file is a JSON list of card objects, or JSONL (one object a line, `.jsonl`/`.ndjson`).
A card without `language` takes the selected language. Parsed files are kept in-process,
keyed by path, size and modification time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from esc_bench.config.schema import CardSelection
from esc_bench.data.upstream import fetch_pinned
from esc_bench.errors import ConfigError, DataError, decode_text, parse_json
from esc_bench.records import Card, Language

MAX_BASE_CHARS = 20_000
JSONL_SUFFIXES = (".jsonl", ".ndjson")
# The datasets the upstream cards come from, in the paper's order: lower-case key -> (the upstream
# card files' spelling, the paper's name).
DATASETS: dict[str, tuple[str, str]] = {
    "esconv": ("ESconv", "ESConv"),
    "extes": ("ExTES", "ExTES"),
    "mhp": ("MHP", "MHP"),
    "psych": ("Psych", "Psych8k"),
    "epitome": ("EPITOME", "EPITOME"),
    "psyqa": ("PsyQA", "PsyQA"),
    "smile": ("smile", "SMILE"),
}
# Other spellings (lower case) of a dataset key.
SOURCE_ALIASES = {"psych8k": "psych"}
# The three upstream categories (card `res`) with their English names, in the paper's order.
CATEGORIES: dict[str, str] = {
    "家庭生活": "family life",
    "工作学习": "work and study",
    "社会与其他": "society and other",
}
# English spellings of a category accepted in filters.
CATEGORY_ALIASES = {
    **{en: zh for zh, en in CATEGORIES.items()},
    "family": "家庭生活",
    "work": "工作学习",
    "study": "工作学习",
    "society": "社会与其他",
    "other": "社会与其他",
}

_parsed: dict[tuple[str, int, int, str], tuple[Card, ...]] = {}


def load_cards(selection: CardSelection, language: Language, base_dir: Path | None = None) -> list[Card]:
    """The cards a task evaluates: its source, in `selection.language` or else `language`, filtered."""
    lang: Language = selection.language or language
    cards, label = _source_cards(selection.source, lang, base_dir)
    steps: list[str] = [f"{len(cards)} in {label}"]

    def apply(desc: str, keep: Callable[[Card], bool], available: Callable[[Card], str | None]) -> None:
        nonlocal cards
        kept = [c for c in cards if keep(c)]
        steps.append(f"{desc} kept {len(kept)}")
        if not kept:
            values = sorted({v for c in cards if (v := available(c)) is not None})
            have = f" (available: {', '.join(values)})" if values and len(values) <= 20 else ""
            raise ConfigError(f"no cards selected: {'; '.join(steps)}{have}")
        cards = kept

    apply(f"language {lang!r}", lambda c: c.language == lang, lambda c: c.language)
    if selection.sources is not None:
        wanted = {_norm_source(s) for s in selection.sources}
        apply(f"sources {selection.sources}", lambda c: _norm_source(c.source or "") in wanted, lambda c: c.source)
    if selection.categories is not None:
        cats = {_norm_category(s) for s in selection.categories}
        apply(f"categories {selection.categories}", lambda c: _norm_category(c.res or "") in cats, lambda c: c.res)
    if selection.ids is not None:
        known = {c.id for c in cards}
        missing = [i for i in selection.ids if i not in known]
        if missing:
            raise ConfigError(f"card ids not found in {label} after the filters above: {', '.join(missing)}")
        wanted_ids = set(selection.ids)
        apply(f"ids {selection.ids}", lambda c: c.id in wanted_ids, lambda c: None)
    if selection.sample is not None:
        if selection.sample > len(cards):
            raise ConfigError(
                f"cards.sample is {selection.sample} but only {len(cards)} cards remain ({'; '.join(steps)})"
            )
        picked = sorted(random.Random(selection.seed).sample(range(len(cards)), selection.sample))
        cards = [cards[i] for i in picked]
    elif selection.first is not None:
        cards = cards[: selection.first]
    return cards


def _dataset(name: str) -> tuple[str, str] | None:
    key = name.strip().lower()
    return DATASETS.get(SOURCE_ALIASES.get(key, key))


def normalize_source(name: str) -> str:
    """A dataset name in the upstream cards' spelling: "Psych8k" and "psych" -> "Psych"."""
    known = _dataset(name)
    return known[0] if known else name.strip()


def paper_source_name(name: str) -> str:
    """A dataset name as the paper spells it: "ESconv" -> "ESConv", "psych" -> "Psych8k"."""
    known = _dataset(name)
    return known[1] if known else name.strip()


def normalize_category(name: str) -> str:
    """A category in the upstream cards' labels: "work" -> "工作学习"."""
    return CATEGORY_ALIASES.get(name.strip().lower(), name.strip())


def _norm_source(name: str) -> str:
    return normalize_source(name).lower()


def _norm_category(name: str) -> str:
    return normalize_category(name).lower()


def _source_cards(source: str, lang: Language, base_dir: Path | None) -> tuple[list[Card], str]:
    if source == "official":
        upstream_path = f"data/card_high_{lang}.json"
        path = fetch_pinned(upstream_path)
        return _load_file(path, lang), f"official cards ({upstream_path})"
    if source == "bundled":
        res = resources.files("esc_bench") / "resources" / "cards" / f"bundled_{lang}.json"
        path = Path(str(res))
        if not path.is_file():
            raise DataError(f"bundled cards missing from the installed package: {path}")
        return _load_file(path, lang), f"bundled cards ({path.name})"
    if source == "sage":
        from esc_bench.data.sage_profiles import PROFILES_PATH, load_profiles, profile_card

        if lang != "zh":
            raise ConfigError(f"cards.source 'sage': SAGE's profiles are Chinese, not {lang!r}")
        return [profile_card(p) for p in load_profiles()], f"SAGE profiles ({PROFILES_PATH})"
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    if not path.is_file():
        raise ConfigError(
            f"card file {path} not found (cards.source is 'official', 'bundled', 'sage' or a JSON/JSONL file path)"
        )
    return _load_file(path, lang), str(path)


def _load_file(path: Path, lang: Language) -> list[Card]:
    try:
        stat = path.stat()
    except OSError as e:
        raise DataError(f"cannot read card file {path}: {e.strerror or e}") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, lang)
    if key not in _parsed:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise DataError(f"cannot read card file {path}: {e.strerror or e}") from None
        _parsed[key] = tuple(parse_cards(data, str(path), lang))
    return list(_parsed[key])


def parse_cards(data: bytes, label: str, default_language: Language, jsonl: bool | None = None) -> list[Card]:
    """Parse and validate a card file's bytes (`label` names it in errors)."""
    text = decode_text(data, label)
    if not text.strip():
        raise DataError(f"{label}: empty card file")
    if jsonl is None:
        jsonl = label.lower().endswith(JSONL_SUFFIXES)
    items: list[tuple[str, Any]] = []
    if jsonl:
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                items.append((f"{label}:{n}", parse_json(line, label, line=n)))
    else:
        doc = parse_json(text, label)
        if not isinstance(doc, list):
            raise DataError(
                f"{label}: expected a JSON list of cards, got {type(doc).__name__} "
                "(for one card per line use a .jsonl file)"
            )
        items = [(f"{label}[{i}]", item) for i, item in enumerate(doc)]
    if not items:
        raise DataError(f"{label}: no cards in the file")
    cards: list[Card] = []
    first_seen: dict[str, str] = {}
    for where, item in items:
        card = _validate(where, item, default_language)
        if card.id in first_seen:
            raise ConfigError(f"{where}: duplicate card id {card.id!r} (first at {first_seen[card.id]})")
        first_seen[card.id] = where
        cards.append(card)
    return cards


def _validate(where: str, item: Any, default_language: Language) -> Card:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a card must be a JSON object, got {type(item).__name__}")
    if item.get("language") is None:
        item = {**item, "language": default_language}
    try:
        card = Card.model_validate(item)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "card"
        raise ConfigError(f"{where}: field {field!r}: {err['msg']}") from None
    if len(card.base) > MAX_BASE_CHARS:
        raise ConfigError(
            f"{where}: field 'base' has {len(card.base)} characters, over the {MAX_BASE_CHARS} limit"
        )
    return card
