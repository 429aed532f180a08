"""Memory under attack: a stream of hostile requests against a real studio, its peak memory over its idle memory.

A real server process (``python -m llmga serve``) runs a tiny random SD 1.5
painter with a test brain that echoes the request (as bench_serve_load.py).
After a warm-up its resident memory is read (idle) and its peak is reset
(``/proc/PID/clear_refs``); then ``--clients`` clients send, for ``--seconds``,
requests drawn in turn from the hostile kinds below, while ``--slow``
connections send their requests a byte at a time:

- images whose header claims a thin, long shape (1 x 16,000,000) or a
  decompression bomb (100,000 x 100,000), in a few hundred bytes;
- a real 4096 x 4096 PNG (allowed: it is decoded, within the memory budget),
  as a chat image and as an edit with a mask of that size;
- chats carrying 1000 earlier exchanges (refused) and 100 (accepted: bounded,
  imported at once), a 10,000-word message;
- JSON bodies of 39 MB (over the JSON limit) and 22 MB (under it: parsed, then
  refused); a painting that would take hours.

Printed: requests per kind and their answers (a 5xx is a failure), idle and
peak memory, and last ``ratio: peak/idle`` (target <= 1.5).
Run: python benchmarks/bench_hostile.py --clients 8 --seconds 20
"""

from __future__ import annotations

import argparse
import base64
import collections
import io
import socket
import struct
import tempfile
import threading
import time
import zlib
from pathlib import Path

import httpx
from PIL import Image

from llmga.testing.servers import LlmgaProcess

FACTORY = """
import torch
from llmga.assistant import Assistant
from llmga.painter.text_to_image import TextToImagePainter
from llmga.settings import PaintSettings
from llmga.testing import build_tiny_sd
from llmga.testing.doubles import EchoBrain

def make():
    torch.set_num_threads(1)
    painter = TextToImagePainter.load(build_tiny_sd(r"{root}/sd"), device="cpu")
    return Assistant(EchoBrain(), painter, paint=PaintSettings(steps=2, width=64, height=64))
"""


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def png(size: tuple[int, int], mode: str = "RGB", colour: object = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def chat(text: str = "a fox", image: bytes | None = None, earlier: int = 0) -> dict:
    content = text if image is None else [{"type": "text", "text": text},
                                          {"type": "image_url", "image_url": {"url": data_url(image)}}]
    messages = [m for i in range(earlier) for m in ({"role": "user", "content": f"a fox number {i}"},
                                                    {"role": "assistant", "content": "Here it is."})]
    return {"json": {"messages": [*messages, {"role": "user", "content": content}]}}


def hostile_requests() -> dict[str, tuple[str, dict]]:
    """Each kind of hostile request: (path, httpx keyword arguments)."""
    big = png((4096, 4096))
    return {
        "thin long image": ("/v1/chat/completions", chat(image=png_claiming(1, 16_000_000))),
        "decompression bomb": ("/v1/chat/completions", chat(image=png_claiming(100_000, 100_000))),
        "4096x4096 image": ("/v1/chat/completions", chat("what is this?", image=big)),
        "4096x4096 edit and mask": ("/v1/images/edits", {
            "data": {"prompt": "a fountain"},
            "files": {"image": ("a.png", big, "image/png"),
                      "mask": ("m.png", png((4096, 4096), "L", 255), "image/png")}}),
        "1000 earlier exchanges": ("/v1/chat/completions", chat(earlier=1000)),
        "100 earlier exchanges": ("/v1/chat/completions", chat(earlier=100)),
        "10,000-word message": ("/v1/chat/completions", chat("fox " * 10_000)),
        "39 MB JSON body": ("/v1/images/generations", {"json": {"prompt": "a", "llmga": {
            "source_prompt": "x" * (39 * 2**20)}}}),
        "22 MB JSON body": ("/v1/images/generations", {"json": {"prompt": "a", "llmga": {
            "source_prompt": "x" * (22 * 2**20)}}}),
        "hour-long painting": ("/v1/images/generations", {"json": {"prompt": "a", "n": 4, "size": "2048x2048",
                                                                   "llmga": {"paint": {"steps": 150}}}}),
    }


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit("/proc is needed to read the server's memory")


def client(url: str, kinds: dict, deadline: float, index: int, counts: dict, lock: threading.Lock) -> None:
    names = list(kinds)
    with httpx.Client(base_url=url, timeout=120) as http:
        turn = index
        while time.monotonic() < deadline:
            name = names[turn % len(names)]
            path, kwargs = kinds[name]
            try:
                status = http.post(path, **kwargs).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            with lock:
                counts[name][status] += 1
            turn += 1


def slowloris(port: int, deadline: float, connections: int, cut: list) -> None:
    """Connections that send a request head a byte at a time."""
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
    while time.monotonic() < deadline:
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
        for byte in head * 100:
            if time.monotonic() > deadline or not socks:
                break
            for sock in list(socks):
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    socks.remove(sock)
                    cut.append(1)
            time.sleep(0.5)
        for sock in socks:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--slow", type=int, default=50, help="connections that send a byte every half second")
    parser.add_argument("--only", help="send only the kinds whose name contains this (e.g. 'JSON')")
    parser.add_argument("--serve", nargs="*", default=[], help="more options for llmga serve (e.g. --max-work 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bench_factory.py").write_text(FACTORY.format(root=root))
        server = LlmgaProcess(["serve", "--factory", "bench_factory:make", "--port", "0", "--no-web", "--data-dir",
                               root / "data", "--read-timeout", "10", *args.serve], path=[root])
        try:
            for _ in range(3):  # warm up: a generation, an image decoded, a history imported
                for path, kwargs in (("/v1/images/generations", {"json": {"prompt": "warm up"}}),
                                     ("/v1/chat/completions", chat("what is this?", image=png((512, 512)), earlier=5))):
                    httpx.post(f"{server.url}{path}", timeout=120, **kwargs)
            idle = memory_mb(server.pid, "VmRSS")
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
            kinds = {k: v for k, v in hostile_requests().items() if not args.only or args.only in k}
            counts: dict = collections.defaultdict(collections.Counter)
            lock, cut = threading.Lock(), []
            deadline = time.monotonic() + args.seconds
            port = int(server.url.rsplit(":", 1)[1])
            threads = [threading.Thread(target=client, args=(server.url, kinds, deadline, i, counts, lock))
                       for i in range(args.clients)]
            threads.append(threading.Thread(target=slowloris, args=(port, deadline, args.slow, cut)))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            peak = memory_mb(server.pid, "VmHWM")
            alive = httpx.get(f"{server.url}/health", timeout=30).status_code
        finally:
            server.stop()
    failures = sum(n for answers in counts.values() for status, n in answers.items()
                   if not isinstance(status, int) or status >= 500)
    print(f"{args.clients} clients for {args.seconds:.0f} s, {args.slow} slow connections (cut off: {len(cut)})")
    for name, answers in counts.items():
        print(f"  {name}: " + ", ".join(f"{status} x{n}" for status, n in sorted(answers.items(), key=str)))
    print(f"server errors (5xx or no answer): {failures}; /health afterwards: {alive}")
    print(f"memory: idle {idle:.0f} MB, peak {peak:.0f} MB")
    print(f"ratio: {peak / idle:.3f}")


if __name__ == "__main__":
    main()
