"""Hostile and broken input files: refused at once with one line and exit 2, never a traceback."""

from __future__ import annotations

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
