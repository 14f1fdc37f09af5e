"""Stand-ins for upstream ESC-Eval's evaluate.py and score.py, and a local mirror to serve them.

The stand-ins have the same `ast` shape as the upstream files, but every string in them is
read at test time from ../shared/esc-eval/upstream_protocol.json; none is written in this
repository. Tests skip when ../shared is absent.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from esc_bench.data.upstream import UPSTREAM_COMMIT
from tests.support.static_server import StaticServer

SHARED = Path(__file__).resolve().parents[3] / "shared"
ESC_EVAL = SHARED / "esc-eval"
CARD_FILES = ("data/card_high_en.json", "data/card_high_zh.json")


def shared_or_skip() -> Path:
    """../shared/esc-eval, or skip the calling test when it is absent."""
    if not (ESC_EVAL / "upstream_protocol.json").is_file():
        pytest.skip("../shared/esc-eval is not available")
    return ESC_EVAL


def reference() -> dict[str, Any]:
    """upstream_protocol.json (skips when absent)."""
    return json.loads((shared_or_skip() / "upstream_protocol.json").read_text(encoding="utf-8"))


# -- the judge-prompt recipe, read from the reference JSON ---------------------------


@dataclass(frozen=True)
class Recipe:
    separator: str
    replacements: tuple[tuple[str, str], ...]
    prompt_terms: tuple[ast.expr, ...]  # operands of `prompt = rubric + ... + name + ...`

    def _constants(self) -> list[str | None]:
        """The prompt's terms: their string value, or None for a variable / call."""
        return [t.value if isinstance(t, ast.Constant) else None for t in self.prompt_terms]

    @property
    def pieces(self) -> tuple[str, str, str, str]:
        """(header, after_dialogue, ask_before, ask_after) as upstream's two prompt lines split them."""
        terms = self._constants()
        strip_at = next(i for i, t in enumerate(self.prompt_terms) if isinstance(t, ast.Call))
        name_at = max(i for i, t in enumerate(terms) if t is None)
        header = "".join(t or "" for t in terms[1:strip_at])
        after = terms[strip_at + 1] or ""
        ask_before = "".join(t or "" for t in terms[strip_at + 2 : name_at])
        ask_after = "".join(t or "" for t in terms[name_at + 1 :])
        return header, after, ask_before, ask_after

    def judge_prompt(self, rubric: str, name: str, lines: list[str]) -> str:
        """The judge prompt computed exactly as the recipe says, from raw transcript lines."""
        dialogue = self.separator.join(lines)
        for old, new in self.replacements:
            dialogue = dialogue.replace(old, new)
        out = []
        for term in self.prompt_terms:
            if isinstance(term, ast.Constant):
                out.append(term.value)
            elif isinstance(term, ast.Call):  # dialogue.strip()
                out.append(dialogue.strip())
            elif isinstance(term, ast.Name) and term.id == "rubric":
                out.append(rubric)
            else:  # the dimension's name inside the prompt
                out.append(name)
        return "".join(out)


def _operands(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _operands(node.left) + _operands(node.right)
    return [node]


def recipe(ref: dict[str, Any] | None = None) -> Recipe:
    ref = ref or reference()
    lines = ref["judge_prompt_recipe"]
    join_line = next(s for s in lines if ".join(" in s)
    m = re.match(r"dialogue = ('(?:[^'\\]|\\.)*')\.join", join_line)
    assert m, join_line
    separator = ast.literal_eval(m.group(1))
    replace_line = next(s for s in lines if ".replace(" in s).split("  (")[0]
    calls = [n for n in ast.walk(ast.parse(replace_line)) if isinstance(n, ast.Call)]
    # ast.walk meets the outermost call first; upstream applies the innermost first.
    replacements = tuple(
        (ast.literal_eval(c.args[0]), ast.literal_eval(c.args[1])) for c in reversed(calls)
    )
    prompt_line = next(s for s in lines if s.startswith("prompt = "))
    stmt = ast.parse(prompt_line).body[0]
    assert isinstance(stmt, ast.Assign)
    return Recipe(separator, replacements, tuple(_operands(stmt.value)))


# -- stand-in sources -----------------------------------------------------------------

_EVALUATE = '''\
import json


class SupporterModel:
    def __call__(self, message):
        if message[0]["role"] != "system":
            message.insert(0, {"role": "system", "content": @SUPPORTER_SYSTEM@})
        return "..."


class SeekerModel:
    def __call__(self, message):
        if message[0]["role"] != "system":
            message.insert(0, {"role": "system", "content": @SUPPORTER_SYSTEM@})
        return "..."


def run_rolellm(args):
    if args.language == "zh":
        models = [SupporterModel]
    else:
        models = [SupporterModel]
    seeker = SeekerModel()
    with open(args.evaluete_file, encoding="utf-8") as f:
        data = json.load(f)
    for model_cls in models:
        model = model_cls()
        for index, tem_data in enumerate(data):
            if args.language == "zh":
                prompt = @ZH_BEFORE@ + tem_data["base"] + \\
                    @ZH_AFTER@
                message_ill = [{"role": "system", "content": prompt}]
                message_ill.append({"role": "user", "content": @ZH_GREETING@})
            else:
                prompt = @EN_BEFORE@ + tem_data["base"] + \\
                    @EN_AFTER@
                message_ill = [{"role": "system", "content": prompt}]
                message_ill.append({"role": "user", "content": @EN_GREETING@})
            message_doc = []
            for i in range(@ROUNDS@):
                res = seeker(message=message_ill)
                message_ill.append({"role": "assistant", "content": res})
                message_doc.append({"role": "user", "content": res})
                res = model(message_doc)
                message_ill.append({"role": "user", "content": res})
                message_doc.append({"role": "assistant", "content": res})
            tem_result = []
            for tem in message_ill:
                if tem["role"] == "user":
                    tem_result.append(@SUPPORTER_PREFIX@ + tem["content"])
                if tem["role"] == "assistant":
                    tem_result.append(@SEEKER_PREFIX@ + tem["content"])


if __name__ == "__main__":
    run_rolellm(None)
'''

_SCORE = '''\
import json
import os


class RankZH:
    def __init__(self):
        self.paths = @ZH_ADAPTERS@


class RankEN:
    def __init__(self):
        self.paths = @EN_ADAPTERS@


prompt_EN = @PROMPT_EN@

prompt_ZH = @PROMPT_ZH@

if __name__ == "__main__":
    dimention_list = @NAMES@
    key_list = @KEYS@
    for file in os.listdir("./result/"):
        with open("./result/" + file, encoding="utf-8") as f:
            data = json.load(f)
        prompt_list = prompt_ZH if "zh" in file else prompt_EN
        for index, item in data.items():
            for index_d, dimention in enumerate(dimention_list):
                dialogue = @SEPARATOR@.join(item).replace(@OLD1@, @NEW1@).replace(@OLD2@, @NEW2@)
                prompt1 = prompt_list[index_d] + @HEADER@ + dialogue.strip() + @AFTER@
                prompt1 += @ASK_BEFORE@ + dimention + @ASK_AFTER@
'''


def _fill(template: str, values: dict[str, Any]) -> str:
    """Replace each @NAME@ by the Python literal of values[NAME] (one pass)."""
    return re.sub(r"@([A-Z0-9_]+)@", lambda m: repr(values[m.group(1)]), template)


def standin_evaluate(ref: dict[str, Any] | None = None) -> str:
    ref = ref or reference()
    en, zh = ref["languages"]["en"], ref["languages"]["zh"]
    return _fill(
        _EVALUATE,
        {
            "SUPPORTER_SYSTEM": ref["supporter_system_if_missing"],
            "ZH_BEFORE": zh["seeker_system_before_card"],
            "ZH_AFTER": zh["seeker_system_after_card"],
            "ZH_GREETING": zh["greeting"],
            "EN_BEFORE": en["seeker_system_before_card"],
            "EN_AFTER": en["seeker_system_after_card"],
            "EN_GREETING": en["greeting"],
            "ROUNDS": ref["rounds"],
            "SUPPORTER_PREFIX": ref["transcript_speaker_prefix"]["supporter"],
            "SEEKER_PREFIX": ref["transcript_speaker_prefix"]["seeker"],
        },
    )


def standin_score(ref: dict[str, Any] | None = None) -> str:
    ref = ref or reference()
    rec = recipe(ref)
    header, after, ask_before, ask_after = rec.pieces
    (old1, new1), (old2, new2) = rec.replacements
    keys = [d["rank_adapter"] for d in ref["dimensions"]]
    suffix = {lang: ref["languages"][lang]["rank_adapter_suffix"] for lang in ("en", "zh")}
    return _fill(
        _SCORE,
        {
            "PROMPT_EN": ref["languages"]["en"]["judge_rubrics"],
            "PROMPT_ZH": ref["languages"]["zh"]["judge_rubrics"],
            "NAMES": [d["name_in_judge_prompt"] for d in ref["dimensions"]],
            "KEYS": keys,
            "SEPARATOR": rec.separator,
            "OLD1": old1,
            "NEW1": new1,
            "OLD2": old2,
            "NEW2": new2,
            "HEADER": header,
            "AFTER": after,
            "ASK_BEFORE": ask_before,
            "ASK_AFTER": ask_after,
            "ZH_ADAPTERS": [f"./ESC-RANK/{k}{suffix['zh']}" for k in keys],
            "EN_ADAPTERS": [f"./ESC-RANK/{k}{suffix['en']}" for k in keys],
        },
    )


def make_upstream_mirror(tmp_path: Path) -> tuple[Path, Path]:
    """Write `<tmp>/mirror/<commit>/<path>` (stand-ins + shared card files) and `<tmp>/pins.json`.

    Returns (mirror root, pins JSON path). Skips the test when ../shared is absent.
    """
    ref = reference()
    root = tmp_path / "mirror"
    files: dict[str, bytes] = {
        "evaluate.py": standin_evaluate(ref).encode("utf-8"),
        "score.py": standin_score(ref).encode("utf-8"),
    }
    for path in CARD_FILES:
        files[path] = (ESC_EVAL / Path(path).name).read_bytes()
    for path, data in files.items():
        dest = root / UPSTREAM_COMMIT / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    pins_path = tmp_path / "pins.json"
    pins_path.write_text(json.dumps({p: hashlib.sha256(d).hexdigest() for p, d in files.items()}))
    return root, pins_path


@pytest.fixture
def upstream_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StaticServer]:
    """A loopback server for the stand-in mirror, with the env pointing esc-bench at it.

    Sets ESC_BENCH_UPSTREAM_URL (the server), ESC_BENCH_UPSTREAM_PINS (the mirror's pins)
    and ESC_BENCH_CACHE_DIR (<tmp>/cache).
    """
    root, pins = make_upstream_mirror(tmp_path)
    with StaticServer(root) as server:
        monkeypatch.setenv("ESC_BENCH_UPSTREAM_URL", server.url)
        monkeypatch.setenv("ESC_BENCH_UPSTREAM_PINS", str(pins))
        monkeypatch.setenv("ESC_BENCH_CACHE_DIR", str(tmp_path / "cache"))
        yield server
