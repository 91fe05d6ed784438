"""Fixtures for the sidecar engine tests: a sidecar process serving several app IDs, with workers in
their own processes, driven only through the Dapr workflow SDK (see ``engine_harness``).

``shared``: one sidecar for alpha, beta, gamma and delta, shared by the tests that do not disturb it:
alpha has one worker, beta two (they share its work), gamma one that lacks the ``square`` activity and
the ``collect`` workflow, and delta none (a test connects it late).
``make_cluster``: a fresh sidecar (own state file) for tests that kill things.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from engine_harness import Cluster


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(["alpha", "beta", "gamma", "delta"], tmp_path_factory.mktemp("engine-shared"))
    try:
        cluster.sidecar.start()
        cluster.start_workers(("alpha", "a1"), ("beta", "b1"), ("beta", "b2"), ("gamma", "g1", ("square", "collect")))
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def make_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[list[str]], Cluster]]:
    made: list[Cluster] = []

    def make(apps: list[str]) -> Cluster:
        cluster = Cluster(apps, tmp_path_factory.mktemp("engine"))
        made.append(cluster)
        cluster.sidecar.start()
        return cluster

    yield make
    for cluster in made:
        cluster.close()
