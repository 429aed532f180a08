"""Load on the studio: N concurrent clients on loopback for a bounded time against a server with tiny models.

A real server process (``python -m llmga.serve``) runs a tiny random SD 1.5
painter from llmga.testing with a test brain that echoes the request as its
generation prompt (so every chat turn paints; ``--brain tiny-llava`` uses a
tiny random LLaVA instead). Each client loops, alternating
``/v1/chat/completions`` and ``/v1/images/generations``, until the time is
up; a 429 (queue full) is counted as rejected and retried after 0.1 s.

Printed: requests served, rejected (429) and failed (anything else), throughput,
latency of served requests (p50, p95, max), the server's peak memory, and last
``ratio: p95/p50``: how evenly the bounded FIFO queue shares the painter
among clients (1.0 = every request waits the same; large = some starve).
Run: python benchmarks/bench_serve_load.py --clients 8 --seconds 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

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


def start_server(root: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    (root / "bench_factory.py").write_text(FACTORY.format(root=root, threads=args.threads, brain=args.brain,
                                                           steps=args.steps, size=args.size))
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "llmga.serve", "--factory", "bench_factory:make", "--port", "0",
         "--data-dir", str(root / "data"), "--workers", str(args.workers), "--max-pending", str(args.max_pending),
         "--no-web"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in process.stdout:
        if line.startswith("llmga studio: "):
            return process, line.split()[2]
    raise SystemExit(f"the server did not start (exit code {process.wait()})")


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_server(Path(tmp), args)
        try:
            httpx.post(f"{url}/v1/images/generations", json={"prompt": "warm up"}, timeout=120)
            results = {"latency": [], "rejected": 0, "failed": 0}
            lock = threading.Lock()
            deadline = time.monotonic() + args.seconds
            threads = [threading.Thread(target=client, args=(url, i, deadline, results, lock))
                       for i in range(args.clients)]
            start = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.monotonic() - start
            memory = peak_memory_mb(process.pid)
        finally:
            process.terminate()
            process.wait(30)
    latency = sorted(results["latency"])
    if len(latency) < 2:
        raise SystemExit(f"too few requests served ({len(latency)}); failed {results['failed']}")
    p50 = statistics.median(latency)
    p95 = latency[min(len(latency) - 1, round(0.95 * (len(latency) - 1)))]
    print(f"{args.clients} clients for {args.seconds:.0f} s, {args.workers} worker(s), max {args.max_pending} pending, "
          f"tiny SD {args.steps} steps {args.size}x{args.size}, brain: {args.brain}")
    print(f"requests served: {len(latency)} ({len(latency) / wall:.1f}/s); rejected (429): {results['rejected']}; "
          f"errors: {results['failed']}")
    print(f"latency: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {latency[-1] * 1000:.0f} ms")
    print(f"server peak memory: {memory:.0f} MB")
    print(f"ratio: {p95 / p50:.3f}")


if __name__ == "__main__":
    main()
