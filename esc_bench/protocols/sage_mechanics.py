"""The sentient-agent protocol's rules as pure functions: emotion, endings, score and metrics.

The seeker starts at emotion 40 on a 0-100 scale. After each supporter reply it reports a change
in [-10, +10]; the emotion moves by it and stays within 0-100. The dialogue ends when the emotion
reaches 100 (success) or drops below 10 (failure), when the seeker says goodbye, or once the
supporter has replied `max_replies` times (10); as in SAGE's released loop, the last of those
replies is not rated. A dialogue's score is its final emotion.

A trajectory is the emotion at each seeker turn: index 0 is the opening line (40), index t the
emotion after the seeker felt the t-th reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from esc_bench.analysis.stats import mean_trajectory

START_EMOTION = 40
MIN_EMOTION = 0
MAX_EMOTION = 100
MAX_CHANGE = 10
SUCCESS_AT = 100  # final emotion >= this: success
FAILURE_BELOW = 10  # final emotion < this: failure
MAX_REPLIES = 10

EndReason = Literal["success", "failure", "goodbye", "rounds"]
OUTCOMES: tuple[str, ...] = ("success", "failure")


def clamp_change(change: int) -> int:
    """A change bounded to [-MAX_CHANGE, +MAX_CHANGE]."""
    return max(-MAX_CHANGE, min(MAX_CHANGE, int(change)))


def apply_change(emotion: int, change: int) -> int:
    """The emotion after a (bounded) change, kept within MIN_EMOTION..MAX_EMOTION."""
    return max(MIN_EMOTION, min(MAX_EMOTION, int(emotion) + clamp_change(change)))


def emotion_end(emotion: int) -> EndReason | None:
    """'success' at >= 100, 'failure' below 10, else None: the dialogue goes on."""
    if emotion >= SUCCESS_AT:
        return "success"
    if emotion < FAILURE_BELOW:
        return "failure"
    return None


def end_after_turn(emotion: int, goodbye: bool) -> EndReason | None:
    """Why the dialogue ends after a seeker turn (the emotion's verdict first), or None."""
    return emotion_end(emotion) or ("goodbye" if goodbye else None)


def reply_cap_reached(replies: int, max_replies: int = MAX_REPLIES) -> bool:
    """True once the supporter has replied `max_replies` times: the dialogue ends unrated."""
    return replies >= max_replies


def outcome(final_emotion: float) -> Literal["success", "failure"] | None:
    """The outcome a final emotion counts as (None: neither)."""
    if final_emotion >= SUCCESS_AT:
        return "success"
    if final_emotion < FAILURE_BELOW:
        return "failure"
    return None


@dataclass(frozen=True)
class SageSummary:
    """The protocol's metrics over a set of dialogues (one model on one task)."""

    n: int
    mean: float | None  # mean final emotion
    ci95: tuple[float, float] | None  # bootstrap 95% CI of the mean
    success: int  # final emotion >= 100
    failure: int  # final emotion < 10
    trajectory: tuple[float, ...]  # mean emotion per seeker turn; an ended dialogue keeps its last value
    active: tuple[int, ...]  # dialogues still going at each turn


def summarize(
    final_emotions: Sequence[float], trajectories: Sequence[Sequence[float]] = (), *, seed: int = 0
) -> SageSummary:
    """Mean final emotion with its bootstrap 95% CI, success and failure counts, n, mean trajectory."""
    from esc_bench.analysis.stats import bootstrap_mean_ci

    finals = [float(x) for x in final_emotions]
    n = len(finals)
    ci = bootstrap_mean_ci(finals, seed=seed) if n else None
    traj, active = mean_trajectory(trajectories)
    return SageSummary(
        n=n,
        mean=round(sum(finals) / n, 4) if n else None,
        ci95=(round(ci[0], 4), round(ci[1], 4)) if ci else None,
        success=sum(1 for x in finals if outcome(x) == "success"),
        failure=sum(1 for x in finals if outcome(x) == "failure"),
        trajectory=traj,
        active=active,
    )
