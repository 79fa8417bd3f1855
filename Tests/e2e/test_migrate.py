"""`parley-worker migrate`: the one-shot database step of a deployment."""

from __future__ import annotations

import os
import subprocess

import parley_e2e as e2e
from parley_e2e import psql


def migrate(**environment: str) -> subprocess.CompletedProcess:
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    base.update(DATABASE_URL=e2e.env("PARLEY_TEST_DATABASE_URL"), LOG_LEVEL="info")
    base.update(environment)
    binary = os.path.join(e2e.env("PARLEY_BIN_DIR"), "parley-worker")
    return subprocess.run([binary, "migrate"], env=base, capture_output=True, text=True, timeout=60)


def test_migrate_prepares_the_database_and_exits(stack):
    result = migrate(TOPICS_FILE=str(e2e.TOPICS_FILE))
    assert result.returncode == 0, result.stderr
    assert "database ready" in result.stderr
    versions = psql("SELECT max(version) FROM schema_migrations")
    assert int(versions[0][0]) >= 4, versions
    assert psql("SELECT title FROM topics WHERE id = 201") == [["Variáveis e tipos"]]


def test_migrate_fails_clearly_without_a_database_or_with_a_bad_catalog():
    (port,) = e2e.free_ports(1)
    down = migrate(DATABASE_URL=f"postgres://parley:parley@127.0.0.1:{port}/parley", MIGRATE_TIMEOUT_SECONDS="2")
    assert down.returncode == 1 and "migrations failed" in down.stderr, down.stderr[-500:]
    bad = migrate(TOPICS_FILE="/nonexistent/topics.json")
    assert bad.returncode == 2 and "TOPICS_FILE" in bad.stderr, bad.stderr
