"""``python -m realdapr run`` with mTLS, as production runs Dapr: sentry and every process with a certificate, a
trust root made once and kept, history signing on; and, when a certificate cannot be had (sentry unreachable, or
not trusted), one message naming who and why, with nothing left running.

Where a test needs a sentry that cannot exist here (one nothing reaches, one signing with another root), a small
script stands in for that one binary, and says so in its name: ``fake-sentry``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from devtools.ports import free_port
from realdapr.binaries import BINARIES
from tests.support import REPO
from tests.support.dapr_runs import (
    BUILT,
    all_gone,
    descendants,
    make_trust_root,
    needs_dapr,
    one_app_template,
    start_run,
    wait_for,
)

pytestmark = needs_dapr


def test_a_run_starts_sentry_gives_every_process_a_certificate_and_keeps_its_trust_root(
    tmp_path: Path, pg_server_url: str
) -> None:
    http_port = free_port()
    template = one_app_template(tmp_path / "t", http_port=http_port)
    env = {**os.environ, "DAPR_API_TOKEN": "mtls-token"}
    roots = []
    for attempt in range(2):
        proc, log = start_run(template, tmp_path, pg_server_url, env=env)
        try:
            text = wait_for(log, "all 1 daprd sidecars are up", proc)
            assert {"sentry", "placement", "scheduler", "daprd"} <= {p.name() for p in descendants(proc.pid)}
            # Made by sentry at the first start only; the same root afterwards.
            assert ("making the trust root" in text) == (attempt == 0)
            roots.append((tmp_path / "dapr" / "sentry" / "ca.crt").read_bytes())
            for who in ("[sleeper daprd]", "[placement]", "[scheduler]"):
                assert any(who in line and "Security is initialized successfully" in line for line in text.splitlines())
            metadata = httpx.get(
                f"http://127.0.0.1:{http_port}/v1.0/metadata", headers={"dapr-api-token": "mtls-token"}, timeout=10
            ).json()
            assert "WorkflowHistorySigning" in metadata["enabledFeatures"]
            started = descendants(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        assert proc.returncode == 0
        assert all_gone(started) == []
    assert roots[0] == roots[1]
    assert oct((tmp_path / "dapr" / "sentry").stat().st_mode & 0o777) == "0o700"


def test_without_mtls_no_sentry_runs_and_daprd_has_no_signing(tmp_path: Path, pg_server_url: str) -> None:
    http_port = free_port()
    env = {**os.environ, "DAPR_API_TOKEN": "plain-token"}
    proc, log = start_run(
        one_app_template(tmp_path / "t", http_port=http_port), tmp_path, pg_server_url, "--no-mtls", env=env
    )
    try:
        wait_for(log, "all 1 daprd sidecars are up", proc)
        assert "sentry" not in {p.name() for p in descendants(proc.pid)}
        metadata = httpx.get(
            f"http://127.0.0.1:{http_port}/v1.0/metadata", headers={"dapr-api-token": "plain-token"}, timeout=10
        ).json()
        assert "WorkflowHistorySigning" not in metadata["enabledFeatures"]
        assert not (tmp_path / "dapr" / "sentry").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def _fake_sentry_bin(tmp_path: Path, script: str) -> Path:
    """A bin folder with the real daprd, placement and scheduler and ``script`` as sentry."""
    assert BUILT is not None
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in BINARIES:
        (folder / name).symlink_to(BUILT.bin_dir / name)
    (folder / "sentry").write_text(f"#!{sys.executable}\n{script}")
    (folder / "sentry").chmod(0o755)
    return folder


def _run_until_it_gives_up(tmp_path: Path, pg_server_url: str, bin_dir: Path) -> tuple[str, set[int]]:
    env = {**os.environ, "DAPR_BIN_DIR": str(bin_dir)}
    proc, log = start_run(one_app_template(tmp_path / "t"), tmp_path, pg_server_url, "--ready-timeout", "8", env=env)
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        seen |= {p.pid for p in descendants(proc.pid)}
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == 1
    log.seek(0)
    return log.read(), seen


def _left(pids: set[int]) -> list[int]:
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("[dapr]") and " ERROR " in line]


FAKE_SENTRY_UNREACHABLE = """\
# fake-sentry: answers its health port and never serves a certificate (a sentry nothing reaches)
import http.server, sys
args = sys.argv[1:]
port = int(args[args.index("--healthz-port") + 1])
class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Healthy).serve_forever()
"""


def test_a_sentry_nothing_reaches_ends_the_run_with_one_message_naming_who_and_why(
    tmp_path: Path, pg_server_url: str
) -> None:
    make_trust_root(tmp_path / "dapr")  # the run finds a root and does not ask the fake to make one
    text, seen = _run_until_it_gives_up(tmp_path, pg_server_url, _fake_sentry_bin(tmp_path, FAKE_SENTRY_UNREACHABLE))
    errors = _errors(text)
    assert len(errors) == 1, text[-4000:]
    assert "could not get a certificate from sentry at 127.0.0.1:" in errors[0]
    assert "connection refused" in errors[0]
    assert errors[0].split("] ", 1)[1].split(" ", 2)[2].startswith(("placement", "scheduler"))
    assert "app sleeper started" not in text
    assert _left(seen) == []


def test_a_sentry_signing_with_another_root_ends_the_run_with_one_message_naming_who_and_why(
    tmp_path: Path, pg_server_url: str
) -> None:
    assert BUILT is not None and BUILT.sentry is not None
    make_trust_root(tmp_path / "dapr")
    make_trust_root(tmp_path / "other")
    untrusted = f"""\
# fake-sentry: the real sentry, issuing from a trust root other than the one the run trusts
import os, sys
args = sys.argv[1:]
args[args.index("--issuer-credentials") + 1] = "{tmp_path / "other" / "sentry"}"
os.execv("{BUILT.sentry}", ["{BUILT.sentry}", *args])
"""
    text, seen = _run_until_it_gives_up(tmp_path, pg_server_url, _fake_sentry_bin(tmp_path, untrusted))
    errors = _errors(text)
    assert len(errors) == 1, text[-4000:]
    assert "could not get a certificate from sentry at 127.0.0.1:" in errors[0]
    assert "certificate signed by unknown authority" in errors[0]
    assert _left(seen) == []


def test_a_trust_root_that_does_not_verify_its_issuer_is_refused_by_sentry_in_one_message(
    tmp_path: Path, pg_server_url: str
) -> None:
    make_trust_root(tmp_path / "dapr")
    other = make_trust_root(tmp_path / "other")
    (tmp_path / "dapr" / "sentry" / "ca.crt").write_bytes(other.read_bytes())
    assert BUILT is not None
    text, seen = _run_until_it_gives_up(tmp_path, pg_server_url, BUILT.bin_dir)
    errors = _errors(text)
    assert len(errors) == 1, text[-4000:]
    assert errors[0].split(" ERROR ", 1)[1].startswith("sentry could not start: ")
    assert _left(seen) == []


def test_an_install_without_sentry_and_no_build_of_it_is_refused_with_what_to_do(tmp_path: Path) -> None:
    assert BUILT is not None
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in BINARIES:
        (folder / name).symlink_to(BUILT.bin_dir / name)
    # No ~/.dapr and an empty build cache: nowhere to take a sentry from.
    env = {k: v for k, v in os.environ.items() if k not in ("DAPR_CACHE_DIR", "POSTGRES_URL")}
    env.update(HOME=str(tmp_path / "home"), DAPR_CACHE_DIR=str(tmp_path / "cache"), DAPR_BIN_DIR=str(folder))
    command = [sys.executable, "-m", "realdapr", "run", "-f", str(one_app_template(tmp_path / "t"))]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "mTLS needs Dapr's sentry" in done.stderr and "make dapr" in done.stderr and "--no-mtls" in done.stderr


def test_a_first_start_logging_at_warn_level_makes_the_trust_root_too(tmp_path: Path, pg_server_url: str) -> None:
    # What chaos runs (--log-level warn): sentry's first start still says when its files are whole.
    proc, log = start_run(one_app_template(tmp_path / "t"), tmp_path, pg_server_url, "--log-level", "warn")
    try:
        wait_for(log, "all 1 daprd sidecars are up", proc)
        assert (tmp_path / "dapr" / "sentry" / "ca.crt").is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
