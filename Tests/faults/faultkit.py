"""The fault suite's machinery: the stack (the end-to-end harness's `Stack` with
environment overrides), a steady load of WebSocket clients that records every turn,
Prometheus scraping, and the figures of one scenario.

Definitions (docs/reliability.md repeats them):
- sent: `message` frames written to a socket.
- accepted: turns that got `accepted`.
- answered: turns whose `reply` arrived (live, or found in the `history` of a `resume`
  after the client reconnected).
- errors: final `error` frames by code; `socket_closed` is a turn whose socket closed
  before `accepted` or any error (the client cannot know whether it was published).
- silent: accepted, then neither `reply` nor `error` within the gateways'
  REPLY_TIMEOUT_SECONDS plus a grace period (the gateway itself must send
  `reply_timeout` by then).
- unacked: sent on a socket that stayed open, then neither `accepted` nor `error`
  within that time.
- duplicates: assistant rows stored more than once for a turn (SQL), and `reply`
  frames received more than once for a turn on one socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(REPO_ROOT / "Tests" / "e2e"))
sys.path.insert(0, str(REPO_ROOT / "scripts" / "lib"))

import parley_e2e as e2e  # noqa: E402
import websockets  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402

# The gateways' REPLY_TIMEOUT_SECONDS: an accepted turn must end (reply or error) by
# then. A turn's deadline at the workers is 10 s earlier (docs/decisions.md).
REPLY_TIMEOUT = int(os.environ.get("FAULTS_REPLY_TIMEOUT", "30"))
GRACE = 5.0
ACK_TIMEOUT = float(REPLY_TIMEOUT) + GRACE
RECONNECT_PATIENCE = 60.0
ERROR_PAUSE = 0.2  # a client waits this long after an error before its next message

# An "instant" simulator: the model costs a few milliseconds, so the figures show the
# system, not the model.
SIM_TTFT_MS = os.environ.get("FAULTS_SIM_TTFT_MS", "5")
SIM_TPS = os.environ.get("FAULTS_SIM_TPS", "4000")

MARKER = re.compile(r"\[sim:[^\]]*\]")


def now() -> float:
    return time.monotonic()


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the stack


class FaultStack(e2e.Stack):
    """The end-to-end stack with per-role environment overrides (`sim`, `worker`,
    `gateway`), an AMQP URL of our choice (R6 points the apps at a proxy), and
    restarts of a gateway on its own port."""

    def __init__(self, label: str, *, amqp_url: str | None = None, overrides: dict[str, dict[str, str]] | None = None) -> None:
        super().__init__()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.prefix = f"f{label.lower()}{secrets.token_hex(3)}"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"parley-faults-{self.prefix}-"))
        self.label = label
        if amqp_url:
            self.amqp_url = amqp_url
        self.overrides: dict[str, dict[str, str]] = {
            "sim": {"LLM_SIM_TTFT_MS": SIM_TTFT_MS, "LLM_SIM_TOKENS_PER_SECOND": SIM_TPS},
            "gateway": {"REPLY_TIMEOUT_SECONDS": str(REPLY_TIMEOUT)},
            "worker": {},
        }
        for role, values in (overrides or {}).items():
            self.overrides.setdefault(role, {}).update(values)

    @staticmethod
    def _role(proc: e2e.Proc) -> str:
        return "sim" if proc.name == "llm-sim" else proc.name.split()[0]

    def _add(self, proc: e2e.Proc) -> e2e.Proc:
        proc.env.update(self.overrides.get(self._role(proc), {}))
        return super()._add(proc)

    def ws_url(self, gateway: int = 0) -> str:
        """Every client's socket goes through the load balancer when there is one (R9)."""
        balancer = getattr(self, "balancer_port", None)
        return f"ws://127.0.0.1:{balancer}/ws" if balancer else super().ws_url(gateway)

    def restart_gateway(self, index: int) -> e2e.Proc:
        """A new gateway process in place of gateway `index` (which must have exited),
        with the same id, port and log file."""
        old = self.gateways[index]
        assert not old.alive(), f"{old.name} is still running"
        proc = e2e.Proc(old.name, old.argv, dict(old.env), old.log_path, health_url=old.health_url, extra=dict(old.extra))
        self.procs.append(proc)
        self.gateways[index] = proc
        return proc.start()

    def all_live(self) -> list[e2e.Proc]:
        return [p for p in list(self.gateways) + list(self.workers) if p.alive()]


# ---------------------------------------------------------------- metrics


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(url: str, timeout: float = 3.0) -> list[tuple[str, dict[str, str], float]]:
    status, body = e2e.http_get(url, timeout=timeout)
    if status != 200:
        raise RuntimeError(f"GET {url} answered {status}")
    samples = []
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(3) or ""))
        try:
            samples.append((match.group(1), labels, float(match.group(4))))
        except ValueError:
            continue
    return samples


def metric_sum(samples, name: str, **labels: str) -> float:
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == want for k, want in labels.items()))


def metrics_url(proc: e2e.Proc) -> str:
    # A gateway serves metrics on its internal listener, a worker on its one port.
    return f"http://127.0.0.1:{proc.extra.get('internal_port', proc.extra['port'])}/metrics"


def workers_metric(stack: FaultStack, name: str, **labels: str) -> float:
    total = 0.0
    for worker in stack.workers:
        if worker.alive():
            try:
                total += metric_sum(scrape(metrics_url(worker)), name, **labels)
            except RuntimeError:
                pass
    return total


# ---------------------------------------------------------------- the load


@dataclass
class Turn:
    client: int
    n: int
    client_msg_id: str
    content: str
    gateway: int
    sent_at: float
    session_id: str | None = None
    accepted_at: float | None = None
    turn_id: str | None = None
    final: str | None = None  # reply | error | silent | unacked | closed
    code: str | None = None
    done_at: float | None = None
    via: str = "live"  # live | resume
    reply_text: str | None = None
    message_id: int | None = None

    @property
    def latency(self) -> float | None:
        return None if self.done_at is None else self.done_at - self.sent_at

    def describe(self) -> str:
        return (f"client {self.client} turn {self.n} cmid={self.client_msg_id} turn_id={self.turn_id} "
                f"session={self.session_id} gateway={self.gateway + 1} final={self.final} code={self.code}")


@dataclass
class Anomaly:
    client: int
    kind: str  # duplicate_reply | reply_after_error | stray_reply | stray_error | duplicate_error
    frame: dict
    at: float


class Load:
    """N clients, each with a session of its own, each sending its next message when
    the previous one ended (reply, error, or the timeout above). Runs until `stop()`,
    until `max_turns` messages were sent, or for `duration` seconds."""

    def __init__(self, stack: FaultStack, clients: int = 30, *, max_turns: int | None = None, duration: float | None = None,
                 content: Callable[[int, int], str] | None = None, held: int = 0) -> None:
        self.stack = stack
        # The last `held` clients send one message, then wait for `release` (R2: they
        # send while the broker is down instead of waiting on an accepted turn).
        self.held = held
        self.reply_timeout = float(stack.overrides["gateway"]["REPLY_TIMEOUT_SECONDS"])
        self.release = asyncio.Event()
        self.client_count = clients
        self.max_turns = max_turns
        self.duration = duration
        self.content = content or (lambda client, n: f"c{client} m{n} {secrets.token_hex(3)}")
        self.turns: list[Turn] = []
        self.anomalies: list[Anomaly] = []
        self.clients: list[LoadClient] = []
        self.started_at = 0.0
        self.stopping = False
        self.sent = 0
        self.warm = asyncio.Event()
        self._warm_clients: set[int] = set()
        self.client_failures: list[str] = []
        self.reconnects = 0
        self.resumes = 0
        self.resume_answers = 0

    def take(self) -> bool:
        if self.stopping:
            return False
        if self.max_turns is not None and self.sent >= self.max_turns:
            return False
        if self.duration is not None and now() - self.started_at >= self.duration:
            return False
        self.sent += 1
        return True

    def stop(self) -> None:
        self.stopping = True

    def mark_warm(self, client: int) -> None:
        self._warm_clients.add(client)
        if len(self._warm_clients) >= self.client_count:
            self.warm.set()

    async def run(self) -> None:
        self.started_at = now()
        self.clients = [LoadClient(self, i) for i in range(self.client_count)]
        await asyncio.gather(*(c.safe_run() for c in self.clients))

    def in_flight(self) -> int:
        return sum(1 for t in self.turns if t.accepted_at is not None and t.final is None)

    def sessions(self) -> list[str]:
        return sorted({c.session_id for c in self.clients if c.session_id})

    def progress(self) -> str:
        done = Counter(t.final for t in self.turns)
        return f"sent {len(self.turns)}, " + ", ".join(f"{k}={v}" for k, v in sorted(done.items(), key=lambda kv: str(kv[0])))


class Closed(Exception):
    pass


class LoadClient:
    def __init__(self, load: Load, index: int) -> None:
        self.load = load
        self.index = index
        self.user = f"{load.stack.prefix}-u{index}"
        self.token = e2e.make_jwt(self.user, expires_in=24 * 3600)
        self.gateway = index % 2
        self.ws = None
        self.session_id: str | None = None
        self.last_id = 0
        self.finished: dict[str, str] = {}  # turn_id -> reply | error
        self.reply_count: Counter[str] = Counter()
        self.n = 0
        self.current: Turn | None = None

    # -- connection

    async def connect(self, *, prefer_other: bool = False) -> None:
        """Opens a socket to a gateway (the other one first after a drop), then, when
        the client has a session, `resume`s it after the last message it saw."""
        deadline = now() + RECONNECT_PATIENCE
        gateways = len(self.load.stack.gateways)
        order = [(self.gateway + 1) % gateways, self.gateway] if prefer_other else [self.gateway, (self.gateway + 1) % gateways]
        attempt = 0
        while True:
            index = order[attempt % len(order)]
            attempt += 1
            try:
                ws = await ws_connect(
                    self.load.stack.ws_url(index), additional_headers={"Authorization": f"Bearer {self.token}"}, proxy=None,
                    compression=None, open_timeout=5, ping_interval=None, max_size=None, close_timeout=2,
                )
            except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake, websockets.ConnectionClosed) as error:
                if now() >= deadline:
                    raise RuntimeError(f"client {self.index}: no gateway took a connection within {RECONNECT_PATIENCE:.0f} s: {error!r}")
                await asyncio.sleep(0.2)
                continue
            self.ws = ws
            self.gateway = index
            if self.session_id is None:
                return
            try:
                if await self.resume(deadline):
                    return
            except Closed:
                pass
            self.ws = None
            if now() >= deadline:
                raise RuntimeError(f"client {self.index}: could not resume session {self.session_id} within {RECONNECT_PATIENCE:.0f} s")
            await asyncio.sleep(0.3)

    async def resume(self, deadline: float) -> bool:
        """`resume` until a `history` comes (False: the socket closed)."""
        self.load.resumes += 1
        while True:
            await self.send({"type": "resume", "session_id": self.session_id, "after_id": self.last_id})
            while True:
                frame = await self.recv(max(0.1, min(15.0, deadline - now())))
                if frame is None:
                    if now() >= deadline:
                        return False
                    break  # no answer: ask again
                if frame.get("type") == "history" and frame.get("session_id") == self.session_id:
                    self.take_history(frame)
                    return True
                if frame.get("type") == "error" and frame.get("session_id") in (None, self.session_id) and not frame.get("turn_id") \
                        and not frame.get("client_msg_id"):
                    # e.g. `unavailable` while the broker or the database is down
                    if now() >= deadline:
                        return False
                    await asyncio.sleep(0.5)
                    break
                self.handle(frame)

    def take_history(self, frame: dict) -> None:
        messages = frame.get("messages") or []
        turn = self.current
        pending_user = None
        for message in messages:
            if isinstance(message.get("id"), int):
                self.last_id = max(self.last_id, message["id"])
            if turn is None or turn.final is not None or turn.accepted_at is None:
                continue
            if message.get("role") == "user" and message.get("content") == turn.content:
                pending_user = message
            elif message.get("role") == "assistant" and pending_user is not None:
                turn.final = "reply"
                turn.done_at = now()
                turn.via = "resume"
                turn.reply_text = message.get("content")
                turn.message_id = message.get("id")
                self.finished[turn.turn_id] = "reply"
                self.load.resume_answers += 1
                pending_user = None

    async def send(self, frame: dict) -> None:
        if self.ws is None:
            raise Closed()
        try:
            await self.ws.send(json.dumps(frame, ensure_ascii=False))
        except websockets.ConnectionClosed:
            self.ws = None
            raise Closed() from None

    async def recv(self, timeout: float) -> dict | None:
        """The next frame, None on timeout; raises Closed when the socket closed."""
        if self.ws is None:
            raise Closed()
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            return None
        except websockets.ConnectionClosed:
            self.ws = None
            raise Closed() from None
        return json.loads(raw)

    async def safe_run(self) -> None:
        try:
            await self.run()
        except Exception as error:  # noqa: BLE001 - one client's end is a figure, not the run's
            self.load.client_failures.append(f"client {self.index}: {type(error).__name__}: {error}")
            if self.current is not None and self.current.final is None:
                self.current.final = "silent" if self.current.accepted_at is not None else "unacked"

    # -- frames

    def anomaly(self, kind: str, frame: dict) -> None:
        self.load.anomalies.append(Anomaly(self.index, kind, frame, now()))

    def handle(self, frame: dict) -> None:
        kind = frame.get("type")
        turn = self.current
        if kind == "session":
            if self.session_id is None:
                self.session_id = frame.get("session_id")
            return
        if kind in ("delta", "reset", "history"):
            if kind == "history":
                self.take_history(frame)
            return
        if kind == "accepted":
            if turn is not None and frame.get("client_msg_id") == turn.client_msg_id and turn.accepted_at is None:
                turn.accepted_at = now()
                turn.turn_id = frame.get("turn_id")
                turn.session_id = frame.get("session_id")
                if self.session_id is None:
                    self.session_id = turn.session_id
            else:
                self.anomaly("stray_accepted", frame)
            return
        if kind == "reply":
            turn_id = frame.get("turn_id")
            message = frame.get("message") or {}
            if isinstance(message.get("id"), int):
                self.last_id = max(self.last_id, message["id"])
            self.reply_count[turn_id] += 1
            if self.reply_count[turn_id] > 1:
                self.anomaly("duplicate_reply", frame)
                return
            if turn is not None and turn.final is None and turn_id == turn.turn_id:
                turn.final = "reply"
                turn.done_at = now()
                turn.reply_text = message.get("content")
                turn.message_id = message.get("id")
                self.finished[turn_id] = "reply"
            elif self.finished.get(turn_id) == "reply":
                # answered before through a resume's history: the live frame came too
                pass
            elif self.finished.get(turn_id) == "error":
                self.anomaly("reply_after_error", frame)
            else:
                self.anomaly("stray_reply", frame)
            return
        if kind == "error":
            turn_id = frame.get("turn_id")
            mine = turn is not None and turn.final is None and (
                (turn.client_msg_id and frame.get("client_msg_id") == turn.client_msg_id)
                or (turn_id is not None and turn_id == turn.turn_id)
            )
            if mine:
                turn.final = "error"
                turn.code = frame.get("code")
                turn.done_at = now()
                if turn.turn_id:
                    self.finished[turn.turn_id] = "error"
            elif turn_id and turn_id in self.finished:
                self.anomaly("duplicate_error", frame)
            else:
                self.anomaly("stray_error", frame)
            return
        self.anomaly("unknown_frame", frame)

    # -- turns

    async def run(self) -> None:
        try:
            await self.connect()
            held = self.index >= self.load.client_count - self.load.held
            while True:
                if held and self.n >= 1 and not self.load.release.is_set():
                    self.load.mark_warm(self.index)
                    await self.load.release.wait()
                if not self.load.take():
                    break
                self.n += 1
                turn = Turn(self.index, self.n, f"c{self.index}-{self.n}", self.load.content(self.index, self.n), self.gateway, now())
                self.current = turn
                self.load.turns.append(turn)
                await self.do_turn(turn)
                if turn.final == "reply":
                    self.load.mark_warm(self.index)
                else:
                    await asyncio.sleep(ERROR_PAUSE)
            await self.drain(2.0)
        finally:
            if self.ws is not None:
                try:
                    await self.ws.close()
                except Exception:  # noqa: BLE001
                    pass

    async def do_turn(self, turn: Turn) -> None:
        frame: dict[str, Any] = {"type": "message", "content": turn.content, "client_msg_id": turn.client_msg_id}
        if self.session_id:
            frame["session_id"] = self.session_id
        while True:
            if self.ws is None:
                await self.connect(prefer_other=True)
                self.load.reconnects += 1
            try:
                await self.send(frame)
                break
            except Closed:
                continue
        turn.sent_at = now()
        turn.gateway = self.gateway
        while turn.final is None:
            wait = self.load.reply_timeout + GRACE
            limit = (turn.accepted_at if turn.accepted_at is not None else turn.sent_at) + wait
            remaining = limit - now()
            if remaining <= 0:
                turn.final = "silent" if turn.accepted_at is not None else "unacked"
                break
            try:
                frame_in = await self.recv(remaining)
            except Closed:
                if turn.accepted_at is None:
                    turn.final = "closed"
                    turn.code = "socket_closed"
                    turn.done_at = now()
                    break
                # Accepted: reconnect (the other gateway first) and resume; the
                # history may hold the answer, or the live reply comes later.
                await self.connect(prefer_other=True)
                self.load.reconnects += 1
                continue
            if frame_in is not None:
                self.handle(frame_in)

    async def drain(self, seconds: float) -> None:
        """Reads for a while after the last turn: late duplicates show here."""
        self.current = None
        ends = now() + seconds
        while now() < ends:
            try:
                frame = await self.recv(max(0.05, ends - now()))
            except Closed:
                return
            if frame is not None:
                self.handle(frame)


# ---------------------------------------------------------------- figures


def expected_echo(content: str) -> str:
    return MARKER.sub("", content).strip()


@dataclass
class Criterion:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Result:
    scenario: str
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    criteria: list[Criterion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    log_dir: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.criteria)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.criteria.append(Criterion(name, bool(ok), detail))


def recovery_after(turns: list[Turn], moment: float) -> float | None:
    """Seconds from `moment` until the first turn sent after it was answered."""
    times = [t.done_at - moment for t in turns if t.sent_at >= moment and t.final == "reply" and t.done_at is not None]
    return min(times) if times else None


def ledger_states(turn_ids: list[str]) -> dict[str, str]:
    ids = [t for t in turn_ids if t]
    if not ids:
        return {}
    rows = e2e.psql(
        "SELECT turn_id, state || ' attempts=' || attempts || ' holder=' || coalesce(holder::text, '-') FROM turns WHERE turn_id IN ("
        + ",".join(e2e.sql_literal(t) for t in ids) + ")"
    )
    return {r[0]: r[1] for r in rows}


def stored_assistant(turn_ids: list[str]) -> dict[str, int]:
    ids = [t for t in turn_ids if t]
    if not ids:
        return {}
    rows = e2e.psql(
        "SELECT turn_id, count(*) FROM messages WHERE role = 'assistant' AND turn_id IN ("
        + ",".join(e2e.sql_literal(t) for t in ids) + ") GROUP BY turn_id"
    )
    return {r[0]: int(r[1]) for r in rows}


def stuck_at_workers(stack: FaultStack, settle: float = 3.0) -> dict[str, float]:
    """Turns the live workers still hold after the load ended (`parley_worker_turns_in_flight`)."""
    time.sleep(settle)
    held = {}
    for worker in stack.workers:
        if worker.alive():
            try:
                value = metric_sum(scrape(metrics_url(worker)), "parley_worker_turns_in_flight")
            except RuntimeError:
                continue
            if value:
                held[worker.name] = value
    return held


def summarize(result: Result, load: Load, stack: FaultStack, calls: int | None) -> None:
    """The common figures of a scenario, and the common criteria (0 silent, 0 duplicates)."""
    turns = load.turns
    stuck = stuck_at_workers(stack)
    result.figures["stuck_at_workers"] = stuck
    result.check("no turn left in progress at a worker after the load", not stuck,
                 ", ".join(f"{k} holds {v:.0f}" for k, v in stuck.items()) or "all idle")
    answered = [t for t in turns if t.final == "reply"]
    errors = Counter(t.code for t in turns if t.final in ("error", "closed"))
    silent = [t for t in turns if t.final == "silent"]
    unacked = [t for t in turns if t.final == "unacked"]
    sessions = load.sessions()
    dup_rows = e2e.duplicate_turn_roles(sessions) if sessions else []
    dup_frames = [a for a in load.anomalies if a.kind == "duplicate_reply"]
    wrong = [t for t in answered if t.reply_text is not None and f'disse "{expected_echo(t.content)}"' not in t.reply_text]
    latencies = sorted(t.latency for t in answered if t.latency is not None)
    f = result.figures
    f["sent"] = len(turns)
    f["accepted"] = sum(1 for t in turns if t.accepted_at is not None)
    f["answered"] = len(answered)
    f["answered_via_resume"] = sum(1 for t in answered if t.via == "resume")
    f["errors"] = dict(sorted(errors.items()))
    f["silent"] = len(silent)
    f["unacked"] = len(unacked)
    f["dup_rows"] = len(dup_rows)
    f["dup_replies"] = len(dup_frames)
    f["wrong_replies"] = len(wrong)
    f["llm_calls"] = calls
    f["calls_per_answer"] = (calls / len(answered)) if calls is not None and answered else None
    f["worst_latency"] = latencies[-1] if latencies else None
    f["p50_latency"] = statistics.median(latencies) if latencies else None
    f["p99_latency"] = latencies[int(0.99 * (len(latencies) - 1))] if latencies else None
    f["reconnects"] = load.reconnects
    f["stray"] = dict(Counter(a.kind for a in load.anomalies if a.kind != "duplicate_reply"))
    f["duration"] = (max((t.done_at or t.sent_at) for t in turns) - min(t.sent_at for t in turns)) if turns else 0.0

    result.check("0 silent", not silent, f"{len(silent)} silent")
    result.check("0 duplicates", not dup_rows and not dup_frames, f"{len(dup_rows)} duplicate rows, {len(dup_frames)} duplicate reply frames")
    result.check("0 unacked", not unacked, f"{len(unacked)} sent and neither accepted nor refused")
    result.check("every reply answers its own message", not wrong, f"{len(wrong)} replies echo another message")

    if silent or unacked:
        states = ledger_states([t.turn_id for t in silent + unacked])
        stored = stored_assistant([t.turn_id for t in silent + unacked])
        for t in (silent + unacked)[:20]:
            result.evidence.append(
                f"{t.final}: {t.describe()} sent at +{t.sent_at - load.started_at:.2f} s, accepted at "
                f"{'+%.2f s' % (t.accepted_at - load.started_at) if t.accepted_at else '-'}; ledger: {states.get(t.turn_id, 'no row')}; "
                f"assistant rows: {stored.get(t.turn_id, 0)}"
            )
    failed_after_accept = [t for t in turns if t.accepted_at is not None and t.final == "error"]
    if failed_after_accept:
        states = ledger_states([t.turn_id for t in failed_after_accept[:20]])
        for t in failed_after_accept[:20]:
            result.evidence.append(
                f"accepted, then error: {t.describe()} sent at +{t.sent_at - load.started_at:.2f} s, ended at "
                f"+{t.done_at - load.started_at:.2f} s; ledger: {states.get(t.turn_id, 'no row')}"
            )
    for failure in load.client_failures:
        result.evidence.append(f"a client gave up: {failure}")
    result.check("no client gave up", not load.client_failures, f"{len(load.client_failures)} clients could not reconnect")
    for row in dup_rows[:20]:
        result.evidence.append(f"duplicate rows: turn {row[0]} role {row[1]} stored {row[2]} times")
    for a in dup_frames[:20]:
        result.evidence.append(f"duplicate reply frame at client {a.client} +{a.at - load.started_at:.2f} s: turn {a.frame.get('turn_id')} message {(a.frame.get('message') or {}).get('id')}")
    for a in [a for a in load.anomalies if a.kind != "duplicate_reply"][:10]:
        result.evidence.append(f"{a.kind} at client {a.client} +{a.at - load.started_at:.2f} s: {json.dumps(a.frame, ensure_ascii=False)[:300]}")
    for t in wrong[:10]:
        result.evidence.append(f"wrong reply: {t.describe()} content {t.content!r} got {t.reply_text!r}")


async def run_blocking(function, *args, **kwargs):
    return await asyncio.to_thread(function, *args, **kwargs)


async def wait_healthy(proc: e2e.Proc, timeout: float = e2e.STARTUP_TIMEOUT) -> float:
    """Seconds until `proc` answered 200 on /health."""
    started = now()
    await asyncio.to_thread(proc.wait_healthy, timeout)
    return now() - started


async def poll_healthy_since(proc: e2e.Proc, since: float, timeout: float = 60.0) -> float | None:
    """Polls /health until 200; seconds from `since`, None on timeout."""
    ends = now() + timeout
    while now() < ends:
        status, _ = await asyncio.to_thread(e2e.http_get, proc.health_url, 1.0)
        if status == 200:
            return now() - since
        await asyncio.sleep(0.1)
    return None


def random_choice(items):
    return random.choice(items)
