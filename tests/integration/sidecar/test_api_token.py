"""The sidecar's API token, as daprd enforces DAPR_API_TOKEN: with it set, a gRPC call or an HTTP request without
the matching ``dapr-api-token`` is refused (UNAUTHENTICATED "Unauthorized" / 401 "invalid api token"), GET of the
health endpoints excepted; ``python -m sidecar run`` makes a fresh token per run and gives it to every app."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import httpx
import pytest
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2 as pb
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as stubs

from tests.support.processes import sidecar_serving


@pytest.fixture
def guarded(tmp_path: Path):
    """``python -m sidecar serve`` for one app with DAPR_API_TOKEN=s3cret; yields its (gRPC, HTTP) ports."""
    with sidecar_serving(["a"], tmp_path / "state.db", env={"DAPR_API_TOKEN": "s3cret"}, http=True) as ports:
        yield ports["a"]


def _get_instance(port: int, metadata: tuple = ()) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            stubs.TaskHubSidecarServiceStub(channel).GetInstance(
                pb.GetInstanceRequest(instanceId="x"), metadata=metadata, timeout=10
            )
        except grpc.RpcError as err:
            assert err.code() != grpc.StatusCode.UNAUTHENTICATED or err.details() == "Unauthorized"
            return err.code()
    return grpc.StatusCode.OK


def test_a_grpc_call_without_the_right_token_is_unauthenticated(guarded):
    grpc_port, _ = guarded
    assert _get_instance(grpc_port) == grpc.StatusCode.UNAUTHENTICATED
    assert _get_instance(grpc_port, (("dapr-api-token", "wrong"),)) == grpc.StatusCode.UNAUTHENTICATED
    assert _get_instance(grpc_port, (("dapr-api-token", "s3cret"),)) != grpc.StatusCode.UNAUTHENTICATED


def test_an_http_request_without_the_token_is_401_but_health_is_open(guarded):
    _, http_port = guarded
    base = f"http://127.0.0.1:{http_port}"
    refused = httpx.get(f"{base}/v1.0-beta1/workflows/dapr/x")
    assert (refused.status_code, refused.text) == (401, "invalid api token\n")
    assert httpx.get(f"{base}/v1.0-beta1/workflows/dapr/x", headers={"dapr-api-token": "s3cret"}).status_code != 401
    assert httpx.get(f"{base}/v1.0/healthz").is_success


def test_the_runner_makes_a_token_per_run_and_gives_it_to_every_app(tmp_path: Path):
    (tmp_path / "app.py").write_text(
        textwrap.dedent("""\
        import os, sys, time
        print("TOKEN", os.environ.get("DAPR_API_TOKEN"), flush=True)
        time.sleep(60)
        """)
    )
    (tmp_path / "dapr.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        apps:
          - {appID: one, appDirPath: ., command: ["python", "app.py"]}
          - {appID: two, appDirPath: ., command: ["python", "app.py"]}
        """)
    )
    env = {k: v for k, v in os.environ.items() if k != "DAPR_API_TOKEN"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sidecar",
            "run",
            "-f",
            str(tmp_path / "dapr.yaml"),
            "--state",
            str(tmp_path / "run" / "state.db"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        tokens = []
        deadline = time.monotonic() + 30
        while len(tokens) < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "TOKEN" in line:
                tokens.append(line.split("TOKEN", 1)[1].strip())
    finally:
        proc.terminate()
        proc.wait(20)
    written = (tmp_path / "run" / "api-token").read_text().strip()
    assert len(tokens) == 2 and tokens[0] == tokens[1] == written and len(written) >= 32
    assert oct((tmp_path / "run" / "api-token").stat().st_mode & 0o777) == "0o600"
