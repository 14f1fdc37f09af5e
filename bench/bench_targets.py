"""The speed targets, measured the way a user runs esc-bench: raw model strings, default settings.

1. Throughput: `--dialogues` dialogues (default 200) × 17 calls (5 rounds: 10 sequential turns, then
   7 judge calls at once) at `--latency` (default 0.5 s) against the loopback OpenAI-compatible
   server, through the real CLI in a subprocess with RAW model strings
   (`--models openai/sup --simulator openai/seeker --judge openai/judge`, the server's URL in
   OPENAI_BASE_URL). Reported: (wall − start-up) / ideal, where start-up is the time from launching
   the CLI to its first dialogue request (Python start, imports, planning, the preflight's probes)
   and ideal = (2 × rounds + 1) × latency; and its ratio to bench_floor.py (a bare aiohttp client
   making the same calls, no harness) measured in the same invocation.
   Targets: ≤ 1.25 of ideal, within 5% of the floor.
2. One dialogue: the wall time of a whole one-dialogue CLI run at zero latency (start to exit).
   Target: < 1.5 s.

    python bench/bench_targets.py                  # both, 3 times each
    python bench/bench_targets.py --repeat 5 --dialogues 200 --latency 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_floor import play  # noqa: E402
from bench.bench_harness import BASE, cli_command, start_server_process  # noqa: E402
from tests.support.fake_openai import FakeOpenAI  # noqa: E402


def write_task(tmp: Path, dialogues: int, rounds: int) -> Path:
    tasks = tmp / "tasks"
    tasks.mkdir(exist_ok=True)
    cards = [{"id": f"b{i:05d}", "base": f"{BASE} (card {i})", "language": "en", "source": "bench"}
             for i in range(dialogues)]
    (tmp / "cards.json").write_text(json.dumps(cards))
    (tasks / "benchtask.yaml").write_text(
        f"description: speed targets\nlanguage: en\nprotocol: esc-bench\ncards:\n  source: {tmp / 'cards.json'}\n"
        f"rounds: {rounds}\n"
    )
    return tasks


def cli_run(srv: FakeOpenAI, dialogues: int, rounds: int) -> tuple[float, float | None, int]:
    """(wall, launch → first dialogue request, exit code) of one CLI run with raw model strings."""
    with tempfile.TemporaryDirectory(prefix="esc-bench-targets-") as d:
        tmp = Path(d)
        tasks = write_task(tmp, dialogues, rounds)
        cmd = cli_command() + [
            "--models", "openai/sup", "--simulator", "openai/seeker", "--judge", "openai/judge",
            "--tasks", "benchtask", "--tasks-dir", str(tasks), "--output", str(tmp / "run"), "--no-cache",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_API_BASE")}
        env["OPENAI_BASE_URL"] = srv.url
        srv.reset()
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp, check=False)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
        work = [r.time for r in srv.requests if isinstance(r.body, dict) and r.body.get("max_tokens") != 1]
        first = (min(work) - t0) if work else None
        return wall, first, proc.returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dialogues", type=int, default=200)
    p.add_argument("--latency", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip", choices=["throughput", "one"], help="leave one measure out")
    args = p.parse_args(argv)
    ideal = (2 * args.rounds + 1) * args.latency
    ok = True

    if args.skip != "throughput":
        print(f"throughput: {args.dialogues} dialogues x {2 * args.rounds + 7} calls at {args.latency} s, "
              f"raw model strings; ideal {ideal:.2f} s")
        ratios, floors, rels = [], [], []
        for i in range(args.repeat):
            proc, url = start_server_process(args.latency)
            try:
                floor = asyncio.run(play(url, args.dialogues, args.rounds))
            finally:
                proc.terminate()
                proc.wait(10)
            with FakeOpenAI(latency=args.latency) as srv:
                wall, startup, rc = cli_run(srv, args.dialogues, args.rounds)
            if rc != 0 or startup is None:
                print(f"  run {i + 1}: the CLI failed (exit {rc})")
                ok = False
                continue
            ratio, floor_ratio = (wall - startup) / ideal, floor / ideal
            ratios.append(ratio)
            floors.append(floor_ratio)
            rels.append(ratio / floor_ratio)
            print(f"  run {i + 1}: wall {wall:.2f} s, start-up {startup:.2f} s, (wall - start-up)/ideal {ratio:.3f}; "
                  f"floor {floor:.2f} s = {floor_ratio:.3f} of ideal; esc-bench/floor {ratio / floor_ratio:.3f}")
        if ratios:
            print(f"  range: (wall - start-up)/ideal {min(ratios):.3f}-{max(ratios):.3f} (target <= 1.25); "
                  f"floor {min(floors):.3f}-{max(floors):.3f}; esc-bench/floor {min(rels):.3f}-{max(rels):.3f} "
                  "(target <= 1.05)")

    if args.skip != "one":
        walls = []
        with FakeOpenAI(latency=0.0) as srv:
            for _ in range(args.repeat):
                wall, _, rc = cli_run(srv, 1, args.rounds)
                ok = ok and rc == 0
                walls.append(wall)
        print(f"one dialogue (zero latency, raw model strings, whole CLI run): "
              f"{min(walls):.2f}-{max(walls):.2f} s, median {statistics.median(walls):.2f} s (target < 1.5 s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
