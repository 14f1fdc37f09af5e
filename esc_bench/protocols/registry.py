"""Protocols by name: the two shipped rubric protocols, protocol YAML files, and registered plugins.

A new protocol plugs in with `register("name", factory)` (a factory gets the task file's folder
and returns a ProtocolPlugin); a task then names it with `protocol: name`. Installed packages
can also offer one through the `esc_bench.protocols` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from esc_bench.errors import ConfigError
from esc_bench.protocols.base import ProtocolPlugin

Factory = Callable[[Path | None], ProtocolPlugin]
_registry: dict[str, Factory] = {}
_entry_points_loaded = False


def register(name: str, factory: Factory) -> None:
    """Make `protocol: name` in a task resolve to `factory(task_folder)`."""
    _registry[name] = factory


def unregister(name: str) -> None:
    _registry.pop(name, None)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    from esc_bench.protocols.sage import factory as sage_factory

    _registry.setdefault("sage", sage_factory)  # built in: the sentient-agent protocol

    for ep in entry_points(group="esc_bench.protocols"):
        _registry.setdefault(ep.name, ep.load())


def known_protocols() -> list[str]:
    from esc_bench.data.protocols import KNOWN_PROTOCOLS

    _load_entry_points()
    return list(dict.fromkeys([*KNOWN_PROTOCOLS, *_registry]))


def get_protocol(name: str, base_dir: Path | None = None) -> ProtocolPlugin:
    """The plugin a task's `protocol:` names: registered first, then esc-eval / esc-bench / a YAML path."""
    from esc_bench.data.protocols import KNOWN_PROTOCOLS, load_protocol
    from esc_bench.protocols.rubric import RubricProtocol

    if name not in KNOWN_PROTOCOLS and not name.lower().endswith((".yaml", ".yml")):
        _load_entry_points()
        if name in _registry:
            return _registry[name](base_dir)
        raise ConfigError(
            f"unknown protocol {name!r}; known: {', '.join(known_protocols())}, or a path to a .yaml/.yml file"
        )
    return RubricProtocol(lambda: load_protocol(name, base_dir=base_dir))
