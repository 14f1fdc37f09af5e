"""How close does esc-bench get to the ideal wall time against a fixed-latency server?

Harness mode (default): start the loopback FakeOpenAI server with a fixed latency,
write temporary model configs (supporter, seeker, judge), a card file and a task,
run the REAL CLI as a subprocess and compare its wall time with the ideal
(2 x rounds + 1) x latency: turns are sequential, the 7 judge calls of a dialogue
run concurrently, and all dialogues run at once.

    python bench/bench_harness.py --dialogues 200 --latency 0.25 --backend openai

Direct mode: just the backend layer. N concurrent ManagedClient calls against the
server (in a separate process, so only client CPU is measured); prints wall time
and CPU per call for openai_http and litellm.

    python bench/bench_harness.py --direct --calls 2000 --backend both
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

BASE = (
    "I am a graduate student. My advisor criticised my thesis draft in front of the lab, "
    "and since then I cannot sleep and keep thinking I am not good enough."
)


# ---- harness mode ----------------------------------------------------------------------------
def _model_yaml(kind: str, name: str, url: str, concurrency: int, timeout: float) -> str:
    model = name if kind == "openai" else f"openai/{name}"
    return (
        f"backend: {kind}\nmodel: {model}\napi_base: {url}\n"
        f"max_concurrency: {concurrency}\ntimeout: {timeout}\nmax_retries: 3\n"
        "generation:\n  temperature: 0.0\n  max_tokens: 128\n"
    )


def write_inputs(tmp: Path, url: str, args: argparse.Namespace) -> tuple[Path, Path]:
    models, tasks = tmp / "model_configs", tmp / "tasks"
    models.mkdir()
    tasks.mkdir()
    for name in ("sup", "seeker", "judge"):
        (models / f"{name}.yaml").write_text(
            _model_yaml(args.backend, name, url, args.concurrency, args.timeout)
        )
    cards = [
        {"id": f"b{i:05d}", "base": f"{BASE} (card {i})", "language": "en", "source": "bench"}
        for i in range(args.dialogues)
    ]
    cards_path = tmp / "cards.json"
    cards_path.write_text(json.dumps(cards))
    (tasks / "benchtask.yaml").write_text(
        "description: bench harness task\nlanguage: en\nprotocol: esc-bench\n"
        f"cards:\n  source: {cards_path}\nsimulator: seeker\njudge: judge\nrounds: {args.rounds}\n"
    )
    return models, tasks


def cli_command() -> list[str]:
    exe = Path(sys.executable).parent / "esc-bench"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("esc-bench")
    return [found] if found else [sys.executable, "-m", "esc_bench.cli"]


def harness(args: argparse.Namespace) -> int:
    from tests.support.fake_openai import FakeOpenAI

    ideal = (2 * args.rounds + 1) * args.latency
    # A hang outlasts the per-attempt timeout, so a hung call costs one timeout and a retry.
    args.timeout = max(2.0, 8 * args.latency)
    with tempfile.TemporaryDirectory(prefix="esc-bench-harness-") as d, FakeOpenAI(
        latency=args.latency, fault_rate=args.fault_rate, fault_seed=1, hang_s=3 * args.timeout
    ) as srv:
        tmp = Path(d)
        models, tasks = write_inputs(tmp, srv.url, args)
        out = tmp / "run"
        prefix = cli_command()
        if args.profile:
            prefix = [sys.executable, "-m", "cProfile", "-o", str(Path(args.profile).resolve()), prefix[-1]]
            if prefix[-1] == "esc_bench.cli":
                prefix[-1:] = ["-m", "esc_bench.cli"]
        cmd = prefix + [
            "--models", "sup", "--tasks", "benchtask",
            "--model-configs", str(models), "--tasks-dir", str(tasks),
            "--output", str(out), "--no-cache", "--max-failures", "100%",
        ]  # fmt: skip
        env = dict(os.environ, ESC_BENCH_BACKOFF_BASE="0.05")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
        wall = time.perf_counter() - t0
        reqs = srv.requests
        faults = {k: n for k, n in srv.counts.items() if k != "ok"}
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
            print(f"CLI exit code {proc.returncode}", file=sys.stderr)
        by_model = collections.Counter(
            (r.body or {}).get("model", "?") for r in reqs if isinstance(r.body, dict)
        )
        n_ok = n_fail = n_scores = 0
        if (out / "dialogues.jsonl").exists():
            for line in (out / "dialogues.jsonl").read_text().splitlines():
                status = json.loads(line).get("status")
                n_ok += status == "ok"
                n_fail += status != "ok"
        if (out / "scores.jsonl").exists():
            n_scores = sum(1 for _ in (out / "scores.jsonl").open())
        span = (max(r.time for r in reqs) - min(r.time for r in reqs) + args.latency) if reqs else 0.0

    print(f"backend            {args.backend}")
    print(f"dialogues          {args.dialogues} ({n_ok} ok, {n_fail} failed), {n_scores} scores")
    print(f"requests           {len(reqs)}  {dict(by_model)}")
    print(f"latency            {args.latency:.3f} s, rounds {args.rounds}, fault rate {args.fault_rate}")
    if args.fault_rate:
        print(f"faults             {dict(faults)} (timeout {args.timeout:g} s per attempt)")
    print(f"ideal              {ideal:.2f} s  = (2 x {args.rounds} + 1) x {args.latency}")
    print(f"wall (CLI process) {wall:.2f} s  ratio {wall / ideal:.2f}")
    print(f"serving span       {span:.2f} s  ratio {span / ideal:.2f}  (first to last request)")
    return proc.returncode


# ---- direct mode -------------------------------------------------------------------------------
def start_server_process(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_openai", "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("the fake server did not start")
    return proc, url


async def measure(kind: str, url: str, calls: int, concurrency: int) -> dict[str, float]:
    from esc_bench.backends.base import ChatRequest
    from esc_bench.backends.managed import ManagedClient
    from esc_bench.backends.registry import make_backend
    from esc_bench.config.schema import ModelConfig

    model = "sup" if kind == "openai" else "openai/sup"
    cfg = ModelConfig(
        name="sup", backend=kind, model=model, api_base=url, max_concurrency=concurrency,
        timeout=60, generation={"temperature": 0.0, "max_tokens": 128},
    )  # fmt: skip
    mb = ManagedClient(make_backend(cfg), None, backoff_base=0.05, seed=0)

    def request(i: int) -> ChatRequest:
        msgs = [
            {"role": "system", "content": "You are a supportive listener."},
            {"role": "user", "content": f"{BASE} ({i})"},
        ]
        return ChatRequest(msgs)

    try:
        await asyncio.gather(*(mb.chat(request(-i - 1)) for i in range(min(200, calls))))  # warm-up
        c0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(mb.chat(request(i)) for i in range(calls)))
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    finally:
        await mb.aclose()
    return {"wall": wall, "cpu": cpu, "cpu_per_call_ms": 1000 * cpu / calls, "calls_per_s": calls / wall}


def direct(args: argparse.Namespace) -> int:
    kinds = ["openai", "litellm"] if args.backend == "both" else [args.backend]
    proc, url = start_server_process(args.latency)
    try:
        for kind in kinds:
            r = asyncio.run(measure(kind, url, args.calls, args.concurrency))
            print(
                f"{kind:8s} {args.calls} calls (concurrency {args.concurrency}, latency {args.latency} s): "
                f"wall {r['wall']:.2f} s, {r['calls_per_s']:.0f} calls/s, "
                f"client CPU {r['cpu']:.2f} s = {r['cpu_per_call_ms']:.2f} ms/call"
            )
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--direct", action="store_true", help="measure only the backend layer")
    p.add_argument("--backend", choices=["openai", "litellm", "both"], default=None)
    p.add_argument("--dialogues", type=int, default=200)
    p.add_argument("--latency", type=float, default=None, help="server latency (s); harness 0.25, direct 0")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=1000, help="max_concurrency of every model")
    p.add_argument("--fault-rate", type=float, default=0.0, help="harness: injected fault rate")
    p.add_argument("--profile", metavar="FILE", help="harness: run the CLI under cProfile, stats to FILE")
    p.add_argument("--calls", type=int, default=2000, help="direct: number of calls")
    args = p.parse_args(argv)
    if args.direct:
        args.backend = args.backend or "both"
        args.latency = 0.0 if args.latency is None else args.latency
        return direct(args)
    args.backend = args.backend or "openai"
    if args.backend == "both":
        p.error("--backend both is for --direct")
    args.latency = 0.25 if args.latency is None else args.latency
    return harness(args)


if __name__ == "__main__":
    sys.exit(main())
