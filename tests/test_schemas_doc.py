"""The JSON schemas in docs/ are the records' own: regenerate them when a record changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esc_bench.records import DialogueRecord, Leaderboard, ScoreRecord

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("name, model", [("leaderboard", Leaderboard), ("dialogue", DialogueRecord), ("score", ScoreRecord)])
def test_documented_schema_is_current(name: str, model) -> None:
    documented = json.loads((DOCS / f"{name}.schema.json").read_text(encoding="utf-8"))
    assert documented == model.model_json_schema(), (
        f"docs/{name}.schema.json is stale: regenerate it from esc_bench.records.{model.__name__}"
    )
