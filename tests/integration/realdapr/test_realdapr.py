"""``python -m realdapr`` as a user runs it: which Dapr it accepts, what it says when it cannot go on, and that
a run starts the real control plane and daprd and stops every process it started.

Tests that start Dapr use the binaries ``make dapr`` provides and are skipped without them. Where a test needs
a Dapr install that cannot exist here (another release, a broken binary), a shell script stands in for that one
binary, and says so in its name: ``fake-*``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import psutil
import pytest
import yaml
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2 as pb
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as stubs

from devtools.ports import free_port
from realdapr import DAPR_VERSION, RunError
from realdapr.binaries import BINARIES, DaprError, find
from realdapr.ports import check_ports_free
from tests.support import REPO
from tests.support.dapr_runs import BUILT, all_gone, descendants, needs_dapr, one_app_template, start_run, wait_for


def fake_install(folder: Path, version: str, broken: tuple[str, ...] = ()) -> Path:
    """A bin folder whose daprd says it is ``version``: fake-* stand-ins for an install of another release."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in BINARIES:
        body = f'#!/bin/sh\n# fake-{name}: stands in for a Dapr {version} install\necho "{version}"\n'
        if name in broken:
            body = (
                f'#!/bin/sh\n# fake-{name}: a binary that dies at once\necho "fake-{name}: cannot start" >&2\nexit 1\n'
            )
        (folder / name).write_text(body)
        (folder / name).chmod(0o755)
    return folder


def python_m(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "realdapr", *args],
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No ~/.dapr, an empty build cache: as on a machine where Dapr was never installed or built."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAPR_BIN_DIR", "DAPR_CACHE_DIR", "POSTGRES_URL")}
    env.update(HOME=str(tmp_path / "home"), DAPR_CACHE_DIR=str(tmp_path / "cache"), **extra)
    return env


# --- which Dapr is used ------------------------------------------------------------------------------------


def test_a_dapr_bin_dir_of_another_minor_release_is_refused_with_its_version(tmp_path: Path):
    env = isolated_env(tmp_path, DAPR_BIN_DIR=str(fake_install(tmp_path / "bin", "1.17.4")))
    with pytest.raises(DaprError, match=r"version 1\.17\.4.*Dapr 1\.18"):
        find(env)


def test_a_dapr_bin_dir_missing_a_binary_names_it(tmp_path: Path):
    folder = fake_install(tmp_path / "bin", DAPR_VERSION)
    (folder / "scheduler").unlink()
    with pytest.raises(DaprError, match="scheduler missing"):
        find(isolated_env(tmp_path, DAPR_BIN_DIR=str(folder)))


def test_an_install_in_home_of_another_release_is_reported_and_not_used(tmp_path: Path):
    fake_install(tmp_path / "home" / ".dapr" / "bin", "1.16.0")
    warnings: list[str] = []
    assert find(isolated_env(tmp_path), warn=warnings.append) is None
    assert len(warnings) == 1 and "version 1.16.0" in warnings[0]


def test_an_install_in_home_of_the_same_minor_release_is_used(tmp_path: Path):
    other_patch = DAPR_VERSION.rsplit(".", 1)[0] + ".0"
    fake_install(tmp_path / "home" / ".dapr" / "bin", other_patch)
    found = find(isolated_env(tmp_path))
    assert found is not None and found.version == other_patch and found.source == "~/.dapr/bin"


def test_without_dapr_and_without_go_install_says_in_one_paragraph_what_to_install(tmp_path: Path):
    python_only = tmp_path / "python-only"
    python_only.mkdir()
    (python_only / "python3").symlink_to(sys.executable)
    done = python_m("install", env=isolated_env(tmp_path, PATH=str(python_only)))
    assert done.returncode == 1
    message = done.stderr.strip()
    assert "\n" not in message, message
    assert "Go 1.26" in message and f"dapr init --runtime-version {DAPR_VERSION}" in message and "make dapr" in message


@pytest.mark.skipif(shutil.which("go") is None, reason="needs Go (the build's first step must really run and fail)")
def test_a_build_that_cannot_fetch_dapr_stops_with_what_to_do_and_installs_nothing(tmp_path: Path):
    # GOPROXY=off with an empty module cache: Go itself refuses the first download, as with no network.
    env = isolated_env(tmp_path, GOPROXY="off", GOMODCACHE=str(tmp_path / "gomod"), GOFLAGS="-modcacherw")
    done = python_m("install", env=env)
    assert done.returncode == 1
    assert f"1/4 fetching github.com/dapr/dapr@v{DAPR_VERSION} failed" in done.stderr
    assert "GOPROXY=off" in done.stderr and "installed nothing" in done.stderr and "make dapr" in done.stderr
    assert not any((tmp_path / "cache").rglob("daprd"))
    assert not (tmp_path / "cache" / f"dapr-{DAPR_VERSION}" / ".dapr" / "bin.partial").exists()


def test_run_without_dapr_says_to_run_make_dapr_first(tmp_path: Path):
    done = python_m("run", "-f", str(REPO / "dapr.yaml"), env=isolated_env(tmp_path))
    assert done.returncode == 1
    assert "run `make dapr` first" in done.stderr


@needs_dapr
def test_install_finds_the_built_binaries_without_building_again():
    started = time.monotonic()
    done = python_m("install")
    assert done.returncode == 0, done.stderr
    assert f"using Dapr {DAPR_VERSION}" in done.stderr
    assert time.monotonic() - started < 30
    daprd = Path(python_m("where").stdout.strip()) / "daprd"
    assert subprocess.run([str(daprd), "--version"], capture_output=True, text=True).stdout.strip() == DAPR_VERSION


@needs_dapr
def test_a_run_starts_placement_scheduler_and_daprd_and_sigterm_stops_every_process(tmp_path: Path, pg_server_url: str):
    proc, log = start_run(one_app_template(tmp_path / "t"), tmp_path, pg_server_url)
    try:
        wait_for(log, "all 1 daprd sidecars are up", proc)
        names = {p.name() for p in descendants(proc.pid)}
        assert {"placement", "scheduler", "daprd"} <= names, names
        started = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert all_gone(started) == []
        log.seek(0)
        text = log.read()
        assert "[sleeper daprd]" in text and "[placement]" in text and "[scheduler]" in text  # daprd's log, prefixed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@needs_dapr
def test_a_sigkilled_run_leaves_no_daprd_placement_scheduler_or_app_running(tmp_path: Path, pg_server_url: str):
    proc, log = start_run(one_app_template(tmp_path / "t"), tmp_path, pg_server_url)
    try:
        wait_for(log, "all 1 daprd sidecars are up", proc)
        started = descendants(proc.pid)
        assert {"placement", "scheduler", "daprd"} <= {p.name() for p in started}
        proc.kill()
        proc.wait(10)
        assert all_gone(started) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@needs_dapr
def test_a_taken_port_stops_the_run_before_anything_starts(tmp_path: Path, pg_server_url: str):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        proc, log = start_run(one_app_template(tmp_path / "t", http_port=taken), tmp_path, pg_server_url)
        assert proc.wait(60) == 1
    log.seek(0)
    text = log.read()
    assert f"port already in use: {taken} (sleeper daprHTTPPort)" in text
    assert "started (pid" not in text


@needs_dapr
def test_a_control_plane_that_does_not_come_up_is_named_and_nothing_is_left_running(tmp_path: Path, pg_server_url: str):
    assert BUILT is not None
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("daprd", "scheduler"):
        (folder / name).symlink_to(BUILT.bin_dir / name)
    (folder / "placement").write_text('#!/bin/sh\necho "fake-placement: a placement that dies at once" >&2\nexit 1\n')
    (folder / "placement").chmod(0o755)
    env = {**os.environ, "DAPR_BIN_DIR": str(folder)}
    proc, log = start_run(one_app_template(tmp_path / "t"), tmp_path, pg_server_url, "--ready-timeout", "5", env=env)
    seen_children: set[int] = set()
    while proc.poll() is None:
        seen_children |= {p.pid for p in descendants(proc.pid)}
        time.sleep(0.2)
    assert proc.returncode == 1
    log.seek(0)
    text = log.read()
    assert "the Dapr control plane not up after 5 s: placement" in text
    assert "fake-placement: a placement that dies at once" in text
    assert "app sleeper started" not in text and "app sleeper daprd started" not in text
    leftovers = [
        pid for pid in seen_children if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert leftovers == []


@needs_dapr
def test_a_run_gives_daprd_an_api_token_and_daprd_refuses_a_request_without_it(tmp_path: Path, pg_server_url: str):
    # What the sidecar's api_token module reproduces: 401 "invalid api token", health endpoints open.
    http_port = free_port()
    proc, log = start_run(
        one_app_template(tmp_path / "t", http_port=http_port),
        tmp_path,
        pg_server_url,
        env={**os.environ, "DAPR_API_TOKEN": "run-token"},
    )
    try:
        wait_for(log, "all 1 daprd sidecars are up", proc)
        base = f"http://127.0.0.1:{http_port}"
        refused = httpx.get(f"{base}/v1.0/metadata", timeout=10)
        assert (refused.status_code, refused.text) == (401, "invalid api token\n")
        assert httpx.get(f"{base}/v1.0/metadata", headers={"dapr-api-token": "run-token"}, timeout=10).is_success
        assert httpx.get(f"{base}/v1.0/healthz", timeout=10).is_success
        grpc_port = yaml.safe_load((tmp_path / "t" / "dapr.yaml").read_text())["apps"][0]["daprGRPCPort"]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel, pytest.raises(grpc.RpcError) as err:
            stubs.TaskHubSidecarServiceStub(channel).GetInstance(pb.GetInstanceRequest(instanceId="x"), timeout=10)
        assert (err.value.code(), err.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, "Unauthorized")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def test_a_port_left_in_time_wait_by_a_killed_server_counts_as_free_and_a_listening_one_does_not():
    # A run restarted right after its apps died finds their ports in TIME_WAIT; the servers can bind them again.
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    with pytest.raises(RunError, match=f"{port} \\(app\\)"):
        check_ports_free([(port, "app")])
    accepted.close()  # the server closes first: its side of the connection goes to TIME_WAIT
    server.close()
    client.close()
    check_ports_free([(port, "app")])


def test_free_ports_handed_out_by_one_run_are_all_different():
    # A plan takes a dozen free ports before any process binds one; the kernel may offer the same one twice.
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)
