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


def _wrong(url: str, *, password: str | None = None, database: str | None = None) -> str:
    """`url` with another password or database name."""
    scheme, rest = url.split("://", 1)
    credentials, location = rest.split("@", 1)
    user = credentials.split(":", 1)[0]
    host, name = location.split("/", 1)
    return f"{scheme}://{user}:{password or credentials.split(':', 1)[1]}@{host}/{database or name}"


def run_app(binary: str, **environment: str) -> subprocess.CompletedProcess:
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    base.update(
        AMQP_URL=e2e.env("PARLEY_TEST_AMQP_URL"), LOG_LEVEL="info", PARLEY_AUTH="off", GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(e2e.free_ports(1)[0]),
        WORKER_PORT=str(e2e.free_ports(1)[0]), LLM_PROVIDER="openai", OPENAI_API_KEY="sim", OPENAI_BASE_URL="http://127.0.0.1:9/v1",
    )
    base.update(environment)
    return subprocess.run([os.path.join(e2e.env("PARLEY_BIN_DIR"), binary)], env=base, capture_output=True, text=True, timeout=60)


def test_a_database_url_the_server_refuses_stops_every_process_with_its_reason():
    """A wrong password or database name is not an outage: retrying it would never
    work. The gateway, the worker and `migrate` stop (status 2) naming DATABASE_URL and
    the server's reason, instead of retrying "database unavailable" for ever."""
    url = e2e.env("PARLEY_TEST_DATABASE_URL")
    cases = {"28P01": _wrong(url, password="not-the-password"), "3D000": _wrong(url, database="no_such_database")}
    for state, wrong in cases.items():
        for binary in ("parley-gateway", "parley-worker"):
            result = run_app(binary, DATABASE_URL=wrong)
            assert result.returncode == 2, f"{binary} with {state}: status {result.returncode}\n{result.stderr[-800:]}"
            assert "DATABASE_URL" in result.stderr and state in result.stderr, f"{binary}: {result.stderr[-800:]}"
        refused = migrate(DATABASE_URL=wrong)
        assert refused.returncode == 2 and "DATABASE_URL" in refused.stderr and state in refused.stderr, refused.stderr[-800:]
