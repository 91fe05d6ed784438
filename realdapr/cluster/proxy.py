"""What a Kubernetes Service does for a cluster run, seen from the root namespace: one address on loopback per app
that spreads TCP connections round-robin over the app's replicas (their addresses in the run's subnet), skipping a
replica that refuses or does not answer the connect. Bytes are copied both ways until either side closes; nothing
is parsed, so HTTP keep-alive keeps a client on one replica for that connection's life, as kube-proxy does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence

log = logging.getLogger("realdapr.cluster")

CONNECT_TIMEOUT = 2.0
_CHUNK = 64 * 1024


class Proxy:
    """Listens on ``127.0.0.1:port`` and forwards each connection to the next of ``backends`` (host, port)."""

    def __init__(self, name: str, port: int, backends: Sequence[tuple[str, int]]) -> None:
        self.name, self.port, self.backends = name, port, list(backends)
        self._next = itertools.cycle(range(len(self.backends)))
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Start listening; returns the port (a free one when ``port`` is 0)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            upstream = await self._connect()
            if upstream is None:
                return
            up_reader, up_writer = upstream
            try:
                await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            host, port = self.backends[next(self._next)]
            try:
                return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                continue
        log.warning("%s: no replica accepts a connection", self.name)
        return None


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
