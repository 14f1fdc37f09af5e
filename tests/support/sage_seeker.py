"""A scripted sentient seeker for the loopback server: answers the sage protocol's calls in its format.

The script is read from the card text (the profile the seeker plays), a marker `SCRIPT:<kind>`:
  up      every reply +10 (40 -> 100: success after 6 rated replies)
  down    every reply -10 (40 -> 0 <10: failure after 4 rated replies)
  bye     +0, and a goodbye on the second rated reply
  flat    +0 forever (the 10-reply cap ends it)
  bad     the feel call always answers prose (re-asked, then the turn fails)
  badonce the feel call answers prose once per turn, then well (re-asked, then fine)
Other calls (the supporter) get the server's default reply.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from typing import Any

from tests.support.fake_openai import default_reply

_SCRIPT = re.compile(r"SCRIPT:(\w+)")


def _system(body: dict[str, Any]) -> str:
    msgs = body.get("messages") or []
    return str(msgs[0].get("content", "")) if msgs and msgs[0].get("role") == "system" else ""


def _rated(body: dict[str, Any]) -> int:
    """How many supporter replies the seeker has felt before this call (lines of the other side)."""
    user = str((body.get("messages") or [{}])[-1].get("content", ""))
    return sum(1 for line in user.splitlines() if line.startswith(("Them:", "对方:")))


class SageSeeker:
    """`FakeOpenAI(reply=SageSeeker())`: counts how often it saw each feel request (a re-ask
    sends the same messages again: only the response cache tells the samples apart)."""

    def __init__(self) -> None:
        self.seen: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        return self.reply(body)

    def reply(self, body: dict[str, Any]) -> str:
        system = _system(body)
        m = _SCRIPT.search(system)
        if m is None or ('"line"' not in system and '"thoughts"' not in system):
            return default_reply(body)
        kind = m.group(1)
        if '"thoughts"' in system:
            with self._lock:
                key = json.dumps(body.get("messages"), sort_keys=True)
                self.seen[key] += 1
                first = self.seen[key] == 1
            if kind == "bad" or (kind == "badonce" and first):
                return "I feel a bit better, maybe +3."
            change = {"up": 10, "down": -10}.get(kind, 0)
            return json.dumps({"thoughts": f"({kind}) they said something.", "change": change})
        if '"goodbye"' in system:  # speak
            n = _rated(body)
            goodbye = kind == "bye" and n >= 2
            return json.dumps({"line": f"({kind}) line {n}" + (" bye" if goodbye else ""), "goodbye": goodbye})
        return json.dumps({"line": f"({kind}) hello, I need to talk."})  # opening
