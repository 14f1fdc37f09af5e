"""Strict YAML loading with file:line errors, and the task / model-config registries."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from esc_bench.config.schema import GroupConfig, ModelConfig, TaskConfig, config_type, unknown_key_message
from esc_bench.errors import ConfigError, read_text

T = TypeVar("T", bound=BaseModel)

# libyaml's C parser when PyYAML has it (about 10x faster), else the pure-Python one; both safe.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_YAML_DEPTH = 100  # configs need a handful of levels; far below Python's recursion limit


# -- where configs are found -------------------------------------------------------------


def builtin_dir(kind: str) -> Path:
    """The shipped folder `kind` ("tasks" or "model_configs") inside the installed package."""
    return Path(str(resources.files("esc_bench") / "resources" / kind))


def search_dirs(user_dirs: list[Path] | None, kind: str, *, builtin: bool = True) -> list[Path]:
    """Where configs of `kind` are looked up, first match wins: the folders the user named, then
    ./<kind> when the working folder has one, then the folder shipped with the package.
    `builtin=False`: only the folders the user named."""
    dirs = list(user_dirs or [])
    if builtin:
        local = Path.cwd() / kind
        if local.is_dir():
            dirs.append(local)
        dirs.append(builtin_dir(kind))
    return dirs


# -- YAML with line numbers ------------------------------------------------------------


def read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse a YAML file; return its data and the line (1-based) of every key path."""
    return parse_yaml(read_text(path, ConfigError), path)


def parse_yaml(text: str, path: Path | str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse YAML text (duplicate keys, aliases and deep nesting refused); `path` labels the errors."""
    try:
        _check_events(text, path)
        node = yaml.compose(text, Loader=_LOADER)
        data = yaml.load(text, Loader=_LOADER)  # a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: malformed YAML ({problem})") from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _collect_lines(path, node, (), lines)
    return data, lines


def _line(event: yaml.Event) -> int | str:
    """The 1-based line an event starts on ('?' when the parser gave no position)."""
    return "?" if event.start_mark is None else event.start_mark.line + 1


def _check_events(text: str, path: Path | str) -> None:
    """Refuse `*alias` and deep nesting before anything is built, from the event stream (cheap).

    Nested aliases expand exponentially (a "billion laughs" file of a few hundred bytes takes
    gigabytes); nesting deeper than any config needs would overflow the recursive steps after this.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(
                f"{path}:{_line(event)}: YAML aliases (*{event.anchor}) are not allowed; "
                "write the value out"
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(
                    f"{path}:{_line(event)}: nested more than {MAX_YAML_DEPTH} levels deep"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _collect_lines(path: Path | str, node: yaml.Node, at: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
            out[at + (key,)] = key_node.start_mark.line + 1
            _collect_lines(path, value_node, at + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_lines(path, item, at + (i,), out)


def line_of(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    """The line of the deepest known prefix of `loc` (1 when none is known)."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


def validate(model: type[T], data: Any, path: Path | str, lines: dict[tuple[Any, ...], int], **extra: Any) -> T:
    """Validate YAML data against a schema; the first problem becomes `file:line: field: message`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of keys to values, got {type(data).__name__}")
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err.get("loc", ()))
        line = line_of(lines, loc)
        field = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            fields = model.model_fields
            if model is ModelConfig:  # the config type of its backend
                fields = config_type({**data, **extra}).model_fields
            allowed = ", ".join(k for k in fields if k != "name")
            msg = unknown_key_message(model, {**data, **extra}, str(loc[-1]) if loc else "") or (
                f"unknown key (allowed: {allowed})"
            )
        raise ConfigError(f"{path}:{line}: {field}: {msg}") from None


def load_file(model: type[T], path: Path, **extra: Any) -> T:
    data, lines = read_yaml(path)
    return validate(model, data, path, lines, **extra)


def suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


def _scan(dirs: list[Path]) -> dict[str, Path]:
    """name -> file; earlier folders win (user folders come before the built-in one)."""
    found: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            raise ConfigError(f"{d}: not a folder")
        for f in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            found.setdefault(f.stem, f)
    return found


# -- model configs ---------------------------------------------------------------------


class ModelRegistry:
    def __init__(self, extra_dirs: list[Path] | None = None, *, builtin: bool = True) -> None:
        self.files = _scan(search_dirs(extra_dirs, "model_configs", builtin=builtin))
        self._cache: dict[str, ModelConfig] = {}

    def names(self) -> list[str]:
        return sorted(self.files)

    def get(self, name: str) -> ModelConfig:
        if name in self._cache:
            return self._cache[name]
        if name in self.files:
            cfg = load_file(ModelConfig, self.files[name], name=name)
        else:
            from esc_bench.config.providers import raw_model_settings

            self._check_raw(name)
            cfg = ModelConfig(name=name, model=name, **raw_model_settings(name))
        self._cache[name] = cfg
        return cfg

    def _check_raw(self, name: str) -> str:
        """A name with no config is a raw model string; refuse one that cannot be a model."""
        from esc_bench.config.providers import raw_model_provider

        try:
            return raw_model_provider(name)
        except ValueError as exc:
            raise ConfigError(
                f"unknown model {name!r}: no model_configs/{name}.yaml, and not a model string: {exc}"
                + suggest(name, self.names())
            ) from None


# -- tasks -----------------------------------------------------------------------------


class TaskRegistry:
    def __init__(self, extra_dirs: list[Path] | None = None, *, builtin: bool = True) -> None:
        self.files = _scan(search_dirs(extra_dirs, "tasks", builtin=builtin))
        self._raw: dict[str, tuple[dict[str, Any], dict[tuple[Any, ...], int]]] = {}

    def names(self) -> list[str]:
        return sorted(self.files)

    def _read(self, name: str) -> tuple[dict[str, Any], dict[tuple[Any, ...], int], Path]:
        if name not in self.files:
            raise ConfigError(f"unknown task or group {name!r}" + suggest(name, self.names()))
        path = self.files[name]
        if name not in self._raw:
            data, lines = read_yaml(path)
            if not isinstance(data, dict):
                raise ConfigError(f"{path}:1: expected a mapping of keys to values")
            self._raw[name] = (data, lines)
        data, lines = self._raw[name]
        return data, lines, path

    def is_group(self, name: str) -> bool:
        data, _, _ = self._read(name)
        return "tasks" in data

    def group(self, name: str) -> GroupConfig:
        data, lines, path = self._read(name)
        return validate(GroupConfig, data, path, lines, name=name)

    def task(self, name: str, _chain: tuple[str, ...] = ()) -> TaskConfig:
        if name in _chain:
            raise ConfigError(f"task include loop: {' -> '.join((*_chain, name))}")
        data, lines, path = self._read(name)
        if "tasks" in data:
            raise ConfigError(f"{path}: {name!r} is a group, not a task")
        merged = dict(data)
        parent = data.get("include")
        if parent is not None:
            if not isinstance(parent, str):
                raise ConfigError(f"{path}:{lines.get(('include',), 1)}: include: must be a task name")
            base = self.task(parent, (*_chain, name)).model_dump(
                exclude={"name", "include", "description"}, exclude_none=True
            )
            own_cards = data.get("cards") or {}
            if not isinstance(own_cards, dict):
                raise ConfigError(f"{path}:{lines.get(('cards',), 1)}: cards: must be a mapping of keys to values")
            inherited = dict(base.get("cards", {}))
            if "sample" in own_cards or "first" in own_cards:  # one of the two replaces the other
                inherited.pop("sample", None)
                inherited.pop("first", None)
            cards = {**inherited, **own_cards}
            merged = {**base, **data, "cards": cards}
            merged.pop("include", None)
        return validate(TaskConfig, merged, path, lines, name=name)

    def resolve(self, names: list[str]) -> list[TaskConfig]:
        """Expand groups (recursively, loops refused) into tasks, in order, without repeats."""
        out: dict[str, TaskConfig] = {}

        def visit(n: str, chain: tuple[str, ...]) -> None:
            if n in chain:
                raise ConfigError(f"task group loop: {' -> '.join((*chain, n))}")
            if self.is_group(n):
                for child in self.group(n).tasks:
                    visit(child, (*chain, n))
            elif n not in out:
                out[n] = self.task(n)

        for n in names:
            visit(n, ())
        return list(out.values())
