"""Load on the studio: N concurrent clients on loopback for a bounded time against a server with tiny models.

A real server process (``python -m llmga serve``) runs a tiny random SD 1.5
painter from llmga.testing with a test brain that echoes the request as its
generation prompt (so every chat turn paints; ``--brain tiny-llava`` uses a
tiny random LLaVA instead). With ``--scale S`` the studio is scaled out instead:
S studio processes and ``--workers`` ``llmga worker`` processes on a throwaway
PostgreSQL and Redis (clients are spread over the studios). Each client loops,
alternating ``/v1/chat/completions`` and ``/v1/images/generations``, until the
time is up; a 429 (queue full) is counted as rejected and retried after 0.1 s.

Printed: requests served, rejected (429) and failed (anything else: a 5xx, no
answer), throughput, latency of served requests (p50, p95, max), the peak
memory of the studio process(es), and last ``ratio: p95/p50``: how evenly the
bounded FIFO queue shares the painters among clients (1.0 = every request
waits the same; large = some starve).
Run: python benchmarks/bench_serve_load.py --clients 8 --seconds 20
     python benchmarks/bench_serve_load.py --clients 50 --seconds 30 --scale 2 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from llmga.testing.servers import LlmgaProcess, PostgresServer, RedisServer

FACTORY = """
import torch
from llmga.assistant import Assistant
from llmga.painter.text_to_image import TextToImagePainter
from llmga.testing.doubles import EchoBrain
from llmga.settings import PaintSettings
from llmga.testing import build_tiny_llava, build_tiny_sd

def make():
    torch.set_num_threads({threads})
    painter = TextToImagePainter.load(build_tiny_sd(r"{root}/sd"), device="cpu")
    if "{brain}" == "tiny-llava":
        from llmga.brain import load_brain
        brain = load_brain(str(build_tiny_llava(r"{root}/llava")))
    else:
        brain = EchoBrain()
    return Assistant(brain, painter, paint=PaintSettings(steps={steps}, width={size}, height={size}))
"""


@contextlib.contextmanager
def studios(root: Path, args: argparse.Namespace) -> Iterator[list[LlmgaProcess]]:
    """The studio process(es) to load, ready (with their workers, PostgreSQL and Redis when scaled out)."""
    (root / "bench_factory.py").write_text(FACTORY.format(root=root, threads=args.threads, brain=args.brain,
                                                           steps=args.steps, size=args.size))
    common = ["--factory", "bench_factory:make", "--data-dir", root / "data"]
    servers, processes, front = [], [], []
    try:
        if args.scale:
            servers = [PostgresServer().start(), RedisServer().start()]
            common += ["--store", servers[0].url, "--broker", servers[1].url]
            processes += [LlmgaProcess(["worker", *common], path=[root], ready="llmga worker ", wait=False)
                          for _ in range(args.workers)]
        serve = ["serve", "--port", "0", "--no-web", *common, "--workers", 1 if args.scale else args.workers,
                 "--max-pending", args.max_pending]
        front += [LlmgaProcess(serve, path=[root], wait=False) for _ in range(args.scale or 1)]
        for process in processes + front:
            process.wait_ready(timeout=300)
        yield front
    finally:
        for process in processes + front:
            process.send()
        for process in processes + front:
            process.stop()
        for server in servers:
            server.close()


def client(url: str, index: int, deadline: float, results: dict, lock: threading.Lock) -> None:
    requests = [("/v1/chat/completions", {"messages": [{"role": "user", "content": f"a red fox number {index}"}]}),
                ("/v1/images/generations", {"prompt": f"a blue boat number {index}"})]
    with httpx.Client(base_url=url, timeout=120) as http:
        turn = 0
        while time.monotonic() < deadline:
            path, body = requests[turn % 2]
            start = time.perf_counter()
            try:
                status = http.post(path, json=body).status_code
            except httpx.HTTPError:
                status = -1
            elapsed = time.perf_counter() - start
            with lock:
                if status == 200:
                    results["latency"].append(elapsed)
                    turn += 1
                else:
                    results["rejected" if status == 429 else "failed"] += 1
            if status == 429:
                time.sleep(0.1)


def peak_memory_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB; 0 where /proc is absent."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-pending", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--brain", choices=("echo", "tiny-llava"), default="echo")
    parser.add_argument("--scale", type=int, default=0,
                        help="scale out: this many studio processes, --workers worker processes, PostgreSQL, Redis")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, studios(Path(tmp), args) as front:
        urls = [process.url for process in front]
        httpx.post(f"{urls[0]}/v1/images/generations", json={"prompt": "warm up"}, timeout=120)
        results = {"latency": [], "rejected": 0, "failed": 0}
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=client, args=(urls[i % len(urls)], i, deadline, results, lock))
                   for i in range(args.clients)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - start
        memory = sum(peak_memory_mb(process.pid) for process in front)
    latency = sorted(results["latency"])
    if len(latency) < 2:
        raise SystemExit(f"too few requests served ({len(latency)}); failed {results['failed']}")
    p50 = statistics.median(latency)
    p95 = latency[min(len(latency) - 1, round(0.95 * (len(latency) - 1)))]
    where = f"{args.scale} studio processes + " if args.scale else ""
    print(f"{args.clients} clients for {args.seconds:.0f} s, {where}{args.workers} worker(s), max {args.max_pending} "
          f"pending, tiny SD {args.steps} steps {args.size}x{args.size}, brain: {args.brain}")
    print(f"requests served: {len(latency)} ({len(latency) / wall:.1f}/s); rejected (429): {results['rejected']}; "
          f"errors: {results['failed']}")
    print(f"latency: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {latency[-1] * 1000:.0f} ms")
    print(f"studio peak memory: {memory:.0f} MB")
    print(f"ratio: {p95 / p50:.3f}")


if __name__ == "__main__":
    main()
