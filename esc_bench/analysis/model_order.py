"""The one order in which a report lists its models: every table, breakdown, chart and list of
dialogues uses it, so a model keeps its place (and its colour) from one to the next.

A task's leaderboard ranks its models by their average (or, for a protocol without one, its
first metric: `LeaderboardEntry.headline`), best first (unscored last, ties by name).
The order is by place on those leaderboards: with one task, the leaderboard's own order; with
several, by the mean of a model's places over the tasks it played (places, not scores, so tasks
on different scales weigh alike); ties by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from esc_bench.records import LeaderboardEntry

T = TypeVar("T")


def _task_ranking(entries: list[LeaderboardEntry]) -> list[str]:
    def key(e: LeaderboardEntry) -> tuple[bool, float, str]:
        avg = e.headline
        return (avg is None, -(avg or 0.0), e.model)

    return [e.model for e in sorted(entries, key=key)]


def model_order(entries: Iterable[LeaderboardEntry]) -> list[str]:
    """Every model of the entries, in the report's order (see the module docstring)."""
    by_task: dict[str, list[LeaderboardEntry]] = {}
    for e in entries:
        by_task.setdefault(e.task, []).append(e)
    places: dict[str, list[int]] = {}
    for task_entries in by_task.values():
        for place, model in enumerate(_task_ranking(task_entries)):
            places.setdefault(model, []).append(place)
    return sorted(places, key=lambda m: (sum(places[m]) / len(places[m]), m))


def in_order(items: Iterable[T], order: list[str], model: Callable[[T], str]) -> list[T]:
    """The items sorted by their model's place in `order` (a model not in it after, by name);
    items of one model keep their relative order."""
    place = {m: i for i, m in enumerate(order)}
    return sorted(items, key=lambda x: (place.get(model(x), len(place)), "" if model(x) in place else model(x)))
