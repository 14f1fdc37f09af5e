"""Hostile and broken input files: refused at once with one line and exit 2, never a traceback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from esc_bench.cli import main
from esc_bench.config.loader import ModelRegistry, TaskRegistry
from esc_bench.data.protocols import load_protocol
from esc_bench.errors import ConfigError


def alias_bomb(depth: int, top: str = "a") -> str:
    """Nested aliases: 9**depth strings from a few hundred bytes (a "billion laughs" file)."""
    lines = [f'{top}: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, depth + 1):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "kind",
    ["task", "group", "model", "protocol"],
)
def test_yaml_aliases_are_refused_with_file_and_line(tmp_path: Path, kind: str) -> None:
    # depth 3 stays cheap even where aliases are expanded; the refusal must not depend on size
    head = {
        "task": "language: en\ncards: {source: bundled}\n",
        "group": "tasks: [x]\n",
        "model": "model: openai/x\n",
        "protocol": "rounds: 5\n",
    }[kind]
    text = head + alias_bomb(3)
    path = tmp_path / ("p.yaml" if kind == "protocol" else "f.yaml")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        if kind == "task":
            TaskRegistry([tmp_path], builtin=False).task("f")
        elif kind == "group":
            TaskRegistry([tmp_path], builtin=False).resolve(["f"])
        elif kind == "model":
            ModelRegistry([tmp_path], builtin=False).get("f")
        else:
            load_protocol(str(path))
    assert str(e.value).startswith(f"{path}:{head.count(chr(10)) + 2}: YAML aliases")
    assert "\n" not in str(e.value)


def test_a_full_alias_bomb_task_exits_2_at_once(tmp_path: Path, capsys) -> None:
    (tmp_path / "bomb.yaml").write_text(alias_bomb(9), encoding="utf-8")  # 9**10 strings if expanded
    assert len((tmp_path / "bomb.yaml").read_bytes()) < 600
    t0 = time.monotonic()
    rc = main(["--tasks-dir", str(tmp_path), "--tasks", "bomb", "--models", "openai/x",
               "--output", str(tmp_path / "run")])
    assert rc == 2 and time.monotonic() - t0 < 5
    assert "YAML aliases" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ---- text from outside is never console markup (issue 8.12) ----------------------------------

MARKUP = "[/red] oops [/] [bold]x :smile:"


def _hostile_cards(path: Path) -> Path:
    path.write_text(json.dumps([{"id": "[/]card-1", "base": "A seeker with a worry.", "language": "en",
                                 "res": "[/] work"}]), encoding="utf-8")
    return path


def test_error_body_and_card_id_with_markup_are_printed_literally(tmp_path: Path, capsys) -> None:
    from tests.support.fake_openai import FakeOpenAI
    from tests.test_e2e_cli import write_configs

    with FakeOpenAI(fault_rate=1.0, faults=("bad_request",), error_message=MARKUP) as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        cards = _hostile_cards(tmp_path / "cards.json")
        (tasks / "hostile.yaml").write_text(
            f"language: en\nprotocol: esc-bench\ncards: {{source: {cards}}}\nsimulator: seeker\njudge: judge\n",
            encoding="utf-8")
        rc = main(["--models", "sup-a", "--tasks", "hostile", "--model-configs", str(models),
                   "--tasks-dir", str(tasks), "--output", str(tmp_path / "run"), "--no-cache"])
    out, err = capsys.readouterr()
    assert rc == 1, err
    assert "internal error" not in err
    summary = [line for line in out.splitlines() if line.startswith("failed")]
    assert len(summary) == 1
    assert "card [/]card-1" in summary[0] and MARKUP in summary[0]


@pytest.mark.parametrize("command", ["report", "compare"])
def test_console_tables_print_hostile_names_literally(tmp_path: Path, capsys, command: str) -> None:
    from tests.support.synthetic_runs import make_run

    task = "[bold]task[/] :smile:"  # card ids are "<task>-<i>"
    make_run(tmp_path / "run", models=["[/]m :smile:", "b"], tasks={task: {"language": "en"}})
    args = [str(tmp_path / "run")] + (["--model-a", "[/]m :smile:", "--model-b", "b"] if command == "compare" else [])
    rc = main([command, *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert task in out
    if command == "report":
        assert "[/]m :smile:" in out
    else:
        assert f"{task} card {task}-" in out  # the largest differences name task and card as written


def test_tasks_listing_prints_a_hostile_task_name_and_error_literally(tmp_path: Path, capsys) -> None:
    (tmp_path / "[bold]x[red].yaml").write_text("language: en\ncards: {source: bundled}\n", encoding="utf-8")
    (tmp_path / "bad[bold].yaml").write_text("language: [/red]\n", encoding="utf-8")
    rc = main(["tasks", "--tasks-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 2 and "internal error" not in err
    assert "[bold]x[red]" in out
    assert "invalid" in out and "bad[bold].yaml" in out
