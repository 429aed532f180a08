"""A read timeout for uvicorn: a client has ``seconds`` to send a whole request (head and body).

uvicorn closes idle keep-alive connections, but a client that sends a request
slowly (a byte now and then, or half a head and nothing more) is waited for
indefinitely, so a few hundred such connections tie the server up. The
protocol here is uvicorn's own h11 protocol with one more timer: it starts when
a connection opens and when a new request starts on it, stops when the request
has been read whole, and when it runs out the client gets ``408 Request
Timeout`` (if nothing was answered yet) and the connection is closed. It is
passed to uvicorn as its ``http`` protocol class (:func:`protocol_with_read_timeout`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_TIMEOUT_ANSWER = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class ReadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request takes over ``read_seconds`` to arrive."""

    read_seconds: float = 60.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._start_timer()

    def data_received(self, data: bytes) -> None:
        if self._read_timer is None and self.conn.their_state is h11.IDLE:
            self._start_timer()  # a new request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._stop_timer()  # the request is in whole (or the connection is done)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _start_timer(self) -> None:
        self._stop_timer()
        self._read_timer = self.loop.call_later(self.read_seconds, self._timed_out)

    def _stop_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_TIMEOUT_ANSWER)
        self.transport.close()


def protocol_with_read_timeout(seconds: float) -> type[Any]:
    """The protocol class to give uvicorn (``uvicorn.Config(app, http=...)``) for a ``seconds`` read timeout."""
    return type("ReadTimeoutProtocol", (ReadTimeoutProtocol,), {"read_seconds": seconds})
