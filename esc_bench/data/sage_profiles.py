"""SAGE's seeker profiles: downloaded at run time at the pinned commit, never bundled.

The file (`SAGE/profile/simulator_profile_withfirsttalk.jsonl`, 100 Chinese profiles) has one
JSON object a line: `id`, `player` (who the seeker is), `scene` (background story, with the
hidden topic), `main_cha` (main character trait), `cha_group` (a list of traits), `task` (what
the seeker wants from the talk) and `first_talk` (the seeker's opening line). A malformed line
is one error naming the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from esc_bench.data.upstream import SAGE, fetch_pinned
from esc_bench.errors import DataError, decode_text, parse_json
from esc_bench.records import Card

PROFILES_PATH = "SAGE/profile/simulator_profile_withfirsttalk.jsonl"

class SageProfile(BaseModel):
    """One sentient-agent profile: who the seeker is, the scene (with its hidden topic), its goal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    player: str = Field(min_length=1)
    scene: str = Field(min_length=1)
    main_cha: str
    cha_group: tuple[str, ...] = ()
    task: str = Field(min_length=1)
    first_talk: str = Field(min_length=1)


_parsed: dict[tuple[str, int, int], tuple[SageProfile, ...]] = {}


def parse_profiles(data: bytes, label: str) -> list[SageProfile]:
    """Parse a profile file's bytes (`label` names it in errors): JSONL, unique ids."""
    text = decode_text(data, label)
    profiles: list[SageProfile] = []
    first_at: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        item: Any = parse_json(line, label, line=n)
        if not isinstance(item, dict):
            raise DataError(f"{label}:{n}: a profile must be a JSON object, got {type(item).__name__}")
        try:
            profile = SageProfile.model_validate(item)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "profile"
            raise DataError(f"{label}:{n}: field {field!r}: {err['msg']}") from None
        if profile.id in first_at:
            raise DataError(f"{label}:{n}: duplicate profile id {profile.id!r} (first at line {first_at[profile.id]})")
        first_at[profile.id] = n
        profiles.append(profile)
    if not profiles:
        raise DataError(f"{label}: no profiles in the file")
    return profiles


def load_profiles(path: Path | None = None) -> list[SageProfile]:
    """The profiles of `path`, or SAGE's own (pinned download, sha256-checked, cached)."""
    path = Path(path) if path is not None else fetch_pinned(PROFILES_PATH, SAGE)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _parsed:
            _parsed[key] = tuple(parse_profiles(path.read_bytes(), str(path)))
    except FileNotFoundError:
        raise DataError(f"profile file {path} not found") from None
    except OSError as e:
        raise DataError(f"cannot read profile file {path}: {e.strerror or e}") from None
    return list(_parsed[key])


def profile_text(profile: SageProfile) -> str:
    """The profile as the seeker reads it (section labels are esc-bench's own); the opening line is
    included so that a changed profile, opening line included, changes the card's digest."""
    traits = "、".join(profile.cha_group)
    character = f"{profile.main_cha}（{traits}）" if traits else profile.main_cha
    return (
        f"{profile.player.strip()}\n\n{profile.scene.strip()}\n\n"
        f"## 性格类型\n{character}\n\n"
        f"## 你想从这次谈话中得到的（藏在心里，不要直接说出来）\n{profile.task.strip()}\n\n"
        f"## 你的开场白\n{profile.first_talk.strip()}\n"
    )


def profile_card(profile: SageProfile) -> Card:
    """A profile as a card: the profile text, its opening line, the character type as category."""
    return Card(
        id=profile.id, base=profile_text(profile), language="zh", res=profile.main_cha or None,
        source="SAGE", opening=profile.first_talk,
    )
