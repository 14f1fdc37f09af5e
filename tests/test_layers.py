"""Every import in the package points down the pipeline's layers (or stays within its layer).

The layers, bottom to top: the shared records and helpers; configuration; model backends; data
(protocol strings, cards, pinned upstream files); protocol plugins; run folders; analysis of run
folders; the engine that plans and runs; ingestion and conversion of outside results; the
subcommands; the command line. Lazy (function-level) and type-checking imports count too: they are
dependencies all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "esc_bench"

# (layer, module prefixes) bottom to top; a module's layer is that of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # esc_bench.analysis.stats is pure statistics (numpy/scipy, nothing of the package): protocols
    # summarise with it as analysis does.
    ("base", ("esc_bench", "esc_bench.errors", "esc_bench.dimensions", "esc_bench.records",
              "esc_bench.console", "esc_bench.files", "esc_bench.analysis.stats")),
    ("config", ("esc_bench.config",)),
    ("backends", ("esc_bench.backends",)),
    ("data", ("esc_bench.data", "esc_bench.protocol")),
    ("protocols", ("esc_bench.protocols",)),
    ("store", ("esc_bench.store",)),
    ("analysis", ("esc_bench.analysis",)),
    ("engine", ("esc_bench.engine",)),
    ("ingest", ("esc_bench.ingest", "esc_bench.local")),
    ("commands", ("esc_bench.commands",)),
    ("cli", ("esc_bench.cli",)),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}


def layer_of(module: str) -> str:
    best, best_len = None, -1
    for name, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = name, len(p)
    assert best is not None, module
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of an esc_bench module in the file, wherever it stands."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            # `from esc_bench.x import y` imports the submodule x.y when there is one.
            out += [(node.lineno, n) for n in names if n == node.module or _is_module(n)]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; write esc_bench.… in full")
    return [(line, m) for line, m in out if m == "esc_bench" or m.startswith("esc_bench.")]


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").exists() or (PACKAGE.parent / rel / "__init__.py").exists()


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        for line, target in package_imports(path):
            if RANK[layer_of(target)] > RANK[layer_of(me)]:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {me} ({layer_of(me)}) imports "
                           f"{target} ({layer_of(target)})")
    return bad


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports() == []


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert layer_of(module_name(path)) in RANK


@pytest.mark.parametrize(
    ("module", "layer"),
    [("esc_bench.data.cards", "data"), ("esc_bench.ingest.sage_import", "ingest"),
     ("esc_bench.analysis.stats", "base"), ("esc_bench.commands.run", "commands"), ("esc_bench", "base")],
)
def test_layer_of_uses_the_longest_prefix(module: str, layer: str) -> None:
    assert layer_of(module) == layer


def test_the_check_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from esc_bench.engine.plan import RunPlan\n    return RunPlan\n")
    assert package_imports(src) == [(2, "esc_bench.engine.plan")]


def test_the_manifest_is_a_record_beside_the_others() -> None:
    from esc_bench.records import Invocation, Manifest, RunOptions

    assert {Manifest.__module__, Invocation.__module__, RunOptions.__module__} == {"esc_bench.records"}
