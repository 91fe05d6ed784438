"""``python -m realdapr.cluster run``: the shop on real Dapr across simulated hosts, supervised until a stop signal.

Order: whatever an earlier run left is removed (``netns.down``); the network is made (a control-plane host, a
database host, one host per pod); PostgreSQL starts on the database host; sentry (its trust root made once in the
data folder), then placement and the scheduler on the control-plane host; every pod's init containers (all at
once, as replicas start together); then every pod's daprd and app. Once all answer: one loopback proxy per app
(``proxy``), the watchdog of every daprd (``realdapr.watchdog``), the placement healer (``heal``), and the state
file that the chaos run, the tests and the benchmark read (``cluster.json``: addresses, pods, proxies). On Ctrl-C
or SIGTERM everything stops in reverse and the network is removed; a SIGKILLed runner's leftovers go at the next
start (its children die with it: each has a parent-death signal; PostgreSQL and the namespaces are found by name).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.supervisor import Launch, Supervisor

from .. import RunError
from ..binaries import SENTRY, DaprBinaries
from ..commands import Mtls, control_plane_commands, control_plane_health, sentry_command
from ..ports import ControlPlanePorts
from ..run import wait_healthy
from ..trust import ensure_trust_root
from ..watchdog import Watchdog, Watched
from . import database, netns, plan
from .heal import Member, PlacementHealer
from .proxy import Proxy
from .topology import Topology, write_resources

log = logging.getLogger("realdapr.cluster")
READY_TIMEOUT = 120.0
REPO = Path(__file__).resolve().parents[2]
PORTS = ControlPlanePorts.from_bases(6050, 6060, 6070)  # inside the control-plane host: nothing else there


@dataclass
class Options:
    nodes: int = 2
    data_dir: Path = Path(".data/cluster")
    subnet: str = netns.DEFAULT_SUBNET
    prefix: str = netns.PREFIX  # of every namespace and link: a test runs beside a user's cluster with its own
    proxy_offset: int = 10000  # each app's proxy listens on 127.0.0.1:<its Service port + this> (0: free ports)
    overrides: dict[str, str] = field(default_factory=dict)
    log_level: str = "info"
    ready_timeout: float = READY_TIMEOUT
    watchdog_grace: float | None = None  # None: from the pods' liveness probes (``liveness_grace``); 0: off
    heal_grace: float = 10.0


def state_file(data_dir: Path) -> Path:
    """Where a run describes itself for other processes (None of it is needed to clean up: see netns)."""
    return data_dir / "cluster.json"


async def run(
    topology: Topology,
    dapr: DaprBinaries,
    options: Options,
    on_signals: Callable[[Callable[[], None], Callable[[int], None]], None] | None = None,
) -> int:
    """Run the cluster until a stop signal. Exit code: 1 when it could not come up, 128+N after a second signal."""
    if topology.database is None:
        raise RunError("the manifests deploy no PostgreSQL: render an overlay that does (deploy/overlays/trial)")
    data = options.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    network = netns.Network(data / "network.json", options.subnet, options.prefix)
    state_file(data).unlink(missing_ok=True)
    left = await asyncio.to_thread(netns.down, network.state, options.prefix)
    if left:
        log.info("removed what an earlier run left: %s", ", ".join(left[:8]) + (" ..." if len(left) > 8 else ""))
    stop = asyncio.Event()
    supervisors: list[Supervisor] = []
    forced: list[int] = []

    def kill_now(signum: int) -> None:
        forced.append(signum)
        for supervisor in supervisors:
            supervisor.kill_now()

    if on_signals:
        on_signals(stop.set, kill_now)
    pgdata = data / "postgres"
    failure = None
    try:
        failure = await _run(topology, dapr, options, network, pgdata, stop, supervisors)
    except (RunError, RuntimeError) as err:  # netns.NetError, pg_ctl, a stage that did not come up
        failure = str(err)
    finally:
        state_file(data).unlink(missing_ok=True)
        try:
            await asyncio.to_thread(database.stop, pgdata)
        except RuntimeError as err:
            log.warning("PostgreSQL did not stop cleanly: %s", err)
        await asyncio.to_thread(netns.down, network.state, options.prefix)
        log.info("stopped; left behind: %s", ", ".join(netns.leftovers(options.prefix)) or "nothing")
    if failure:
        log.error("%s", failure)
        return 1
    return 128 + forced[0] if forced else 0


async def _run(
    topology: Topology,
    dapr: DaprBinaries,
    options: Options,
    network: netns.Network,
    pgdata: Path,
    stop: asyncio.Event,
    supervisors: list[Supervisor],
) -> str | None:
    db_spec = topology.database
    assert db_spec is not None
    numbers, pods = plan.hosts(topology, options.nodes)
    hosts = await asyncio.to_thread(network.up, numbers)
    cp, db = hosts[plan.CONTROL_PLANE], hosts[plan.DATABASE]
    log.info(
        "network %s: control plane %s, database %s, %d pods on %d nodes",
        network.subnet,
        cp.address,
        db.address,
        len(pods),
        options.nodes,
    )

    new = await asyncio.to_thread(database.prepare, pgdata, str(network.subnet))
    await asyncio.to_thread(database.start, pgdata, db, db_spec.port)
    await database.wait_ready(pgdata, db_spec.port)
    await database.set_up(pgdata, db_spec.port, db_spec, new)
    log.info("PostgreSQL on %s:%d (%s)", db.address, db_spec.port, "new" if new else "its data kept")

    data = options.data_dir.resolve()
    configs = write_resources(topology, data / "resources", db.address)
    first = sentry_command(dapr, PORTS, data, "info")
    anchors = await ensure_trust_root(first, data / "sentry", data)
    mtls = Mtls(f"{cp.address}:{PORTS.sentry}", anchors)
    cp_env = {**plan.daprd_env(cp, "default", mtls, os.environ)}
    commands = control_plane_commands(dapr, PORTS, data / "scheduler", options.log_level, mtls, host=cp.address)
    commands["placement"].append("--metadata-enabled")
    stages: list[tuple[str, list[Launch], dict[str, str]]] = [
        (
            "sentry",
            [
                Launch(
                    SENTRY,
                    [*cp.exec_prefix(), *sentry_command(dapr, PORTS, data, options.log_level, cp.address)],
                    data,
                    cp_env,
                )
            ],
            {SENTRY: f"http://{cp.address}:{PORTS.sentry_health}/healthz"},
        ),
        (
            "the Dapr control plane",
            [Launch(name, [*cp.exec_prefix(), *cmd], data, cp_env) for name, cmd in commands.items()],
            {n: u.replace("127.0.0.1", cp.address) for n, u in control_plane_health(PORTS).items()},
        ),
    ]
    repo = REPO
    launches: list[Launch] = []
    health: dict[str, str] = {}
    inits = []
    for pod in pods:
        host = hosts[pod.name]
        app_env = plan.container_env(pod, pod.app.container, db_spec.hostnames, db.address, options.overrides)
        daprd = plan.daprd_command(pod, host, dapr, cp, PORTS, data / "resources", configs, mtls)
        env = plan.daprd_env(host, topology.namespace, mtls, os.environ)
        launches += plan.pod_launches(pod, host, daprd, env, app_env, repo)
        health.update(plan.pod_health(pod, host))
        for init in pod.app.init:
            init_env = plan.container_env(pod, init, db_spec.hostnames, db.address, options.overrides)
            inits.append(
                (f"{pod.name} init {init.name}", [*host.exec_prefix(), *plan.container_command(init)], init_env)
            )
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
    proxies: list[Proxy] = []
    try:
        for what, stage, urls in stages:
            if stop.is_set():
                return None
            await _start(stage, urls, what, stop, supervisors, running, options.ready_timeout)
        await _init_containers(inits, repo)
        await _start(launches, health, "the pods", stop, supervisors, running, options.ready_timeout)
        if stop.is_set():
            return None
        for app in topology.apps:
            backends = [(hosts[p.name].address, app.container.port or 0) for p in pods if p.app is app]
            port = (app.service_port or app.container.port or 0) + options.proxy_offset if options.proxy_offset else 0
            proxy = Proxy(app.sidecar.app_id, port, backends)
            await proxy.start()
            proxies.append(proxy)
        _write_state(data, topology, hosts, pods, proxies, db_spec.port, pgdata)
        for proxy in proxies:
            log.info("%s: http://127.0.0.1:%d -> %d replicas", proxy.name, proxy.port, len(proxy.backends))
        log.info("cluster up: %d pods on %d nodes; Ctrl-C or SIGTERM stops it", len(pods), options.nodes)
        watchers = _watch(topology, hosts, pods, cp, supervisors[-1], options, stop)
        await stop.wait()
        await asyncio.gather(*watchers)
    except (RunError, RuntimeError) as err:
        return str(err)
    finally:
        for proxy in proxies:
            await proxy.close()
        for stage_stop, task in reversed(running):
            stage_stop.set()
            await task
    return None


async def _start(
    launches: list[Launch],
    urls: dict[str, str],
    what: str,
    stop: asyncio.Event,
    supervisors: list[Supervisor],
    running: list[tuple[asyncio.Event, asyncio.Task[None]]],
    timeout: float,
) -> None:
    supervisor = Supervisor(launches)
    supervisors.append(supervisor)
    stage_stop = asyncio.Event()
    running.append((stage_stop, asyncio.create_task(supervisor.run(stage_stop))))
    await wait_healthy(urls, stop, timeout, what)


async def _init_containers(inits: list[tuple[str, list[str], dict[str, str]]], cwd: Path) -> None:
    """Every pod's init containers, all pods at once (each pod's in order); RunError naming one that failed."""

    async def one(name: str, command: list[str], env: Mapping[str, str]) -> None:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=cwd, env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            tail = out.decode(errors="replace").strip().splitlines()[-5:]
            raise RunError(f"{name} exited with {proc.returncode}: " + " | ".join(tail))

    await asyncio.gather(*(one(*init) for init in inits))


def _watch(
    topology: Topology,
    hosts: Mapping[str, netns.Host],
    pods: list[plan.Pod],
    cp: netns.Host,
    daprds: Supervisor,
    options: Options,
    stop: asyncio.Event,
) -> list[asyncio.Task[None]]:
    """Start the watchdog and the placement healer in the background (they end with ``stop``)."""
    tasks = []
    grace = liveness_grace(topology) if options.watchdog_grace is None else options.watchdog_grace
    if grace > 0:
        watched = [Watched(p.app_id, f"{p.name} daprd", plan.daprd_api(hosts[p.name])) for p in pods]
        watchdog = Watchdog(watched, daprds.kill, grace=grace, token="", env={"NAMESPACE": topology.namespace})
        tasks.append(asyncio.create_task(watchdog.run(stop)))
    if options.heal_grace > 0:
        members = [
            Member(
                p.name,
                f"{hosts[p.name].address}:{p.app.sidecar.values['internal_grpc_port']}",
                plan.daprd_api(hosts[p.name]),
            )
            for p in pods
        ]

        def cut(pod: str) -> None:
            netns.drop_connections(hosts[pod], cp.address, PORTS.placement)

        healer = PlacementHealer(
            f"http://{cp.address}:{PORTS.placement_health}/placement/state", members, cut, options.heal_grace
        )
        tasks.append(asyncio.create_task(healer.run(stop)))
    return tasks


def liveness_grace(topology: Topology) -> float:
    """How long the watchdog lets a daprd stay unwell: what its liveness probe allows (period x threshold, the
    longest of the pods'), which the watchdog stands in for (it also sees what a TCP probe cannot)."""
    probes = [app.sidecar.liveness() for app in topology.apps]
    return float(max((p.period * p.threshold for p in probes), default=30))


def _write_state(
    data: Path,
    topology: Topology,
    hosts: Mapping[str, netns.Host],
    pods: list[plan.Pod],
    proxies: list[Proxy],
    db_port: int,
    pgdata: Path,
) -> None:
    doc = {
        "runner_pid": os.getpid(),
        "namespace": topology.namespace,
        "proxies": {p.name: f"http://127.0.0.1:{p.port}" for p in proxies},
        "pods": {
            p.name: {
                "app": p.app_id,
                "node": p.node,
                "address": hosts[p.name].address,
                "url": f"http://{hosts[p.name].address}:{p.app.container.port}",
                "daprd": plan.daprd_api(hosts[p.name]),
            }
            for p in pods
        },
        "hosts": {name: vars(h) for name, h in hosts.items()},
        "database": {"host": plan.DATABASE, "port": db_port, "pgdata": str(pgdata)},
        "control_plane": {
            "host": plan.CONTROL_PLANE,
            "placement": PORTS.placement,
            "scheduler": PORTS.scheduler,
            "placement_state": f"http://{hosts[plan.CONTROL_PLANE].address}:{PORTS.placement_health}/placement/state",
        },
    }
    partial = state_file(data).with_suffix(".partial")
    partial.write_text(json.dumps(doc, indent=1))
    partial.replace(state_file(data))
