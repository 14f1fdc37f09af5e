"""The run session lives in the engine (engine/session.py); commands only parse and print."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from esc_bench.engine.plan import FailureBudget, parse_max_failures
from esc_bench.engine.session import exit_code
from esc_bench.records import DialogueRecord, ErrorInfo, ScoreRecord

COMMANDS = Path(__file__).resolve().parents[1] / "esc_bench" / "commands"
ORCHESTRATION = ("esc_bench.engine.runner", "esc_bench.engine.finalize", "esc_bench.engine.dialogue")


def test_no_command_drives_the_engine_itself() -> None:
    found = []
    for path in sorted(COMMANDS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in ORCHESTRATION:
                found.append(f"{path.name}:{node.lineno} imports {node.module}")
            if isinstance(node, ast.Attribute) and node.attr == "run" and getattr(node.value, "id", "") == "asyncio":
                found.append(f"{path.name}:{node.lineno} calls asyncio.run")
    assert found == []


@pytest.mark.parametrize(
    ("text", "budget", "allowed_of_40"),
    [("0", ("count", 0.0), 0), ("3", ("count", 3.0), 3), ("0.05", ("fraction", 0.05), 2),
     ("10%", ("fraction", 0.1), 4)],
)
def test_the_failure_budget_is_parsed_once_into_a_typed_value(text: str, budget: tuple, allowed_of_40: float) -> None:
    parsed = parse_max_failures(text)
    assert isinstance(parsed, FailureBudget) and parsed == budget
    assert parsed.allowed(40) == pytest.approx(allowed_of_40)


def _dialogue(card: str, ok: bool) -> DialogueRecord:
    error = None if ok else ErrorInfo(type="timeout", message="slow", role="supporter")
    return DialogueRecord(task="t", model="m", card_id=card, language="en", status="ok" if ok else "failed",
                          transcript=[], error=error)


def test_exit_code_counts_failed_and_unscored_dialogues_against_the_budget(capsys: pytest.CaptureFixture[str]) -> None:
    planned = {("t", "m", str(i)) for i in range(10)}
    dialogues = [_dialogue(str(i), ok=i != 0) for i in range(10)]
    scores = [ScoreRecord(task="t", model="m", card_id="1", judge="j", dimension="Fluency",
                          error=ErrorInfo(type="timeout", message="slow", role="judge"))]
    assert exit_code(planned, dialogues, scores, FailureBudget("count", 2.0), "2") == 0
    assert exit_code(planned, dialogues, scores, FailureBudget("count", 1.0), "1") == 1
    err = capsys.readouterr().err
    assert "2 of 10 dialogues are incomplete (1 failed, 1 with a failed judge call; allowed: 1)" in err
    assert exit_code(planned, dialogues, scores, FailureBudget("fraction", 0.2), "20%") == 0
