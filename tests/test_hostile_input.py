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


# ---- markdown: outside text stays inside its cell (issue 8.13) -------------------------------

IMG = "![x](http://evil.example/x.png)"
BREAKS = ["\r", "\n", "\r\n\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"]


def _html(md_text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(md_text)


@pytest.mark.parametrize("brk", BREAKS, ids=[hex(ord(b[0])) for b in BREAKS])
def test_markdown_report_keeps_hostile_names_in_their_cells(tmp_path: Path, capsys, brk: str) -> None:
    from tests.support import synthetic_runs
    from tests.support.synthetic_runs import make_run

    models = [f"evil{brk}{IMG} | <b>x</b> *a* _b_ `c` [l](http://evil.example/l) [r][l]", "good"]
    cats = synthetic_runs.CATEGORIES
    synthetic_runs.CATEGORIES = [f"cat{brk}{IMG}|x", f"[y]{brk}# heading", "plain"]
    try:
        make_run(tmp_path / "run", models=models, tasks={f"t{brk}{IMG}": {"language": "en"}})
    finally:
        synthetic_runs.CATEGORIES = cats
    rc = main(["report", str(tmp_path / "run"), "--format", "md"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    html = _html(out)
    assert "<img" not in html and "<a " not in html and "<b>" not in html and "<em>" not in html and "<code>c" not in html
    assert "<h1>heading" not in html and "<h1># heading" not in html
    tables = html.split("<table>")[1:]
    by_category = html.split("by category")[1].split("<table>")[1]
    assert tables[0].count("<tr>") == 1 + 2  # header + one row per model
    assert by_category.split("</table>")[0].count("<tr>") == 1 + 3 * 2  # header + each category x model
    assert "!" in tables[0] and "evil.example" in tables[0]  # the text is still there, shown literally


def test_markdown_comparison_keeps_hostile_card_ids_in_their_cells(tmp_path: Path, capsys) -> None:
    from tests.support.synthetic_runs import make_run

    task = f"t\r{IMG}|"
    make_run(tmp_path / "run", models=["a", "bb"], tasks={task: {"language": "en"}})  # scores differ by name length
    rc = main(["compare", str(tmp_path / "run"), "--model-a", "a", "--model-b", "bb", "--format", "md"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    html = _html(out)
    assert "<img" not in html
    largest = html.split("Largest differences")[1]
    rows = largest.split("<tbody>")[1].split("</tbody>")[0]
    assert 2 * rows.count("<tr>") == rows.count("evil.example")  # task and card id stay in their row


def test_markdown_escapes_keep_ordinary_names_readable() -> None:
    from esc_bench.analysis.markdown import md_code, md_text

    assert md_text("esc_eval_en") == "esc_eval_en" and md_text("openai/gpt-4o") == "openai/gpt-4o"
    assert "<code>" not in _html(md_text("a `b` c")) and "<em>" not in _html(md_text("_b_ *a*"))
    span = md_code("run``x\r\nsecond`")
    assert _html(span).strip() == "<p><code>run``x second`</code></p>"
