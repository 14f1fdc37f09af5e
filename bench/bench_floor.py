"""The floor under bench_harness.py: the same call pattern with no harness at all.

A bare aiohttp loop plays `--dialogues` dialogues against the same loopback server (fixed latency):
each dialogue makes 2 x rounds sequential calls, then 7 judge calls at once. Whatever this takes
beyond (2 x rounds + 1) x latency is the cost of the machine (client and server CPU), not of
esc-bench; compare its ratio with bench_harness.py's "serving span" ratio.

    python bench/bench_floor.py --dialogues 200 --latency 0.25
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_harness import start_server_process  # noqa: E402


async def play(url: str, dialogues: int, rounds: int) -> float:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), trust_env=False) as session:

        async def post(model: str, messages: list[dict[str, str]]) -> str:
            body = json.dumps({"model": model, "messages": messages, "max_tokens": 64}).encode()
            async with session.post(f"{url}/chat/completions", data=body,
                                    headers={"Content-Type": "application/json"}) as resp:
                return json.loads(await resp.read())["choices"][0]["message"]["content"]

        async def dialogue(i: int) -> None:
            seeker = [{"role": "system", "content": f"Play the person on card {i}. " * 20},
                      {"role": "user", "content": "Hello, what is on your mind?"}]
            supporter = [{"role": "system", "content": "Be a kind listener."}]
            for _ in range(rounds):
                line = await post("seeker", seeker)
                seeker.append({"role": "assistant", "content": line})
                supporter.append({"role": "user", "content": line})
                reply = await post("sup", supporter)
                supporter.append({"role": "assistant", "content": reply})
                seeker.append({"role": "user", "content": reply})
            transcript = "\n".join(m["content"] for m in seeker)
            await asyncio.gather(*(
                post("judge", [{"role": "user", "content": f"Rubric {k}. " * 100 + transcript}]) for k in range(7)
            ))

        t0 = time.perf_counter()
        await asyncio.gather(*(dialogue(i) for i in range(dialogues)))
        return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dialogues", type=int, default=200)
    p.add_argument("--latency", type=float, default=0.25)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    proc, url = start_server_process(args.latency)
    try:
        wall = asyncio.run(play(url, args.dialogues, args.rounds))
    finally:
        proc.terminate()
        proc.wait(10)
    ideal = (2 * args.rounds + 1) * args.latency
    print(f"bare aiohttp, {args.dialogues} dialogues: {wall:.2f} s, ideal {ideal:.2f} s, ratio {wall / ideal:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
