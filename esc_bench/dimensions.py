"""The seven ESC-Eval dimensions: paper names, upstream keys, report order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dimension:
    name: str  # the paper's name, used in every report and record
    key: str  # upstream code key (ESC-RANK adapter folder, upstream score files)


# Report order: the paper's table order.
DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("fluency", "fluency"),
    Dimension("expression", "diversity"),
    Dimension("empathy", "empathic"),
    Dimension("information", "suggestion"),
    Dimension("skillful", "tech"),
    Dimension("humanoid", "human"),
    Dimension("overall", "overall"),
)

# The order of the upstream rubric lists (score.py prompt_EN / prompt_ZH, key_list).
UPSTREAM_KEY_ORDER: tuple[str, ...] = (
    "fluency", "diversity", "empathic", "suggestion", "human", "tech", "overall",
)

DIMENSION_NAMES: tuple[str, ...] = tuple(d.name for d in DIMENSIONS)
BY_NAME: dict[str, Dimension] = {d.name: d for d in DIMENSIONS}
BY_KEY: dict[str, Dimension] = {d.key: d for d in DIMENSIONS}

SCORE_MIN, SCORE_MAX = 0, 4
SCALE_100 = 25  # paper's 0-100 scale = score x 25
