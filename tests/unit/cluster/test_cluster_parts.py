"""The cluster run's pure parts and its proxy: the capability check that refuses without root, placement's view
against each daprd's (the split brain the healer ends), and the loopback proxy spreading connections over real
listening sockets and skipping one that refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from realdapr.cluster.heal import Member, listed_hosts, missing
from realdapr.cluster.netns import why_not_capable
from realdapr.cluster.proxy import Proxy

ALL_CAPS = "Name:\tpython\nCapEff:\t000001fffeffffff\n"


def test_root_with_its_capabilities_may_build_the_network() -> None:
    assert why_not_capable(ALL_CAPS) is None


@pytest.mark.parametrize(
    ("cap_eff", "missing_caps"),
    [
        ("0000000000000000", "CAP_NET_ADMIN and CAP_SYS_ADMIN"),
        (f"{0x1FFFEFFFFFF & ~(1 << 12):016x}", "CAP_NET_ADMIN"),
        (f"{0x1FFFEFFFFFF & ~(1 << 21):016x}", "CAP_SYS_ADMIN"),
    ],
)
def test_without_net_admin_or_sys_admin_it_says_so_in_one_line(cap_eff: str, missing_caps: str) -> None:
    reason = why_not_capable(f"CapEff:\t{cap_eff}\n")
    assert reason is not None and reason.endswith(f"without {missing_caps}") and "\n" not in reason


def test_a_daprd_that_says_connected_while_placement_dropped_it_is_missing() -> None:
    state = {"tables": {"default": {"hosts": [{"name": "10.0.0.10:50002"}, {"name": "10.0.0.11:50002"}]}}}
    listed = listed_hosts(state)
    members = [
        Member("n1-a", "10.0.0.10:50002", "http://10.0.0.10:3500"),
        Member("n2-a", "10.0.0.20:50002", "http://10.0.0.20:3500"),  # dropped by placement
        Member("n2-b", "10.0.0.21:50002", "http://10.0.0.21:3500"),  # dropped, and knows it
    ]
    found = missing(members, listed, {"n1-a": True, "n2-a": True, "n2-b": False})
    assert [m.pod for m in found] == ["n2-a"]


async def test_the_proxy_spreads_connections_and_skips_a_replica_that_refuses() -> None:
    served: list[str] = []

    def backend(name: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.readline()
            served.append(name)
            writer.write(name.encode() + b":" + data)
            await writer.drain()
            writer.close()

        return serve

    one = await asyncio.start_server(backend("one"), "127.0.0.1", 0)
    two = await asyncio.start_server(backend("two"), "127.0.0.1", 0)
    closed = await asyncio.start_server(backend("gone"), "127.0.0.1", 0)
    gone_port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    ports = [s.sockets[0].getsockname()[1] for s in (one, two)]
    proxy = Proxy("app", 0, [("127.0.0.1", ports[0]), ("127.0.0.1", gone_port), ("127.0.0.1", ports[1])])
    port = await proxy.start()
    answers = []
    try:
        for i in range(4):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"hello {i}\n".encode())
            await writer.drain()
            answers.append((await reader.read()).decode())
            writer.close()
    finally:
        await proxy.close()
        for server in (one, two):
            server.close()
            await server.wait_closed()
    assert answers == ["one:hello 0\n", "two:hello 1\n", "one:hello 2\n", "two:hello 3\n"]
    assert "gone" not in served
