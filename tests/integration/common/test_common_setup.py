"""common set-up on a real PostgreSQL: settings from the environment, database resolution and migration, and the
embedded server that `make run` starts and stops around the system."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import asyncpg
import psutil
import pytest

from common.db import async_url, drop_database, libpq_url
from common.migrate import prepare_database
from common.settings import SettingsError, load_settings
from devtools.devdb import embedded_url


def test_settings_have_the_documented_defaults():
    settings = load_settings("inventory", {})
    assert (settings.port, settings.host, settings.faults_enabled, settings.max_quantity_per_item) == (
        8002,
        "127.0.0.1",
        False,
        10,
    )
    assert (
        settings.retry.first_interval_ms,
        settings.retry.max_attempts,
        settings.retry.backoff,
        settings.retry.max_interval_ms,
    ) == (500, 5, 2.0, 10_000)


def test_settings_read_the_environment():
    settings = load_settings(
        "payment",
        {
            "APP_PORT": "9100",
            "FAULTS_ENABLED": "true",
            "SAGA_RETRY_BACKOFF": "1.5",
            "MAX_QUANTITY_PER_ITEM": "3",
            "APP_HOST": "0.0.0.0",
        },
    )
    assert (
        settings.port,
        settings.faults_enabled,
        settings.retry.backoff,
        settings.max_quantity_per_item,
        settings.host,
    ) == (9100, True, 1.5, 3, "0.0.0.0")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_PORT", "http"),
        ("APP_PORT", "70000"),
        ("FAULTS_ENABLED", "maybe"),
        ("SAGA_RETRY_MAX_ATTEMPTS", "0"),
        ("SAGA_RETRY_BACKOFF", "0.5"),
        ("SAGA_RETRY_FIRST_INTERVAL_MS", "-1"),
        ("MAX_QUANTITY_PER_ITEM", "1.5"),
    ],
)
def test_an_invalid_setting_is_a_clear_error_naming_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings("payment", {name: value})


async def test_postgres_url_gets_a_database_named_after_the_service_created_and_migrated(pg_server_url):
    service = f"svc-{uuid.uuid4().hex[:8]}"
    url = await prepare_database(service, "shipping:migrations", {"POSTGRES_URL": pg_server_url})
    again = await prepare_database(service, "shipping:migrations", {"POSTGRES_URL": pg_server_url})
    name = service.replace("-", "_")
    try:
        assert url == again == async_url(pg_server_url, name)
        conn = await asyncpg.connect(libpq_url(url))
        try:
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == "0001"
            assert await conn.fetchval("SELECT count(*) FROM shipments") == 0
        finally:
            await conn.close()
    finally:
        await drop_database(pg_server_url, name)


async def test_database_url_is_used_as_it_is(database_factory):
    existing = await database_factory("notification", "notification:migrations")
    url = await prepare_database("notification", "notification:migrations", {"DATABASE_URL": libpq_url(existing)})
    assert url == existing


def test_devdb_run_gives_the_command_a_database_and_a_sigterm_stops_the_command_then_the_database(tmp_path):
    # What `make run` execs: a SIGTERM to make must stop the apps' runner and then the embedded PostgreSQL.
    script = "import os, sys, time; print(os.environ['POSTGRES_URL'], flush=True); time.sleep(120)"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.devdb", "run", "--", sys.executable, "-c", script],
        env={**os.environ, "DATA_DIR": str(tmp_path), "POSTGRES_URL": ""},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("postgresql://"), url
        pgdata = tmp_path / "postgres"
        assert embedded_url(pgdata) is not None  # the command got a running server
        child = psutil.Process(proc.pid).children()[0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM  # the command was ended by the SIGTERM passed on
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
        assert embedded_url(pgdata) is None and not (pgdata / "postmaster.pid").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
