"""Ports for local runs: the loopback address everything listens on, free ports that are never handed out twice in
one process and never taken from the kernel's ephemeral range, and which fixed ports something already holds."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable

LOOPBACK = "127.0.0.1"
# The kernel takes the source ports of outgoing connections from 32768-60999 (net.ipv4.ip_local_port_range). A
# listener given such a port can find it held by a client's connection when it restarts (a SIGKILLed daprd, say),
# so ports are picked below it.
_RANGE = (20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, below the ephemeral range, never one this process handed out before: a plan
    takes many ports before any process binds them, and the same free port must not go to two of them (the second
    would die on "address already in use" at every restart, since its command line keeps the port)."""
    while True:
        port = random.randrange(*_RANGE)
        if port in _handed_out:
            continue
        _handed_out.add(port)
        if not taken(port):
            return port


def reserve(ports: Iterable[int]) -> None:
    """Never hand out these ports (say, those a run's template names, which another process chose and nothing
    listens on yet): ``free_port`` checks only what listens now."""
    _handed_out.update(ports)


def taken(port: int, host: str = LOOPBACK) -> bool:
    """Whether something listens on ``port``. Checked as the servers bind (uvicorn, Go's net.Listen), with
    SO_REUSEADDR: a port whose last listener died keeps its connections in TIME_WAIT for a minute, and only a
    listener stops a new one from binding."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def taken_ports(ports: Iterable[tuple[int, str]]) -> list[str]:
    """``"PORT (WHAT)"`` for every (port, what) something already listens on, in the order given."""
    return [f"{port} ({what})" for port, what in ports if taken(port)]
