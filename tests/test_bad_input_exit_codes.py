"""Bad input and a hostile environment, for every subcommand: one line on stderr and exit 2, never
a traceback or the internal-error exit 3 (found by running the CLI with broken files of every kind)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from esc_bench.cli import main
from tests.support.synthetic_runs import make_run

DEEP = "[" * 100_000 + "]" * 100_000  # nesting no JSON parser follows to the end
BINARY = bytes(range(256)) * 4


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-input")
    make_run(root / "good", n_cards=2)
    (root / "plain.txt").write_text("hello\n", encoding="utf-8")
    return root


def put(root: Path, name: str, data: str | bytes) -> str:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(p)


def run_copy(root: Path, name: str, file: str, data: str | bytes | None) -> str:
    """A copy of the good run with one file replaced (None: replaced by a folder)."""
    d = root / name
    if not d.exists():
        shutil.copytree(root / "good", d)
        (d / file).unlink()
        if data is None:
            (d / file).mkdir()
        else:
            (d / file).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(d)


def task_dir(root: Path, name: str, text: str) -> str:
    return str(Path(put(root, f"{name}/x.yaml", text)).parent)


def import_args(root: Path, out: str, **files: str) -> list[str]:
    ok = put(root, "ok-transcripts.json", '{"0": ["AI assistant: hi", "ESC-Role: x", "AI assistant: y"]}')
    args = ["import-upstream", "--transcripts", files.pop("transcripts", ok), "--language", "en",
            "--model", "m", "-o", out]
    for k, v in files.items():
        args += [f"--{k}", v]
    return args


CASES: dict[str, Callable[[Path], list[str]]] = {
    # a file where a run folder belongs, and a folder where a file belongs
    "score: a file as run folder": lambda r: ["score", str(r / "plain.txt"), "--judge", "openai/x"],
    "resume: a file as run folder": lambda r: ["resume", str(r / "plain.txt")],
    "report: scores.jsonl is a folder": lambda r: ["report", run_copy(r, "sdir", "scores.jsonl", None)],
    "report: dialogues.jsonl is a folder": lambda r: ["report", run_copy(r, "ddir", "dialogues.jsonl", None)],
    "import-upstream: transcripts is a folder": lambda r: import_args(r, str(r / "imp0"), transcripts=str(r)),
    # deeply nested JSON
    "agreement: deep JSON reference": lambda r: ["agreement", str(r / "good"), "--reference", put(r, "d.json", DEEP)],
    "agreement: deep JSONL reference": lambda r: ["agreement", str(r / "good"), "--reference",
                                                  put(r, "d.jsonl", DEEP + "\n")],
    "import-upstream: deep transcripts": lambda r: import_args(r, str(r / "imp1"), transcripts=put(r, "dt.json", DEEP)),
    "import-upstream: deep scores": lambda r: import_args(r, str(r / "imp2"), scores=put(r, "ds.json", DEEP)),
    "import-upstream: deep cards": lambda r: import_args(r, str(r / "imp3"), cards=put(r, "dc.json", DEEP)),
    "tasks validate --cards: deep card file": lambda r: [
        "tasks", "validate", "--cards", "--tasks-dir",
        task_dir(r, "t-deep-cards", f"language: en\nprotocol: esc-bench\ncards: {{source: {put(r, 'c.json', DEEP)}}}\n")],
    "tasks validate --cards: deep JSONL card": lambda r: [
        "tasks", "validate", "--cards", "--tasks-dir",
        task_dir(r, "t-deep-cardl", f"language: en\nprotocol: esc-bench\ncards: {{source: {put(r, 'c.jsonl', DEEP)}}}\n")],
    "report: deep scores line": lambda r: ["report", run_copy(r, "sdeep", "scores.jsonl", DEEP + "\n")],
    "report: deep manifest": lambda r: ["report", run_copy(r, "mdeep", "manifest.json", DEEP)],
    "convert-rank: deep config.json": lambda r: [
        "convert-rank", "--base", str(Path(put(r, "crb/config.json", DEEP)).parent),
        "--adapters", str(r / "crb"), "--out", str(r / "cr-out")],
    # deep YAML: under libyaml's own limit, over Python's recursion limit
    "models validate: YAML nested 998 deep": lambda r: [
        "models", "validate", "--model-configs",
        str(Path(put(r, "m-deep/x.yaml", "model: " + "[" * 998 + "]" * 998)).parent)],
    "tasks: YAML nested 998 deep": lambda r: [
        "--tasks", "x", "--models", "openai/x", "--tasks-dir",
        task_dir(r, "t-deep", "a: " + "{a: " * 998 + "1" + "}" * 998)],
    # empty, binary and wrongly shaped files
    "report: binary manifest": lambda r: ["report", run_copy(r, "mbin", "manifest.json", BINARY)],
    "report: manifest is a list": lambda r: ["report", run_copy(r, "mlist", "manifest.json", "[]")],
    "report: binary scores": lambda r: ["report", run_copy(r, "sbin", "scores.jsonl", BINARY + b"\n")],
    "agreement: empty JSON reference": lambda r: ["agreement", str(r / "good"), "--reference", put(r, "e.json", "")],
    "agreement: binary CSV reference": lambda r: ["agreement", str(r / "good"), "--reference", put(r, "b.csv", BINARY)],
    "agreement: reference is an object": lambda r: ["agreement", str(r / "good"), "--reference", put(r, "o.json", "{}")],
    "import-upstream: binary transcripts": lambda r: import_args(r, str(r / "imp4"), transcripts=put(r, "tb.json", BINARY)),
    "import-upstream: transcripts a list": lambda r: import_args(r, str(r / "imp5"), transcripts=put(r, "tl.json", "[1]")),
    "import-upstream: scores of numbers": lambda r: import_args(r, str(r / "imp6"), scores=put(r, "sn.json", '{"0": 7}')),
    "convert-rank: binary config.json": lambda r: [
        "convert-rank", "--base", str(Path(put(r, "crc/config.json", BINARY)).parent),
        "--adapters", str(r / "crc"), "--out", str(r / "cr-out2")],
    "tasks: empty task file": lambda r: ["--tasks", "x", "--models", "openai/x", "--tasks-dir", task_dir(r, "t-empty", "")],
    "models validate: binary config": lambda r: [
        "models", "validate", "--model-configs", str(Path(put(r, "m-bin/x.yaml", BINARY)).parent)],
    # missing things and output paths that cannot be written
    "report: missing run": lambda r: ["report", str(r / "nope")],
    "compare: a file as run": lambda r: ["compare", str(r / "plain.txt")],
    "agreement: missing reference": lambda r: ["agreement", str(r / "good"), "--reference", str(r / "nope.json")],
    "leaderboard: output under a file": lambda r: ["leaderboard", str(r / "good"), "-o", str(r / "plain.txt" / "x.json")],
    "report: output is a folder": lambda r: ["report", str(r / "good"), "-o", str(r), "--format", "md"],
    "compare: --json under a file": lambda r: ["compare", str(r / "good"), "--model-a", "a", "--model-b", "b",
                                               "--json", str(r / "plain.txt" / "x.json")],
    "tasks: --tasks-dir missing": lambda r: ["tasks", "--tasks-dir", str(r / "nope")],
    "models: --model-configs is a file": lambda r: ["models", "--model-configs", str(r / "plain.txt")],
    "import-upstream: output is a file": lambda r: import_args(r, str(r / "plain.txt")),
    # found by the exit-3 hunt (issue 8.16)
    "agreement: a judge score outside 0-4 in the run": lambda r: [
        "agreement", run_copy(r, "s99", "scores.jsonl", _with_score(r, 99)), "--reference", str(r / "good")],
    "agreement: a NaN judge score in the run": lambda r: [
        "agreement", run_copy(r, "snan", "scores.jsonl", _with_score(r, float("nan"))), "--reference", str(r / "good")],
    "import-sage: deeply nested line": lambda r: [
        "import-sage", put(r, "deep-sage.jsonl", DEEP + "\n"), "--model", "m", "-o", str(r / "is-deep")],
    "run: api_base with a broken IPv6 host": lambda r: _run_with_model(r, "m-ipv6", "api_base: 'http://[::1'"),
    "run: api_base with a port that is not a number": lambda r: _run_with_model(r, "m-port", "api_base: 'http://x:ab/v1'"),
    "run: api_base without a scheme": lambda r: _run_with_model(r, "m-scheme", "api_base: 'localhost:8000/v1'"),
    "models validate: an api_base list with a bad URL": lambda r: [
        "models", "validate", "--model-configs",
        str(Path(put(r, "m-list/x.yaml", "backend: openai\nmodel: x\napi_base: ['http://a/v1', 'http://[']\n")).parent)],
}


def _with_score(root: Path, value: float) -> str:
    """The good run's scores.jsonl with its first judge score replaced by `value`."""
    import json

    lines = (root / "good" / "scores.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["score"] = value
    return "\n".join([json.dumps(first), *lines[1:]]) + "\n"


def _run_with_model(root: Path, name: str, line: str) -> list[str]:
    folder = Path(put(root, f"{name}/x.yaml", f"backend: openai\nmodel: x\n{line}\n")).parent
    return ["--models", "x", "--tasks", "esc_bench_mini_en", "--limit", "1", "--model-configs", str(folder),
            "--output", str(root / f"run-{name}"), "--no-preflight"]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2(root: Path, case: str, capsys) -> None:
    rc = main(CASES[case](root))
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "internal error" not in err and "Traceback" not in err
    assert err.startswith("esc-bench: error: ") and "\n" not in err, err


@pytest.mark.parametrize("args", [
    ["report", "RUN", "--seed", "-1"],
    ["leaderboard", "RUN", "--seed", "-5"],
    ["compare", "RUN", "--model-a", "a", "--model-b", "b", "--seed", "-1"],
    ["--models", "openai/x", "--tasks", "esc_bench_mini_en", "--seed", "-1", "--output", "OUT"],
], ids=["report", "leaderboard", "compare", "run"])
def test_a_negative_seed_is_refused_by_the_argument_parser(root: Path, args: list[str], capsys) -> None:
    args = [str(root / "good") if a == "RUN" else str(root / "seed-run") if a == "OUT" else a for a in args]
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--seed" in err and "negative" in err and "internal error" not in err
    assert not (root / "seed-run").exists()


def test_a_server_reply_nested_too_deeply_is_a_failed_call_not_a_crash(tmp_path: Path, capsys) -> None:
    from tests.support.fake_openai import FakeOpenAI
    from tests.test_e2e_cli import write_configs

    with FakeOpenAI(reply=lambda body: DEEP.encode()) as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        rc = main(["--models", "sup-a", "--tasks", "mini_en", "--limit", "1", "--model-configs", str(models),
                   "--tasks-dir", str(tasks), "--output", str(tmp_path / "run"), "--no-cache", "--no-preflight"])
    out, err = capsys.readouterr()
    assert rc == 1, err
    assert "internal error" not in err and "bad_response" in out


def test_a_sage_reply_nested_too_deeply_is_an_unparsable_reply() -> None:
    from esc_bench.protocols.sage_replies import parse_feel

    with pytest.raises(ValueError, match="nested too deeply"):
        parse_feel('{"a": ' + DEEP + "}")


def test_a_path_with_a_nul_byte_is_one_error_line() -> None:
    """A NUL byte can reach a path from a YAML or JSON string (no shell passes one)."""
    from esc_bench.errors import DataError, read_text

    with pytest.raises(DataError, match="NUL byte"):
        read_text(Path("/tmp/a\x00b.json"), what="card file")
