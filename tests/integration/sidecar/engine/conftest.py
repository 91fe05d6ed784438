"""Fixtures for the engine tests: an engine serving several app IDs, with workers in their own processes,
driven only through the Dapr workflow SDK (see ``engine_harness``). Every fixture runs once per engine:
``sidecar`` (``python -m sidecar serve``) and ``dapr`` (real placement, scheduler and one daprd per app on a
PostgreSQL state store), as ``--engine`` chooses; the ``dapr`` variant is skipped, saying why, when the Dapr
binaries are missing. A test about the sidecar alone is marked ``@pytest.mark.sidecar_only``.

``shared``: one engine for alpha, beta, gamma and delta, shared by the tests that do not disturb it:
alpha has one worker, beta two (they share its work), gamma one that lacks the ``square`` activity and
the ``collect`` workflow, and delta none (a test connects it late).
``make_cluster``: a fresh engine (own state) for tests that kill things.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.db import drop_database, ensure_database, libpq_url
from realdapr import DAPR_VERSION
from realdapr.binaries import DaprBinaries, DaprError, find
from tests.support.engine_harness import Cluster, Daprd, Sidecar

ENGINES = ("sidecar", "dapr")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sidecar_only: a test of the sidecar itself (its state file, command line "
        "or log), not of daprd's behaviour; runs on the sidecar engine only",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that uses an engine fixture runs once per engine, under the same ID suffix as the e2e lanes.
    if "engine" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--engine")
        engines = [e for e in ENGINES if chosen in ("both", e)]
        if metafunc.definition.get_closest_marker("sidecar_only") is not None:
            engines = [e for e in engines if e == "sidecar"]
        # A sidecar-only test with --engine dapr gets no parameter, which pytest reports as a skip.
        metafunc.parametrize("engine", engines, scope="session")


_binaries: dict[str, DaprBinaries | str] = {}


def _dapr_or_skip(config: pytest.Config) -> DaprBinaries:
    if "found" not in _binaries:
        try:
            found = find()
        except DaprError as exc:
            found = f"daprd engine skipped: {exc}"
        _binaries["found"] = found or f"daprd engine skipped: no Dapr {DAPR_VERSION} binaries (`make dapr` builds them)"
    found = _binaries["found"]
    if isinstance(found, str):
        pytest.skip(found)
    return found


class _Engines:
    """Builds a Cluster's engine, and drops the PostgreSQL databases the daprd ones used."""

    def __init__(self, request: pytest.FixtureRequest, engine: str) -> None:
        self.request, self.kind = request, engine
        self.databases: list[str] = []

    def make(self, apps: list[str], workdir: Path, policies: str | None = None) -> Cluster:
        """``policies``: the text of WorkflowAccessPolicy resources the engine loads (the sidecar with
        ``--policies``, daprd from its resources folder)."""
        if policies is not None:
            (workdir / "resources").mkdir(parents=True, exist_ok=True)
            (workdir / "resources" / "policies.yaml").write_text(policies)
        if self.kind == "sidecar":
            policy_args = ["--policies", str(workdir / "resources" / "policies.yaml")] if policies else []
            return Cluster(Sidecar(apps, workdir / "state.db", workdir / "sidecar.log", policy_args), workdir)
        dapr = _dapr_or_skip(self.request.config)
        server = self.request.getfixturevalue("pg_server_url")
        name = f"engine_wf_{uuid.uuid4().hex[:10]}"
        asyncio.run(ensure_database(server, name))
        self.databases.append(name)
        return Cluster(Daprd(apps, dapr, libpq_url(server, name), workdir), workdir)

    def drop(self) -> None:
        if self.databases:
            server = self.request.getfixturevalue("pg_server_url")
            for name in self.databases:
                asyncio.run(drop_database(server, name))


@pytest.fixture(scope="session")
def shared(request: pytest.FixtureRequest, engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    engines = _Engines(request, engine)
    cluster = engines.make(["alpha", "beta", "gamma", "delta"], tmp_path_factory.mktemp(f"engine-shared-{engine}"))
    try:
        cluster.engine.start()
        cluster.start_workers(("alpha", "a1"), ("beta", "b1"), ("beta", "b2"), ("gamma", "g1", ("square", "collect")))
        yield cluster
    finally:
        cluster.close()
        engines.drop()


@pytest.fixture
def make_cluster(
    request: pytest.FixtureRequest, engine: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Cluster]]:
    engines = _Engines(request, engine)
    made: list[Cluster] = []

    def make(apps: list[str], policies: str | None = None) -> Cluster:
        cluster = engines.make(apps, tmp_path_factory.mktemp(f"engine-{engine}"), policies)
        made.append(cluster)
        cluster.engine.start()
        return cluster

    yield make
    for cluster in made:
        cluster.close()
    engines.drop()
