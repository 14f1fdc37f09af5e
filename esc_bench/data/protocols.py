"""`load_protocol(name)`: the upstream `esc-eval` protocol, our bundled `esc-bench`, or a YAML file."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from esc_bench.config.loader import line_of, parse_yaml, validate
from esc_bench.config.paths import cache_dir
from esc_bench.data.upstream import base_url, load_upstream_protocol
from esc_bench.dimensions import UPSTREAM_KEY_ORDER
from esc_bench.errors import ConfigError, read_text
from esc_bench.protocol import Protocol

KNOWN_PROTOCOLS = ("esc-eval", "esc-bench")
_memo: dict[tuple[Any, ...], Protocol] = {}


def load_protocol(name: str, base_dir: Path | None = None) -> Protocol:
    """Protocol by name (`esc-eval`, `esc-bench`) or a `.yaml`/`.yml` path (relative to base_dir or cwd)."""
    if name == "esc-eval":
        # The upstream protocol depends on where it is fetched from: key on that.
        key: tuple[Any, ...] = (name, base_url(), str(cache_dir()), os.environ.get("ESC_BENCH_UPSTREAM_PINS"))
        if key not in _memo:
            _memo[key] = load_upstream_protocol()
        return _memo[key]
    if name == "esc-bench":
        res = resources.files("esc_bench") / "resources" / "protocols" / "esc-bench.yaml"
        path = Path(str(res))
    elif name.lower().endswith((".yaml", ".yml")):
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        if not path.is_file():
            raise ConfigError(f"protocol file {path} not found")
    else:
        raise ConfigError(
            f"unknown protocol {name!r}; known: {', '.join(KNOWN_PROTOCOLS)}, or a path to a .yaml/.yml file"
        )
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _memo:
            _memo[key] = parse_protocol_yaml(read_text(path, ConfigError, "protocol file"), str(path))
    except OSError as e:
        raise ConfigError(f"cannot read protocol file {path}: {e.strerror or e}") from None
    return _memo[key]


def parse_protocol_yaml(text: str, label: str) -> Protocol:
    """Validate a protocol YAML document strictly; errors are one line, `file:line: ...`."""
    data, lines = parse_yaml(text, label)
    proto = validate(Protocol, data, label, lines)
    problem = _check_complete(proto)
    if problem:
        loc, msg = problem
        raise ConfigError(f"{label}:{line_of(lines, loc)}: {'.'.join(loc)}: {msg}")
    return proto


def _check_complete(proto: Protocol) -> tuple[tuple[str, ...], str] | None:
    """What the model alone does not check: every dimension named and rubricked, a known language."""
    want = set(UPSTREAM_KEY_ORDER)
    expected = f"expected the keys {', '.join(UPSTREAM_KEY_ORDER)}"
    if proto.rounds < 1:
        return ("rounds",), "must be at least 1"
    if set(proto.judge_dimension_names) != want:
        return ("judge_dimension_names",), expected
    if not proto.languages:
        return ("languages",), "give at least one of en, zh"
    for lang, strings in proto.languages.items():
        if lang not in ("en", "zh"):
            return ("languages", lang), "unknown language (use en or zh)"
        if set(strings.judge_rubrics) != want:
            return ("languages", lang, "judge_rubrics"), expected
        if strings.judge_dimension_names is not None and set(strings.judge_dimension_names) != want:
            return ("languages", lang, "judge_dimension_names"), expected
    return None
