"""Reading the ESC-Eval protocol out of upstream's evaluate.py and score.py with `ast` only.

The sources are parsed, never executed: the strings are taken from the shapes of the statements
that hold them. The files are the pinned ones esc_bench.data.upstream fetches (commit and sha256
there).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from esc_bench.dimensions import UPSTREAM_KEY_ORDER
from esc_bench.errors import DataError
from esc_bench.protocol import LanguageStrings, Protocol

# -- ast helpers --------------------------------------------------------------------


def _str(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _add_operands(node: ast.AST) -> list[ast.AST]:
    """Flatten a left-nested `a + b + c` into [a, b, c]."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _add_operands(node.left) + _add_operands(node.right)
    return [node]


def _merge_constants(parts: list[ast.AST]) -> list[ast.AST | str]:
    """Replace runs of string constants by one str; other nodes are kept."""
    out: list[ast.AST | str] = []
    for p in parts:
        s = _str(p)
        if s is not None and out and isinstance(out[-1], str):
            out[-1] += s
        else:
            out.append(s if s is not None else p)
    return out


def _is_subscript_key(node: ast.AST | str, key: str) -> bool:
    return isinstance(node, ast.Subscript) and _str(node.slice) == key


def _method_call(node: object, name: str) -> tuple[ast.expr, list[ast.expr]] | None:
    """(receiver, args) when `node` is `<receiver>.<name>(*args)`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
        return node.func.value, node.args
    return None


def _assignments(tree: ast.AST) -> Iterator[tuple[str, ast.expr]]:
    """(name, value) of every `name = value` under `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            yield node.targets[0].id, node.value


def _message_content(node: ast.AST, method: str, role: str) -> str | None:
    """`<str>` when `node` is `x.<method>(..., {"role": <role>, "content": <str>})`."""
    call = _method_call(node, method)
    if call is None or not call[1] or not isinstance(entry := call[1][-1], ast.Dict):
        return None
    fields = {_str(k): v for k, v in zip(entry.keys, entry.values) if k is not None}
    if "role" in fields and _str(fields["role"]) == role and "content" in fields:
        return _str(fields["content"])
    return None


def _walk_in_order(nodes: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node under `nodes`, in source order."""
    for n in nodes:
        yield from sorted(ast.walk(n), key=lambda x: (getattr(x, "lineno", 0), getattr(x, "col_offset", 0)))


def _parse(src: str, label: str) -> ast.Module:
    try:
        return ast.parse(src, filename=label)
    except SyntaxError as e:
        raise DataError(f"upstream {label}: not valid Python (line {e.lineno}): {e.msg}") from None


# -- evaluate.py --------------------------------------------------------------------


def _seeker_strings(branch: list[ast.stmt]) -> tuple[str, str, str] | None:
    """(before_card, after_card, greeting) from one language branch of run_rolellm."""
    before = after = None
    for node in _walk_in_order(branch):
        if before is None and isinstance(node, ast.Assign):
            parts = _merge_constants(_add_operands(node.value))
            if (
                len(parts) == 3
                and _is_subscript_key(parts[1], "base")
                and isinstance(parts[0], str)
                and isinstance(parts[2], str)
            ):
                before, after = parts[0], parts[2]
        elif before is not None and (greeting := _message_content(node, "append", "user")) is not None:
            return before, after or "", greeting
    return None


def _language_of_test(test: ast.AST) -> str | None:
    """'zh' / 'en' when `test` is `<x>.language == "zh"` (or "en")."""
    if (
        isinstance(test, ast.Compare)
        and isinstance(test.ops[0], ast.Eq)
        and isinstance(test.left, ast.Attribute)
        and test.left.attr == "language"
    ):
        value = _str(test.comparators[0])
        return value if value in ("zh", "en") else None
    return None


def _supporter_system(tree: ast.Module, label: str) -> str:
    """The system prompt every model wrapper class inserts when a conversation has none."""
    found = {
        text
        for cls in ast.walk(tree)
        if isinstance(cls, ast.ClassDef)
        for node in ast.walk(cls)
        if (text := _message_content(node, "insert", "system")) is not None
    }
    if not found:
        raise DataError(f"upstream {label}: no model wrapper inserts a default system message")
    if len(found) > 1:
        raise DataError(f"upstream {label}: model wrappers disagree on the default system prompt")
    return found.pop()


def _speaker_prefixes(func: ast.FunctionDef, label: str) -> tuple[str, str]:
    """(supporter, seeker) prefixes from `if m['role'] == 'user': lines.append(<str> + ...)`."""
    prefixes: dict[str, str] = {}
    for node in ast.walk(func):
        test = node.test if isinstance(node, ast.If) else None
        if not (isinstance(test, ast.Compare) and _is_subscript_key(test.left, "role")):
            continue
        role = _str(test.comparators[0]) if isinstance(test.ops[0], ast.Eq) else None
        for stmt in node.body:  # type: ignore[attr-defined]
            call = _method_call(stmt.value, "append") if isinstance(stmt, ast.Expr) else None
            parts = _add_operands(call[1][0]) if call and len(call[1]) == 1 else []
            if role and len(parts) == 2 and (prefix := _str(parts[0])) is not None:
                prefixes.setdefault(role, prefix)
    if "user" not in prefixes or "assistant" not in prefixes:
        raise DataError(f"upstream {label}: transcript speaker prefixes not found in run_rolellm()")
    return prefixes["user"], prefixes["assistant"]


def _rounds(func: ast.FunctionDef, label: str) -> int:
    for node in ast.walk(func):
        it = node.iter if isinstance(node, ast.For) else None
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id == "range"
            and len(it.args) == 1
            and isinstance(it.args[0], ast.Constant)
            and type(it.args[0].value) is int
        ):
            return it.args[0].value
    raise DataError(f"upstream {label}: the rounds loop `for ... in range(N)` not found in run_rolellm()")


@dataclass(frozen=True)
class _EvaluateFacts:
    seeker: dict[str, tuple[str, str, str]]  # language -> (before card, after card, greeting)
    supporter_system: str
    supporter_prefix: str
    seeker_prefix: str
    rounds: int


def _parse_evaluate(src: str) -> _EvaluateFacts:
    label = "evaluate.py"
    tree = _parse(src, label)
    func = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "run_rolellm"), None)
    if func is None:
        raise DataError(f"upstream {label}: function run_rolellm() not found")
    seeker: dict[str, tuple[str, str, str]] = {}
    for node in ast.walk(func):
        lang = _language_of_test(node.test) if isinstance(node, ast.If) else None
        if lang is not None:
            other = "en" if lang == "zh" else "zh"
            for which, branch in ((lang, node.body), (other, node.orelse)):  # type: ignore[attr-defined]
                if (strings := _seeker_strings(branch)) is not None:
                    seeker.setdefault(which, strings)
    for lang in ("zh", "en"):
        if lang not in seeker:
            raise DataError(
                f"upstream {label}: the {lang} seeker prompt (`prompt = <str> + card['base'] + <str>` "
                "then the greeting append) not found in run_rolellm()"
            )
    supporter_prefix, seeker_prefix = _speaker_prefixes(func, label)
    return _EvaluateFacts(
        seeker, _supporter_system(tree, label), supporter_prefix, seeker_prefix, _rounds(func, label)
    )


# -- score.py -----------------------------------------------------------------------


def _string_list(tree: ast.Module, name: str, label: str) -> list[str]:
    values: list[list[str]] = []
    for node in (value for target, value in _assignments(tree) if target == name):
        try:
            value = ast.literal_eval(node)
        except ValueError:
            value = None
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise DataError(f"upstream {label}: {name} is not a list of string constants")
        values.append(value)
    if not values:
        raise DataError(f"upstream {label}: {name} not found")
    if any(v != values[0] for v in values):
        raise DataError(f"upstream {label}: {name} is assigned more than once with different values")
    return values[0]


def _transcript_rules(tree: ast.Module, label: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The separator of `<sep>.join(lines).replace(a, b)...` and its replacements, in order."""
    for _, value in _assignments(tree):
        replacements: list[tuple[str, str]] = []
        while (call := _method_call(value, "replace")) and len(call[1]) == 2:
            old, new = _str(call[1][0]), _str(call[1][1])
            if old is None or new is None:
                break
            replacements.insert(0, (old, new))
            value = call[0]
        join = _method_call(value, "join")
        if join and replacements and (sep := _str(join[0])) is not None:
            return sep, tuple(replacements)
    raise DataError(f"upstream {label}: the dialogue line `<sep>.join(lines).replace(...)` not found")


def _judge_pieces(tree: ast.Module, label: str) -> tuple[str, str, str, str]:
    """(header, after_dialogue, ask_before, ask_after) from the two judge-prompt lines."""
    for target, value in _assignments(tree):
        parts = _merge_constants(_add_operands(value))
        if not (
            len(parts) in (3, 4)
            and isinstance(parts[0], ast.Subscript)
            and isinstance(parts[1], str)
            and _method_call(parts[2], "strip")
            and (len(parts) == 3 or isinstance(parts[3], str))
        ):
            continue
        header, after = str(parts[1]), str(parts[3]) if len(parts) == 4 else ""
        for aug in ast.walk(tree):
            if isinstance(aug, ast.AugAssign) and isinstance(aug.op, ast.Add) and isinstance(aug.target, ast.Name):
                ask = _merge_constants(_add_operands(aug.value))
                if (
                    aug.target.id == target
                    and len(ask) == 3
                    and isinstance(ask[1], ast.Name)
                    and isinstance(ask[0], str)
                    and isinstance(ask[2], str)
                ):
                    return header, after, ask[0], ask[2]
        raise DataError(f"upstream {label}: the judge ask line `{target} += <str> + name + <str>` not found")
    raise DataError(f"upstream {label}: the judge prompt line `rubric + <str> + dialogue.strip() + <str>` not found")


@dataclass(frozen=True)
class _ScoreFacts:
    names: dict[str, str]  # key -> name inside the judge prompt
    rubrics: dict[str, dict[str, str]]  # language -> key -> rubric
    separator: str
    replacements: tuple[tuple[str, str], ...]
    judge: tuple[str, str, str, str]  # header, after dialogue, ask before, ask after


def _parse_score(src: str) -> _ScoreFacts:
    label = "score.py"
    tree = _parse(src, label)
    keys = _string_list(tree, "key_list", label)
    if sorted(keys) != sorted(UPSTREAM_KEY_ORDER):
        raise DataError(f"upstream {label}: key_list {keys} is not the 7 known dimension keys")
    names = _string_list(tree, "dimention_list", label)
    rubrics = {lang: _string_list(tree, var, label) for lang, var in (("en", "prompt_EN"), ("zh", "prompt_ZH"))}
    for name, lst in (("dimention_list", names), ("prompt_EN", rubrics["en"]), ("prompt_ZH", rubrics["zh"])):
        if len(lst) != len(keys):
            raise DataError(f"upstream {label}: {name} has {len(lst)} entries, key_list has {len(keys)}")
    separator, replacements = _transcript_rules(tree, label)
    return _ScoreFacts(
        names=dict(zip(keys, names)),
        rubrics={lang: dict(zip(keys, lst)) for lang, lst in rubrics.items()},
        separator=separator,
        replacements=replacements,
        judge=_judge_pieces(tree, label),
    )


# -- protocol -----------------------------------------------------------------------


def extract_protocol(evaluate_src: str, score_src: str) -> Protocol:
    """Build the `esc-eval` Protocol from upstream evaluate.py and score.py sources."""
    ev = _parse_evaluate(evaluate_src)
    sc = _parse_score(score_src)
    header, after, ask_before, ask_after = sc.judge
    languages = {
        lang: LanguageStrings(
            seeker_system_before_card=ev.seeker[lang][0],
            seeker_system_after_card=ev.seeker[lang][1],
            greeting=ev.seeker[lang][2],
            judge_rubrics=sc.rubrics[lang],
        )
        for lang in ("en", "zh")
    }
    return Protocol(
        name="esc-eval",
        rounds=ev.rounds,
        supporter_system=ev.supporter_system,
        supporter_prefix=ev.supporter_prefix,
        seeker_prefix=ev.seeker_prefix,
        transcript_separator=sc.separator,
        transcript_replacements=sc.replacements,
        judge_header=header,
        judge_after_dialogue=after,
        judge_ask_before=ask_before,
        judge_ask_after=ask_after,
        judge_dimension_names=sc.names,
        languages=languages,
    )
