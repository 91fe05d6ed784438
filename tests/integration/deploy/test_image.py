"""What the Dockerfile's image runs, checked without a Docker engine (none runs here): its build context (the
Dockerfile's COPY lines) built into the project's wheel, installed into a clean virtualenv from the project's own
metadata, and the commands deploy/ gives each container run from it, outside the repository: every app's migration
(the init container) and every app (its container), each serving /healthz on the pod's address, next to an
engine (the sidecar, from the same install: the image holds it too)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml

from common.db import async_url, ensure_database, libpq_url
from common.migrate import PACKAGES
from devtools.ports import free_port
from tests.support import REPO
from tests.support.processes import sidecar_serving

DOCKERFILE = REPO / "Dockerfile"
APPS = REPO / "deploy" / "base" / "apps"


def build_stage_copies() -> list[str]:
    """What the Dockerfile's build stage copies into its context (``COPY src dest`` lines before the second FROM)."""
    build_stage = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[1]
    return [src for line in build_stage.splitlines() if line.startswith("COPY ") for src in line.split()[1:-1]]


def containers() -> dict[str, tuple[list[str], list[str], dict[str, str]]]:
    """Per app ID: (the migrate init container's command, the app container's command, its plain env values)."""
    found = {}
    for path in sorted(APPS.glob("*.yaml")):
        deployment = next(d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]
        (migrate,) = pod["spec"]["initContainers"]
        (app,) = pod["spec"]["containers"]
        env = {e["name"]: e["value"] for e in app.get("env", []) if "value" in e}
        found[pod["metadata"]["annotations"]["dapr.io/app-id"]] = (migrate["command"], app["command"], env)
    return found


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The image's install as a virtualenv: the build context the Dockerfile copies, its wheel, installed clean."""
    root = tmp_path_factory.mktemp("image")
    context = root / "src"
    context.mkdir()
    for item in build_stage_copies():
        source = REPO / item
        assert source.exists(), f"the Dockerfile copies {item}, which is not in the repository"
        if source.is_dir():
            shutil.copytree(source, context / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, context / item)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    wheels = root / "wheels"
    run = lambda *args: subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True)  # noqa: E731
    built = run("wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels), str(context))
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("dapr_saga_fulfillment-*.whl")
    installed = run("install", "--quiet", str(wheel))
    assert installed.returncode == 0, installed.stderr
    yield python


def in_image(python: Path, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(cwd), **env}
    return subprocess.run([str(python), *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=120)


def test_the_dockerfile_runs_as_a_user_that_is_not_root_on_a_pinned_base_and_installs_only_the_project():
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-bookworm", b) for b in bases), bases
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and all(not u.startswith(("root", "0")) for u in users), users
    assert "pip wheel --no-cache-dir --wheel-dir /wheels ." in text  # from the project's own metadata
    assert re.search(r'^CMD \["python", "-m", "orchestrator"\]', text, flags=re.M)


def test_the_installed_project_has_no_way_back_to_the_repository(image: Path, tmp_path: Path):
    where = in_image(image, "-c", "import common, orchestrator; print(common.__file__, orchestrator.__file__)",
                     env={}, cwd=tmp_path)  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert str(REPO) not in where.stdout and "site-packages" in where.stdout


async def test_each_init_container_migrates_its_apps_own_database_from_the_image(
    image: Path, tmp_path: Path, pg_server_url: str
):
    for app_id, (migrate, _, _) in containers().items():
        package = migrate[-1]
        assert package in PACKAGES and migrate[:3] == ["python", "-m", "common.migrate"], app_id
        database = f"image_{package}_{os.getpid()}"
        await ensure_database(pg_server_url, database)
        done = in_image(image, *migrate[1:], env={"DATABASE_URL": async_url(pg_server_url, database)}, cwd=tmp_path)
        assert done.returncode == 0, f"{app_id}: {done.stdout}{done.stderr}"
        connection = await asyncpg.connect(libpq_url(pg_server_url, database))
        try:
            rows = await connection.fetch("select tablename from pg_tables where schemaname = 'public'")
        finally:
            await connection.close()
        tables = {row[0] for row in rows}
        assert {"alembic_version", "faults"} <= tables and len(tables) > 2, f"{app_id}: {tables}"


def test_each_app_container_serves_from_the_image_beside_an_engine(image: Path, tmp_path: Path, pg_server_url):
    apps = containers()
    with sidecar_serving(list(apps), tmp_path / "state.db", python=str(image), cwd=tmp_path) as engine:
        processes: dict[str, subprocess.Popen[str]] = {}
        urls = {}
        try:
            for app_id, (_, command, env) in apps.items():
                port = free_port()
                grpc_port, _ = engine[app_id]
                app_env = {
                    **env,
                    "APP_PORT": str(port),
                    "POSTGRES_URL": pg_server_url,  # each app makes its own database, as with a server URL
                    "DAPR_GRPC_PORT": str(grpc_port),
                    "PATH": f"{image.parent}:/usr/bin:/bin",
                    "HOME": str(tmp_path),
                }
                assert command[:2] == ["python", "-m"] and env["APP_HOST"] == "0.0.0.0", app_id
                processes[app_id] = subprocess.Popen(
                    [str(image), *command[1:]], cwd=tmp_path, env=app_env, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True,
                )  # fmt: skip
                urls[app_id] = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            pending = dict(urls)
            while pending and time.monotonic() < deadline:
                for app_id, url in list(pending.items()):
                    assert processes[app_id].poll() is None, processes[app_id].communicate()[0]
                    try:
                        if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                            del pending[app_id]
                    except httpx.HTTPError:
                        pass
                time.sleep(0.3)
            assert not pending, f"not serving: {sorted(pending)}"
            # What the wheel must carry besides code: the docs page's assets and the console's page.
            assert httpx.get(f"{urls['order-api']}/console", timeout=5).status_code == 200
            assert httpx.get(f"{urls['payment']}/schema/swagger", timeout=5).status_code == 200
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                process.wait(30)
