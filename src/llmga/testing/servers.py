"""Throwaway servers on loopback, for tests and benchmarks of the studio: PostgreSQL, Redis and llmga itself.

:class:`PostgresServer` makes a cluster in a temporary folder (``initdb``, run as
the ``postgres`` user when this process is root, as PostgreSQL refuses to run
as root) and serves it on a free port with ``pg_ctl``; :class:`RedisServer`
runs ``redis-server`` on a free port with an append-only file, so queued jobs
survive its restart, as they would in production. Both can be stopped and
started again on the same data (to test outages), and both raise
:class:`ServerMissing` when the program is not installed (``apt-get install
postgresql redis-server``). :class:`LlmgaProcess` runs ``python -m llmga …``
(``serve``, ``worker``) in the background and waits until it says it is ready.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path


class ServerMissing(RuntimeError):
    """The server program is not installed on this machine."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _program(name: str, pattern: str = "") -> str:
    found = shutil.which(name) or max(glob.glob(pattern) if pattern else [], default=None)
    if not found:
        raise ServerMissing(f"{name} is not installed (apt-get install postgresql redis-server)")
    return found


class PostgresServer:
    """A PostgreSQL cluster of its own, on 127.0.0.1 at a free port; ``url`` reaches its ``postgres`` database."""

    def __init__(self) -> None:
        self.initdb = _program("initdb", "/usr/lib/postgresql/*/bin/initdb")
        self.pg_ctl = str(Path(self.initdb).with_name("pg_ctl"))
        self.root = Path(tempfile.mkdtemp(prefix="llmga-pg-"))
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run(self.initdb, "-D", str(self.root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")

    def _run(self, *args: str) -> None:
        command = ["runuser", "-u", self.user, "--", *args] if self.user else list(args)
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)

    def start(self) -> PostgresServer:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(self.pg_ctl, "-D", str(self.root / "data"), "-o", options, "-l", str(self.root / "log"), "-w",
                  "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(self.pg_ctl, "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """``redis-server`` on 127.0.0.1 at a free port, with an append-only file in its own folder."""

    def __init__(self) -> None:
        self.program = _program("redis-server")
        self.root = Path(tempfile.mkdtemp(prefix="llmga-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.program, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # redis writes its append-only file and exits
            self.process.wait(10)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class LlmgaProcess:
    """``python -m llmga ARGS`` in the background, with ``path`` on its PYTHONPATH (for a ``--factory``).

    It is ready when it prints a line starting with ``ready``; for ``serve`` that
    line holds its URL (``url``). ``lines`` is what it prints (read all along, so
    a process that logs a lot never blocks on a full pipe). With ``wait=False``
    the constructor returns at once (start several, then :meth:`wait_ready`).
    """

    def __init__(self, args: Sequence[str], path: Sequence[str | Path] = (), ready: str = "llmga studio: ",
                 wait: bool = True) -> None:
        pythonpath = os.pathsep.join([*map(str, path), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "PYTHONPATH": pythonpath, "HF_HUB_OFFLINE": "1"}
        self.args, self.ready = [str(a) for a in args], ready
        self.process = subprocess.Popen([sys.executable, "-m", "llmga", *self.args], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env=env)
        self.pid, self.lines, self.url, self.ready_at, self.sent = self.process.pid, [], "", 0, False
        self._reader: threading.Thread | None = None
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> LlmgaProcess:
        """Read what it prints until it says it is ready (RuntimeError with its last lines if it does not)."""
        ready = self.ready
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip())
            if line.startswith(ready):
                self.url = line.split()[2] if ready == "llmga studio: " else ""
                self.ready_at = len(self.lines)
                self._reader = threading.Thread(target=self._read, daemon=True)
                self._reader.start()
                return self
        self.process.kill()
        raise RuntimeError(f"llmga {self.args[0]} did not start: {self.lines[-20:]}")

    def send(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` (if it still runs)."""
        self.sent = True
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> str:
        """Send ``sig`` (unless :meth:`send` sent it already) and wait for the end; what it printed since it
        was ready."""
        if not self.sent:
            self.send(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._reader is not None:
            self._reader.join(10)
        self.process.stdout.close()
        return "\n".join(self.lines[self.ready_at:])
