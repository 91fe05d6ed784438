"""The simulated network of a cluster run: one Linux network namespace per host (pod), each with one veth on a
bridge in the root namespace, in a subnet the run adds and removes; and the blows a host takes (its processes
killed, stopped and continued, its link cut and restored).

Everything is named with the run's prefix (namespaces ``<prefix>-<host>``, links ``<prefix>...``), and the state
file, written before anything exists and after each host, adds the namespaces' inode numbers. So ``down`` finds
what a run made even after the runner was SIGKILLed or a namespace's name was deleted under a live process, and a
next start runs ``down`` first. No default route in any namespace (an address outside the subnet is unreachable
from there), no forwarding turned on, no firewall rule anywhere: bridged traffic is switched, and the root namespace
reaches the hosts through the bridge's own address. Needs CAP_NET_ADMIN and CAP_SYS_ADMIN (``why_not_capable``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "sgc"  # every namespace and link of a cluster run starts with its prefix (tests use their own)
DEFAULT_SUBNET = "10.213.0.0/24"
CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21


class NetError(RuntimeError):
    """An ``ip`` command failed or the subnet cannot be used; the message says which and why."""


def why_not_capable(status: str | None = None) -> str | None:
    """None when this process can build the network, else a one-line reason. Reads the effective capabilities
    (root without CAP_NET_ADMIN or CAP_SYS_ADMIN cannot either)."""
    if sys.platform != "linux":
        return "the cluster run needs Linux network namespaces"
    if shutil.which("ip") is None:
        return "the cluster run needs the `ip` command (iproute2), which is not installed"
    text = status if status is not None else Path("/proc/self/status").read_text()
    match = re.search(r"^CapEff:\s*([0-9a-fA-F]+)$", text, re.M)
    caps = int(match[1], 16) if match else 0
    missing = [
        name
        for bit, name in ((CAP_NET_ADMIN, "CAP_NET_ADMIN"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"))
        if not caps >> bit & 1
    ]
    if missing:
        who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
        return (
            "the cluster run needs root (it creates network namespaces and a bridge); this process is "
            f"{who} without {' and '.join(missing)}"
        )
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; NetError with its message when it fails and ``check``."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NetError(f"ip {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


@dataclass(frozen=True)
class Host:
    """One simulated host: its namespace, the root-side end of its veth and its address."""

    name: str
    ns: str
    veth: str
    address: str
    inode: int = 0

    def exec_prefix(self) -> list[str]:
        """What runs a command inside the namespace (``ip netns exec`` execs it: the pid stays the command's)."""
        return ["ip", "netns", "exec", self.ns]


class Network:
    """The bridge and the hosts of one run; ``state`` is the JSON file that outlives a SIGKILLed runner."""

    def __init__(self, state: Path, subnet: str = DEFAULT_SUBNET, prefix: str = PREFIX) -> None:
        if not prefix.isalnum() or len(prefix) > 6:
            raise NetError(f"prefix {prefix!r}: up to 6 letters or digits (interface names have 15 characters)")
        self.state, self.prefix = state, prefix
        try:
            self.subnet = ipaddress.ip_network(subnet)
        except ValueError as err:
            raise NetError(f"--subnet {subnet!r}: {err}") from None
        if self.subnet.version != 4 or self.subnet.num_addresses < 16:
            raise NetError(f"--subnet {subnet}: an IPv4 subnet of at least 16 addresses (/28) is needed")
        self.hosts: dict[str, Host] = {}

    @property
    def gateway(self) -> str:
        """The bridge's address: where the root namespace (the runner, the proxy, tests) appears to the hosts."""
        return str(self.subnet.network_address + 1)

    def address(self, index: int) -> str:
        """The address of the host numbered ``index`` (from 2: .1 is the bridge)."""
        if not 2 <= index < self.subnet.num_addresses - 1:
            raise NetError(f"host number {index} does not fit in {self.subnet}")
        return str(self.subnet.network_address + index)

    def up(self, hosts: dict[str, int]) -> dict[str, Host]:
        """Make the bridge and one namespace per host (name -> address number), after removing whatever an
        earlier run left. Returns the hosts by name."""
        down(self.state, self.prefix)
        self._check_subnet_free()
        self._save()
        bridge = f"{self.prefix}br0"
        ip("link", "add", bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", bridge)
        ip("link", "set", bridge, "up")
        for number, (name, index) in enumerate(hosts.items()):
            ns, veth, peer = f"{self.prefix}-{name}", f"{self.prefix}v{number}", f"{self.prefix}p{number}"
            address = self.address(index)
            ip("netns", "add", ns)
            inode = os.stat(f"/run/netns/{ns}").st_ino
            self.hosts[name] = Host(name, ns, veth, address, inode)
            self._save()
            ip("link", "add", veth, "type", "veth", "peer", "name", peer)
            ip("link", "set", veth, "master", bridge, "up")
            ip("link", "set", peer, "netns", ns)
            ip("-n", ns, "link", "set", peer, "name", "eth0")
            ip("-n", ns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        return self.hosts

    def _check_subnet_free(self) -> None:
        for link in json.loads(ip("-j", "addr", "show").stdout or "[]"):
            if str(link.get("ifname", "")).startswith(self.prefix):
                continue
            for info in link.get("addr_info", []):
                if info.get("family") != "inet":
                    continue
                theirs = ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False)
                if theirs.overlaps(self.subnet):
                    raise NetError(
                        f"subnet {self.subnet} overlaps {info['local']}/{info['prefixlen']} on {link['ifname']}: "
                        "choose another with --subnet"
                    )

    def _save(self) -> None:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        doc = {"subnet": str(self.subnet), "hosts": {n: vars(h) for n, h in self.hosts.items()}}
        partial = self.state.with_suffix(".partial")
        partial.write_text(json.dumps(doc, indent=1))
        partial.replace(self.state)


def load_hosts(state: Path) -> dict[str, Host]:
    """The hosts a state file records (empty when there is none or it is unreadable)."""
    try:
        doc: dict[str, Any] = json.loads(state.read_text())
    except (OSError, ValueError):
        return {}
    return {name: Host(**fields) for name, fields in (doc.get("hosts") or {}).items()}


def pids_of(host: Host) -> list[int]:
    """Every process in the host's namespace: by name, and by inode (found even after the name is gone)."""
    pids: set[int] = set()
    done = ip("netns", "pids", host.ns, check=False)
    if done.returncode == 0:
        pids |= {int(p) for p in done.stdout.split()}
    if host.inode:
        wanted = f"net:[{host.inode}]"
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "ns" / "net") == wanted:
                        pids.add(int(entry.name))
                except OSError:
                    continue
    pids.discard(os.getpid())
    return sorted(pids)


def signal_hosts(hosts: list[Host], sig: signal.Signals) -> list[int]:
    """Send ``sig`` to every process of ``hosts``; the pids signalled."""
    sent = []
    for host in hosts:
        for pid in pids_of(host):
            try:
                os.kill(pid, sig)
                sent.append(pid)
            except ProcessLookupError:
                continue
    return sent


def kill_hosts(hosts: list[Host], timeout: float = 10.0) -> list[int]:
    """SIGKILL every process of ``hosts`` (SIGCONT first, for stopped ones) and wait until they are gone."""
    victims = signal_hosts(hosts, signal.SIGCONT)
    victims += signal_hosts(hosts, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in victims):
        time.sleep(0.05)
    return sorted(set(victims))


def set_links(hosts: list[Host], up: bool) -> None:
    """Cut (``up`` false) or restore the hosts' links to the bridge: the root-side end of each veth down or up."""
    for host in hosts:
        ip("link", "set", host.veth, "up" if up else "down")


def drop_connections(host: Host, address: str, port: int) -> None:
    """Destroy the host's TCP connections to ``address:port`` (``ss -K``): what a client keepalive would end."""
    subprocess.run(
        [*host.exec_prefix(), "ss", "-K", "dst", address, "dport", "=", str(port)], capture_output=True, check=False
    )


def down(state: Path, prefix: str = PREFIX) -> list[str]:
    """Remove everything a run made (found by prefix and in ``state``): its processes killed, its links, namespaces
    and bridge deleted, the state file removed. Idempotent. Returns what it found, for a message."""
    hosts = load_hosts(state)
    listed = json.loads(ip("-j", "netns", "list", check=False).stdout or "[]")
    for entry in listed:
        name = str(entry.get("name", ""))
        if name.startswith(f"{prefix}-") and not any(h.ns == name for h in hosts.values()):
            hosts[name] = Host(name, name, "", "")
    found = []
    killed = kill_hosts(list(hosts.values()))
    if killed:
        found.append(f"{len(killed)} processes")
    # The root-side veth first: deleting it removes both ends at once (a namespace's deletion does it later).
    for link in json.loads(ip("-j", "link", "show", check=False).stdout or "[]"):
        name = str(link.get("ifname", ""))
        if name.startswith(prefix):
            ip("link", "del", name, check=False)
            found.append(name)
    for host in hosts.values():
        if ip("netns", "del", host.ns, check=False).returncode == 0:
            found.append(host.ns)
    state.unlink(missing_ok=True)
    return found


def leftovers(prefix: str = PREFIX) -> list[str]:
    """Namespaces and links with the run's prefix that exist now (for tests and the stop message)."""
    names = [str(e.get("name")) for e in json.loads(ip("-j", "netns", "list", check=False).stdout or "[]")]
    links = [str(e.get("ifname")) for e in json.loads(ip("-j", "link", "show", check=False).stdout or "[]")]
    return [n for n in names if n.startswith(f"{prefix}-")] + [n for n in links if n.startswith(prefix)]


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"
