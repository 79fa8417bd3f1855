"""Helpers of the end-to-end suite: the process stack, a WebSocket client, JWTs,
PostgreSQL queries and polling with deadlines.

The suite drives the real binaries (parley-gateway, parley-worker, parley-llm-sim)
against the real RabbitMQ and PostgreSQL that scripts/test.sh started, through the
`websockets` package, a WebSocket client that has nothing to do with the server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import websockets
from websockets.asyncio.client import connect as ws_connect

REQUIRED_ENV = (
    "PARLEY_TEST_AMQP_URL",
    "PARLEY_TEST_DATABASE_URL",
    "PARLEY_BIN_DIR",
    "PARLEY_TEST_RABBITMQ_DIR",
    "PARLEY_TEST_SCRIPTS",
    "PARLEY_TEST_POSTGRES_DIR",
    "PARLEY_TEST_POSTGRES_PORT",
)

BINARIES = ("parley-gateway", "parley-worker", "parley-llm-sim", "parley-load")

# Fixed test credentials: the gateways are started with them.
JWT_SECRET = "e2e-secret-0123456789abcdefghijk"  # 32 bytes
assert len(JWT_SECRET) == 32
API_KEY = "e2e-api-key-4f1c9a"
API_KEY_USER = "apikey-user"
ADMIN_KEY = "e2e-admin-key-0123456789"
REPO_ROOT = Path(__file__).resolve().parents[2]
TOPICS_FILE = REPO_ROOT / "config" / "topics.example.json"

WORKER_COUNT = 3
WORKER_CONCURRENCY = 4
GATEWAY_COUNT = 2
SIM_LATENCY_MS = 20

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def missing_env() -> list[str]:
    return [name for name in REQUIRED_ENV if not os.environ.get(name)]


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set (scripts/test.sh sets it)")
    return value


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open until all are known)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------- polling


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Polls `condition` until it returns something truthy; fails naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = condition()
            if result:
                return result
            last_error = None
        except Exception as error:  # noqa: BLE001 - reported below
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}{detail}")
        time.sleep(interval)


async def async_wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = await asyncio.to_thread(condition)
            if result:
                return result
            last_error = None
        except Exception as error:  # noqa: BLE001
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}{detail}")
        await asyncio.sleep(interval)


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    """(status, body) of a GET; status 0 when nothing answered."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError):
        return 0, ""


def rest(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 30.0) -> tuple[int, Any]:
    """(status, parsed JSON or text) of a REST call; `body` is sent as JSON (a str as is)."""
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        data = (body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def run(coro, timeout: float = 60.0):
    """Runs one test's coroutine with an overall deadline."""

    async def bounded():
        try:
            return await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"the test's scenario did not finish within {timeout:.0f} s") from None

    return asyncio.run(bounded())


# ---------------------------------------------------------------- auth


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(sub: str | None, *, secret: str = JWT_SECRET, expires_in: int = 3600, claims: dict | None = None) -> str:
    """An HS256 JWT signed with hmac/hashlib (no JWT library)."""
    header = {"alg": "HS256", "typ": "JWT"}
    payload: dict[str, Any] = {"exp": int(time.time()) + expires_in}
    if sub is not None:
        payload["sub"] = sub
    payload.update(claims or {})
    signing_input = _b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + _b64url(
        json.dumps(payload, separators=(",", ":")).encode()
    )
    signature = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64url(signature)


# ---------------------------------------------------------------- PostgreSQL

_FIELD_SEP = "\x1f"
_RECORD_SEP = "\x1e"


def psql(sql: str) -> list[list[str]]:
    """Rows of a query run with the psql CLI against PARLEY_TEST_DATABASE_URL."""
    result = subprocess.run(
        ["psql", env("PARLEY_TEST_DATABASE_URL"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-F", _FIELD_SEP, "-R", _RECORD_SEP, "-c", sql],
        capture_output=True, text=True, timeout=30,
    )
    if result.returncode != 0:
        raise RuntimeError(f"psql failed ({result.returncode}) for {sql!r}: {result.stderr.strip()}")
    text = result.stdout
    if text.endswith("\n"):
        text = text[:-1]
    if not text:
        return []
    return [record.split(_FIELD_SEP) for record in text.split(_RECORD_SEP)]


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class StoredMessage:
    id: int
    session_id: str
    turn_id: str
    role: str
    content: str


def stored_messages(session_ids: list[str] | str) -> list[StoredMessage]:
    if isinstance(session_ids, str):
        session_ids = [session_ids]
    if not session_ids:
        return []
    ids = ",".join(sql_literal(s) for s in session_ids)
    rows = psql(
        f"SELECT id, session_id, turn_id, role, content FROM messages WHERE session_id IN ({ids}) ORDER BY id"
    )
    return [StoredMessage(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def session_row(session_id: str) -> dict[str, str] | None:
    rows = psql(f"SELECT id, user_id, status FROM sessions WHERE id = {sql_literal(session_id)}")
    if not rows:
        return None
    return {"id": rows[0][0], "user_id": rows[0][1], "status": rows[0][2]}


def duplicate_turn_roles(session_ids: list[str]) -> list[list[str]]:
    ids = ",".join(sql_literal(s) for s in session_ids)
    return psql(
        f"SELECT turn_id, role, count(*) FROM messages WHERE session_id IN ({ids}) "
        "GROUP BY turn_id, role HAVING count(*) > 1"
    )


# ---------------------------------------------------------------- expected texts


def reply_text(n: int, content: str) -> str:
    """What the simulator answers to the n-th user message of a conversation."""
    return f'Resposta {n}: você disse "{content}".'


# ---------------------------------------------------------------- the learning platform


class FakePlatform:
    """The upstream learning platform, on a local port: the three context reads from
    its tables and `POST /api/v1/userprogress/complete-topic`, which it records.
    `read_failures` / `completion_failures` make the next N such calls answer 503;
    `refuse_completions` makes every completion answer 503 until it is cleared."""

    TOPICS = {
        7001: {
            "title": "Equações do 1º grau",
            "description": "Resolver equações como 2x + 3 = 7.",
            "learningObjectives": ["isolar a incógnita", "verificar a solução"],
        },
    }
    COURSES = {70: {"course": {"id": 70, "title": "Álgebra"}, "progress": 0.4}}

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.read_failures = 0
        self.completion_failures = 0
        self.refuse_completions = False
        self.reads: list[str] = []
        self.completion_calls = 0
        self.completions: list[tuple[dict, str]] = []  # (payload, Idempotency-Key)
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: Any = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                parts = self.path.strip("/").split("/")
                with platform.lock:
                    platform.reads.append(self.path)
                    if platform.read_failures > 0:
                        platform.read_failures -= 1
                        return self._send(503, {"error": "try later"})
                if parts[:3] == ["api", "v1", "trainingtopics"] and len(parts) == 4:
                    topic = FakePlatform.TOPICS.get(int(parts[3]) if parts[3].isdigit() else -1)
                    return self._send(200, topic) if topic else self._send(404, {"error": "no such topic"})
                if parts[:3] == ["api", "v1", "userprogress"] and len(parts) == 5 and parts[4] == "context":
                    return self._send(200, {"userLevel": "advanced", "completedTopicIds": [7000], "struggleTopics": ["frações"]})
                if parts[:3] == ["api", "v1", "userprogress"] and len(parts) == 6 and parts[4] == "course":
                    course = FakePlatform.COURSES.get(int(parts[5]) if parts[5].isdigit() else -1)
                    return self._send(200, course) if course else self._send(404, {"error": "no such course"})
                return self._send(404, {"error": "unknown path"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/api/v1/userprogress/complete-topic":
                    return self._send(404, {"error": "unknown path"})
                with platform.lock:
                    platform.completion_calls += 1
                    if platform.refuse_completions or platform.completion_failures > 0:
                        platform.completion_failures = max(0, platform.completion_failures - 1)
                        return self._send(503, {"error": "try later"})
                    platform.completions.append((payload, self.headers.get("Idempotency-Key", "")))
                return self._send(200, {"ok": True})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-platform", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def completions_for(self, session_id: str) -> list[dict]:
        with self.lock:
            return [payload for payload, _ in self.completions if payload.get("sessionId") == session_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- the WhatsApp Cloud API


WHATSAPP_APP_SECRET = "e2e-whatsapp-app-secret"
WHATSAPP_VERIFY_TOKEN = "e2e-verify-token"
WHATSAPP_ACCESS_TOKEN = "e2e-graph-access-token"
WHATSAPP_BOT_KEY = "e2e-whatsapp-bot-key-0123"
WHATSAPP_PHONE_NUMBER_ID = "106540352242922"


class FakeGraph:
    """The WhatsApp Cloud API's Graph API, on a local port: `POST /{phone-number-id}/messages`
    (recorded), `GET /{media-id}` (where a voice note is) and the media file itself.
    Every call must carry the access token. `send_failures` makes the next N sends
    answer 503; `refuse_sends` makes every send answer 503 until it is cleared;
    `stall_downloads` makes the next N media files stall half-way."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[dict] = []  # {"phone_number_id", "to", "text"}
        self.send_calls = 0
        self.send_failures = 0
        self.refuse_sends = False
        self.media: dict[str, bytes] = {}
        # The next N media downloads send half the file and stall.
        self.stall_downloads = 0
        self.unauthorized = 0
        graph = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: Any = None, raw: bytes | None = None, content_type: str = "application/json") -> None:
                data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {WHATSAPP_ACCESS_TOKEN}":
                    return True
                with graph.lock:
                    graph.unauthorized += 1
                self._send(401, {"error": {"message": "Invalid OAuth access token", "code": 190}})
                return False

            def do_GET(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                parts = self.path.strip("/").split("/")
                with graph.lock:
                    if len(parts) == 2 and parts[0] == "media-files" and parts[1] in graph.media:
                        data = graph.media[parts[1]]
                        if graph.stall_downloads > 0:
                            graph.stall_downloads -= 1
                            stall = True
                        else:
                            stall = False
                    else:
                        stall = None
                if stall is False:
                    return self._send(200, raw=data, content_type="audio/ogg")
                if stall:
                    # The head and half the body, then nothing: a host that stalls.
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/ogg")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    time.sleep(30)
                    return
                with graph.lock:
                    if len(parts) == 1 and parts[0] in graph.media:
                        return self._send(200, {"messaging_product": "whatsapp", "id": parts[0], "mime_type": "audio/ogg; codecs=opus",
                                                "file_size": len(graph.media[parts[0]]), "url": f"{graph.url}/media-files/{parts[0]}"})
                return self._send(404, {"error": {"message": "Unsupported get request", "code": 100}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self._authorized():
                    return
                parts = self.path.strip("/").split("/")
                if len(parts) != 2 or parts[1] != "messages":
                    return self._send(404, {"error": {"message": "Unknown path", "code": 100}})
                payload = json.loads(raw or b"{}")
                with graph.lock:
                    graph.send_calls += 1
                    if graph.refuse_sends or graph.send_failures > 0:
                        graph.send_failures = max(0, graph.send_failures - 1)
                        return self._send(503, {"error": {"message": "Service temporarily unavailable", "code": 2}})
                    graph.sent.append({"phone_number_id": parts[0], "to": payload.get("to"), "text": (payload.get("text") or {}).get("body")})
                return self._send(200, {"messaging_product": "whatsapp", "contacts": [{"input": payload.get("to"), "wa_id": payload.get("to")}],
                                        "messages": [{"id": "wamid.out." + secrets.token_hex(8)}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-graph", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def sent_to(self, number: str) -> list[str]:
        with self.lock:
            return [m["text"] for m in self.sent if m["to"] == number]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def whatsapp_delivery(messages: list[dict], statuses: list[dict] | None = None) -> bytes:
    """A Cloud API webhook body with `messages` received by the test business number."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": WHATSAPP_PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Tester"}, "wa_id": m["from"]} for m in messages[:1]],
        "messages": messages,
    }
    if statuses:
        value["statuses"] = statuses
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}).encode()


def whatsapp_text(number: str, text: str, message_id: str | None = None) -> dict:
    return {"from": number, "id": message_id or "wamid." + secrets.token_hex(12), "timestamp": str(int(time.time())),
            "type": "text", "text": {"body": text}}


def whatsapp_post(url: str, body: bytes, secret: str | None = WHATSAPP_APP_SECRET, timeout: float = 10.0) -> tuple[int, Any]:
    """POSTs a webhook delivery as the Cloud API does, signed with `secret`."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url + "/whatsapp/webhook", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def whatsapp_number() -> str:
    """A Brazilian mobile number no other test uses."""
    return "55119" + "".join(secrets.choice("0123456789") for _ in range(8))


def whatsapp_deliver(stack: "Stack", messages: list[dict], gateway: int = 0, **kwargs) -> dict:
    """Delivers `messages` to a gateway's webhook, signed; asserts the 200."""
    status, body = whatsapp_post(stack.http_url(gateway), whatsapp_delivery(messages, **kwargs))
    assert status == 200, (status, body)
    return body


def whatsapp_replies(stack: "Stack", number: str, count: int, timeout: float = 30) -> list[str]:
    """The texts the fake Graph API was given for `number`, once there are `count`."""
    return wait_until(
        lambda: (lambda sent: sent if len(sent) >= count else None)(stack.graph.sent_to(number)),
        timeout, f"{count} WhatsApp replies to {number}",
    )


def whatsapp_rows(number: str) -> list[list[str]]:
    """The number's stored messages, oldest first: id, state, text, submissions."""
    return psql(
        "SELECT message_id, state, coalesce(text, ''), submissions FROM whatsapp_messages "
        f"WHERE sender = {sql_literal(number)} ORDER BY seq"
    )


# ---------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    health_url: str | None = None
    popen: subprocess.Popen | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def start(self) -> "Proc":
        log = open(self.log_path, "ab")
        try:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        assert self.health_url

        def ready():
            if not self.alive():
                raise ProcessExited(f"{self.name} exited with status {self.popen.returncode}:\n{self.tail(30)}")
            return http_get(self.health_url)[0] == 200

        deadline = time.monotonic() + timeout
        while True:
            if ready():
                return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.name} did not answer 200 on {self.health_url} within {timeout:.0f} s "
                    f"(last: {http_get(self.health_url)}):\n{self.tail(30)}"
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL (a crash) and reap."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def tail(self, lines: int = 40, since: int = 0) -> str:
        """The last `lines` lines of the log, of what was written after byte `since`."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(since)
                data = log.read()
        except OSError:
            return "(no log)"
        text = data.decode("utf-8", "replace").splitlines()
        if not text:
            return "(nothing logged)"
        skipped = len(text) - lines
        shown = text[-lines:]
        return ("\n".join([f"... ({skipped} earlier lines)"] + shown)) if skipped > 0 else "\n".join(shown)


class ProcessExited(RuntimeError):
    pass


class Stack:
    """The Parley processes of one test session, on free ports, with their own
    AMQP prefix so that nothing is shared with other tests on the same broker."""

    def __init__(self) -> None:
        self.bin_dir = Path(env("PARLEY_BIN_DIR"))
        self.amqp_url = env("PARLEY_TEST_AMQP_URL")
        self.database_url = env("PARLEY_TEST_DATABASE_URL")
        self.rabbitmq_dir = env("PARLEY_TEST_RABBITMQ_DIR")
        self.scripts_dir = env("PARLEY_TEST_SCRIPTS")
        self.prefix = "e2e" + secrets.token_hex(4)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"parley-{self.prefix}-"))
        self.procs: list[Proc] = []
        self.sim: Proc | None = None
        self.workers: list[Proc] = []
        self.gateways: list[Proc] = []
        self.platform: FakePlatform | None = None
        self.graph: FakeGraph | None = None
        self._worker_serial = 0
        # Processes that ignored SIGTERM for STOP_TIMEOUT seconds at teardown.
        self.needed_sigkill: list[str] = []

    # -- environment

    def _base_env(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
        base = {k: os.environ[k] for k in keep if k in os.environ}
        base.update(
            AMQP_URL=self.amqp_url,
            DATABASE_URL=self.database_url,
            AMQP_PREFIX=self.prefix,
            LOG_LEVEL="info",
        )
        # Through PgBouncer (scripts/test.sh's "through PgBouncer" step).
        if "DATABASE_POOLER" in os.environ:
            base["DATABASE_POOLER"] = os.environ["DATABASE_POOLER"]
        return base

    def _binary(self, name: str) -> str:
        path = self.bin_dir / name
        if not path.is_file() or not os.access(path, os.X_OK):
            raise RuntimeError(f"{path} is missing or not executable (PARLEY_BIN_DIR={self.bin_dir}); run swift build")
        return str(path)

    def _add(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc.start()

    # -- processes

    def start_sim(self) -> Proc:
        (port,) = free_ports(1)
        environment = self._base_env()
        environment.update(LLM_SIM_HOST="127.0.0.1", LLM_SIM_PORT=str(port), LLM_SIM_LATENCY_MS=str(SIM_LATENCY_MS))
        self.sim = self._add(
            Proc("llm-sim", [self._binary("parley-llm-sim")], environment, self.tmp / "llm-sim.log",
                 health_url=f"http://127.0.0.1:{port}/health", extra={"port": port})
        )
        return self.sim

    @property
    def sim_url(self) -> str:
        assert self.sim
        return f"http://127.0.0.1:{self.sim.extra['port']}"

    def sim_stats(self) -> dict[str, int]:
        status, body = http_get(self.sim_url + "/sim/stats")
        if status != 200:
            raise AssertionError(f"GET /sim/stats answered {status}: {body!r}")
        return json.loads(body)

    def start_worker(self) -> Proc:
        (port,) = free_ports(1)
        self._worker_serial += 1
        worker_id = f"{self.prefix}-w{self._worker_serial}"
        environment = self._base_env()
        environment.update(
            WORKER_ID=worker_id,
            WORKER_HOST="127.0.0.1",
            WORKER_PORT=str(port),
            # Gemini first, OpenAI as the fallback: both wire protocols on every run.
            LLM_PROVIDER="gemini",
            LLM_FALLBACK="openai",
            GEMINI_BASE_URL=f"{self.sim_url}/v1beta",
            GEMINI_API_KEY="sim",
            OPENAI_BASE_URL=f"{self.sim_url}/v1",
            OPENAI_API_KEY="sim",
            LLM_RETRY_BASE_MS="50",
            LLM_RETRY_MAX_MS="200",
            # Fault tests must not open a circuit for the tests after them.
            LLM_BREAKER_FAILURES="1000",
            WORKER_CONCURRENCY=str(WORKER_CONCURRENCY),
            TURN_RETRY_PAUSE_MS="200",
            # The catalog for sessions started on the catalog gateway, and the platform
            # that every completion of a topic session is sent to.
            TOPICS_FILE=str(TOPICS_FILE),
            PLATFORM_API_URL=self.platform.url if self.platform else "",
            PLATFORM_RETRY_BASE_MS="100",
            PLATFORM_RETRY_MAX_MS="400",
            OUTBOX_POLL_MS="100",
            # Within the harness's STOP_TIMEOUT: turns still running are cancelled.
            SHUTDOWN_TIMEOUT_SECONDS="7",
        )
        proc = self._add(
            Proc(f"worker {worker_id}", [self._binary("parley-worker")], environment, self.tmp / f"{worker_id}.log",
                 health_url=f"http://127.0.0.1:{port}/health", extra={"port": port, "id": worker_id})
        )
        self.workers.append(proc)
        return proc

    def start_gateway(self, index: int, extra_env: dict[str, str] | None = None) -> Proc:
        port, internal_port, grpc_port = free_ports(3)
        gateway_id = f"{self.prefix}-gw{index + 1}"
        environment = self._base_env()
        environment.update(
            GATEWAY_ID=gateway_id,
            GATEWAY_HOST="127.0.0.1",
            GATEWAY_PORT=str(port),
            GATEWAY_INTERNAL_PORT=str(internal_port),
            GRPC_PORT=str(grpc_port),
            PARLEY_AUTH="on",
            JWT_SECRET=JWT_SECRET,
            API_KEYS=f"{API_KEY}:{API_KEY_USER}",
            ADMIN_API_KEYS=ADMIN_KEY,
            REPLY_TIMEOUT_SECONDS="60",
            # Every test client comes from 127.0.0.1 and some open dozens of sockets and
            # sessions per user at once: the abuse limits are tested on a gateway of
            # their own (test_limits.py).
            RATE_TURNS_PER_MINUTE="0",
            RATE_STARTS_PER_MINUTE="0",
            RATE_CANCELS_PER_MINUTE="0",
            RATE_RESUMES_PER_MINUTE="0",
            RATE_SOCKETS_PER_MINUTE="0",
            MAX_SOCKETS_PER_USER="1000",
            # The WhatsApp channel, on the fake Graph API; voice notes go to the simulator.
            WHATSAPP_APP_SECRET=WHATSAPP_APP_SECRET,
            WHATSAPP_VERIFY_TOKEN=WHATSAPP_VERIFY_TOKEN,
            WHATSAPP_ACCESS_TOKEN=WHATSAPP_ACCESS_TOKEN,
            WHATSAPP_GRAPH_URL=self.graph.url if self.graph else "http://127.0.0.1:9",
            WHATSAPP_RETRY_BASE_MS="100",
            WHATSAPP_RETRY_MAX_MS="500",
            # A crashed gateway's messages wait this long for another one.
            WHATSAPP_CLAIM_SECONDS="4",
            WHATSAPP_TIMEOUT_SECONDS="3",
            WHATSAPP_API_KEYS=WHATSAPP_BOT_KEY,
            TRANSCRIPTION_URL=f"{self.sim_url}/v1",
            TRANSCRIPTION_API_KEY="sim",
        )
        environment.update(extra_env or {})
        # The first gateway takes session context from the platform, the second from
        # the topic catalog.
        if index == 0 and self.platform:
            environment.update(PLATFORM_API_URL=self.platform.url, PLATFORM_MAX_ATTEMPTS="3", PLATFORM_RETRY_BASE_MS="100", PLATFORM_RETRY_MAX_MS="200")
        proc = self._add(
            Proc(f"gateway {gateway_id}", [self._binary("parley-gateway")], environment, self.tmp / f"{gateway_id}.log",
                 health_url=f"http://127.0.0.1:{port}/health",
                 extra={"port": port, "internal_port": internal_port, "grpc_port": grpc_port, "id": gateway_id})
        )
        self.gateways.append(proc)
        return proc

    def ws_url(self, gateway: int = 0) -> str:
        return f"ws://127.0.0.1:{self.gateways[gateway].extra['port']}/ws"

    def http_url(self, gateway: int = 0) -> str:
        return f"http://127.0.0.1:{self.gateways[gateway].extra['port']}"

    def internal_url(self, gateway: int = 0) -> str:
        """The gateway's operators' listener: /metrics and /health with details."""
        return f"http://127.0.0.1:{self.gateways[gateway].extra['internal_port']}"

    def api(self, method: str, path: str, body: Any = None, token: str | None = None, gateway: int = 0, timeout: float = 30.0) -> tuple[int, Any]:
        """A REST call to a gateway."""
        return rest(method, self.http_url(gateway) + path, body, token, timeout)

    def live_workers(self) -> list[Proc]:
        return [w for w in self.workers if w.alive()]

    def start(self) -> None:
        started = time.monotonic()
        self.platform = FakePlatform()
        self.graph = FakeGraph()
        self.start_sim().wait_healthy()
        for _ in range(WORKER_COUNT):
            self.start_worker()
        for worker in self.workers:
            worker.wait_healthy()
        # A healthy worker has declared the topology (the turns queue among it).
        self.topology_declared_at = time.monotonic()
        # The workers apply the migrations; the gateways need the tables.
        wait_until(
            lambda: psql("SELECT to_regclass('public.sessions') IS NOT NULL AND to_regclass('public.messages') IS NOT NULL")
            == [["t"]],
            STARTUP_TIMEOUT, "the workers' migrations (tables sessions and messages)", interval=0.2,
        )
        for index in range(GATEWAY_COUNT):
            self.start_gateway(index)
        for gateway in self.gateways:
            gateway.wait_healthy()
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        # Gateways first (they hold the sockets), then workers, then the simulator.
        order = list(self.gateways) + list(self.workers) + ([self.sim] if self.sim else [])
        order += [p for p in self.procs if p not in order]
        for proc in order:
            proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in order:
            if proc.popen is None:
                continue
            try:
                proc.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.needed_sigkill.append(proc.name)
                proc.popen.send_signal(signal.SIGKILL)
                proc.popen.wait(timeout=STOP_TIMEOUT)
        # Last: a worker may be finishing a request to the platform, a gateway one to
        # the Graph API.
        if self.platform:
            self.platform.stop()
        if self.graph:
            self.graph.stop()

    def log_marks(self) -> dict[str, int]:
        """Where every log ends now (to show only what a test wrote)."""
        return {proc.name: proc.log_size() for proc in self.procs}

    def log_tails(self, lines: int = 40, since: dict[str, int] | None = None) -> str:
        parts = []
        for proc in self.procs:
            state = "running" if proc.alive() else f"exited ({proc.popen.returncode if proc.popen else 'not started'})"
            offset = (since or {}).get(proc.name, 0)
            scope = "during the test" if offset else "whole log"
            parts.append(
                f"----- {proc.name} [pid {proc.pid}, {state}] {proc.log_path} ({scope}, at most {lines} lines)\n"
                f"{proc.tail(lines, since=offset)}"
            )
        return "\n".join(parts)

    def cleanup_tmp(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- broker outage

    def postgres(self, action: str) -> None:
        """Stops or starts the test PostgreSQL (same directory, same port, same data)."""
        arguments = [action, env("PARLEY_TEST_POSTGRES_DIR")]
        if action == "start":
            arguments += [env("PARLEY_TEST_POSTGRES_PORT"), "throwaway"]
        result = subprocess.run(
            ["bash", os.path.join(self.scripts_dir, "lib", "postgres.sh"), *arguments],
            capture_output=True, text=True, timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"postgres.sh {action} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def rabbitmq(self, action: str) -> None:
        result = subprocess.run(
            ["bash", os.path.join(self.scripts_dir, "lib", "rabbitmq.sh"), action, self.rabbitmq_dir],
            capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmq.sh {action} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


# ---------------------------------------------------------------- WebSocket client


class Client:
    """One WebSocket of the `websockets` package, with frame expectations.

    `delta` frames are recorded but skipped by `recv`: the protocol allows any
    number of them before a `reply`."""

    def __init__(self, ws, label: str) -> None:
        self.ws = ws
        self.label = label
        self.frames: list[dict] = []  # every frame received, deltas included
        self.deltas: list[dict] = []
        self.backlog: list[dict] = []  # non-delta frames read by `pump_until`, not yet returned by `recv`

    @classmethod
    async def connect(cls, url: str, token: str | None = None, *, via_query: bool = False, label: str = "") -> "Client":
        headers = {}
        if token is not None:
            if via_query:
                url = f"{url}?token={token}"
            else:
                headers["Authorization"] = f"Bearer {token}"
        ws = await ws_connect(
            url, additional_headers=headers, proxy=None, compression=None, open_timeout=10,
            ping_interval=None, max_size=None, close_timeout=5,
        )
        return cls(ws, label or url)

    async def send(self, frame: dict | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame, ensure_ascii=False))

    async def message(self, content: str, *, session_id: str | None = None, client_msg_id: str | None = None) -> None:
        frame: dict[str, Any] = {"type": "message", "content": content}
        if session_id is not None:
            frame["session_id"] = session_id
        if client_msg_id is not None:
            frame["client_msg_id"] = client_msg_id
        await self.send(frame)

    async def pump_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Reads frames (keeping the non-delta ones for `recv`) until `condition()` holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                raw = await asyncio.wait_for(self.ws.recv(), remaining)
            except asyncio.TimeoutError:
                raise AssertionError(f"[{self.label}] not {what} within {timeout:.1f} s; frames so far: {self._recent()}") from None
            frame = json.loads(raw)
            self.frames.append(frame)
            if frame.get("type") == "delta":
                self.deltas.append(frame)
            else:
                self.backlog.append(frame)

    async def recv(self, timeout: float = 15.0, *, waiting_for: str = "a frame") -> dict:
        """The next frame that is not a delta."""
        if self.backlog:
            return self.backlog.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                raw = await asyncio.wait_for(self.ws.recv(), remaining)
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"[{self.label}] no {waiting_for} within {timeout:.1f} s; frames so far: {self._recent()}"
                ) from None
            except websockets.ConnectionClosed as closed:
                raise AssertionError(
                    f"[{self.label}] socket closed ({closed}) while waiting for {waiting_for}; frames so far: {self._recent()}"
                ) from None
            assert isinstance(raw, str), f"[{self.label}] the server sent a binary frame: {raw!r}"
            frame = json.loads(raw)
            self.frames.append(frame)
            if frame.get("type") == "delta":
                self.deltas.append(frame)
                continue
            return frame

    async def expect(self, type_: str, timeout: float = 15.0, **fields: Any) -> dict:
        """The next non-delta frame, which must be of `type_` with `fields`."""
        want = f"a {type_!r} frame" + (f" with {fields}" if fields else "")
        frame = await self.recv(timeout, waiting_for=want)
        assert frame.get("type") == type_, f"[{self.label}] expected {want}, got {frame}"
        for key, value in fields.items():
            assert frame.get(key) == value, f"[{self.label}] expected {want}; {key}={frame.get(key)!r} in {frame}"
        return frame

    async def expect_error(self, code: str, timeout: float = 15.0, **fields: Any) -> dict:
        return await self.expect("error", timeout, code=code, **fields)

    async def expect_turn(
        self, *, session_id: str, content: str, n: int, client_msg_id: str | None = None, timeout: float = 20.0
    ) -> tuple[dict, dict]:
        """`accepted` then `reply` with the simulator's n-th answer to `content`."""
        accepted = await self.expect("accepted", timeout, session_id=session_id, client_msg_id=client_msg_id)
        reply = await self.expect_reply(session_id=session_id, turn_id=accepted["turn_id"], text=reply_text(n, content), timeout=timeout)
        return accepted, reply

    async def expect_reply(
        self, *, session_id: str, turn_id: str | None, text: str, timeout: float = 20.0, after_resets: bool = False
    ) -> dict:
        """The turn's `reply`. With `after_resets`, `reset` frames of the turn may come
        first (a redelivered turn starts with one: an earlier attempt may have streamed)."""
        fields: dict[str, Any] = {"session_id": session_id, "status": "active", "completed": False}
        if turn_id is not None:
            fields["turn_id"] = turn_id
        if after_resets:
            deadline = time.monotonic() + timeout
            while True:
                frame = await self.recv(max(deadline - time.monotonic(), 0.01), waiting_for=f"the reply of {turn_id}")
                if frame.get("type") == "reset" and frame.get("turn_id") == turn_id:
                    continue
                self.backlog.insert(0, frame)
                break
        reply = await self.expect("reply", timeout, **fields)
        message = reply.get("message") or {}
        assert message.get("role") == "assistant", f"[{self.label}] reply message is not the assistant's: {reply}"
        assert message.get("content") == text, f"[{self.label}] reply text {message.get('content')!r} != {text!r}"
        assert isinstance(message.get("id"), int) and message["id"] > 0, f"[{self.label}] reply message has no id: {reply}"
        assert isinstance(message.get("timestamp"), str), f"[{self.label}] reply message has no timestamp: {reply}"
        return reply

    async def close(self) -> None:
        await self.ws.close()

    def _recent(self) -> str:
        return json.dumps(self.frames[-8:], ensure_ascii=False)


class Sockets:
    """Closes every client it opened, also when the test fails."""

    def __init__(self) -> None:
        self.clients: list[Client] = []

    async def open(self, url: str, token: str | None, **kwargs) -> Client:
        client = await Client.connect(url, token, **kwargs)
        self.clients.append(client)
        return client

    async def __aenter__(self) -> "Sockets":
        return self

    async def __aexit__(self, *exc) -> None:
        await asyncio.gather(*(c.ws.close() for c in self.clients), return_exceptions=True)
