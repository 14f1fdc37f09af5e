"""No upstream text is committed: ESC-Eval's and SAGE's cards, profiles, published dialogues and
prompt strings (the copies in ../shared) share no passage with the package, tests or docs.

A passage is 40 characters of English (whitespace folded) or 16 characters of Chinese in a row:
long enough that common phrases ("to a new city for a job", "不知道该怎么办") do not count, short
enough that a copied sentence does. Pinned digests and ids (hex, uuids) are facts, not text.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LATIN, CJK_LEN = 40, 16
_CJK_RUN = re.compile(rf"[\u4e00-\u9fff，。！？、：；“”（）]{{{CJK_LEN},}}")
_FACT = re.compile(r"^[0-9a-f\- ]+$")  # hex digests, uuids


def _leaves(x: Any) -> Iterator[str]:
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for k, v in x.items():
            yield k
            yield from _leaves(v)
    elif isinstance(x, list):
        for v in x:
            yield from _leaves(v)


def _upstream_strings() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for f in sorted(SHARED.rglob("*")):
        if f.suffix == ".json":
            out += [(f.name, s) for s in _leaves(json.loads(f.read_text(encoding="utf-8")))]
        elif f.suffix == ".jsonl":
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out += [(f.name, s) for s in _leaves(json.loads(line))]
    return out


def _windows(text: str) -> Iterator[str]:
    flat = re.sub(r"\s+", " ", text)
    for i in range(len(flat) - LATIN + 1):
        w = flat[i:i + LATIN]
        if not _FACT.match(w):
            yield w
    for run in _CJK_RUN.findall(text):
        for i in range(len(run) - CJK_LEN + 1):
            yield run[i:i + CJK_LEN]


def test_no_upstream_passage_in_the_package_tests_or_docs() -> None:
    if not (SHARED / "sage").is_dir() or not (SHARED / "esc-eval").is_dir():
        pytest.skip("../shared (the upstream copies) is not available")
    tracked = subprocess.run(["git", "ls-files", "esc_bench", "tests", "docs", "README.md"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    ours: dict[str, str] = {}
    for rel in tracked:
        try:
            text = (ROOT / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for w in _windows(text):
            ours.setdefault(w, rel)
    strings = _upstream_strings()
    assert len(strings) > 5000  # cards, profiles, published dialogues, prompt strings
    found = {}
    for source, s in strings:
        for w in _windows(s):
            if w in ours:
                found.setdefault(ours[w], f"{w!r} (from {source})")
                break
    assert found == {}, found
