"""The broker dies and comes back (runs last: it disturbs every process).

While RabbitMQ is down a message must be refused at once with `unavailable` (not
met with silence); once it is back and the gateway reports healthy, the same
socket's next message is accepted and answered."""

from __future__ import annotations

import json
import time

import parley_e2e as e2e
from parley_e2e import Client, make_jwt, reply_text, run, stored_messages

REFUSAL_DEADLINE = 5.0
RECOVERY_DEADLINE = 60.0
# RabbitMQ 3.10 (Ra 2.2) records a new quorum queue's Ra server in a dets table saved
# every 500 ms (`auto_save`); a broker SIGKILLed sooner than that after the queue was
# declared restarts without it, and the queue never gets a leader again. The turns
# queue of this run must therefore be older than that before the broker is killed
# (always true in a full run; this matters when the test runs alone).
QUEUE_SETTLE_SECONDS = 2.0


def test_broker_outage_is_reported_and_the_session_recovers(stack):
    user = e2e.unique("outage")
    state: dict = {}

    async def before(client: Client) -> str:
        await client.send("antes da queda")
        session_id = (await client.expect("session"))["session_id"]
        await client.expect_turn(session_id=session_id, content="antes da queda", n=1)
        return session_id

    async def during(client: Client, session_id: str) -> tuple[dict, float]:
        started = time.monotonic()
        await client.message("durante a queda", session_id=session_id, client_msg_id="down1")
        error = await client.expect_error(
            "unavailable", REFUSAL_DEADLINE, session_id=session_id, client_msg_id="down1"
        )
        return error, time.monotonic() - started

    async def after(client: Client, session_id: str) -> tuple[dict, dict]:
        await client.message("depois da volta", session_id=session_id, client_msg_id="up1")
        # n=2: the refused message was never stored.
        return await client.expect_turn(
            session_id=session_id, content="depois da volta", n=2, client_msg_id="up1", timeout=RECOVERY_DEADLINE
        )

    async def scenario():
        client = await Client.connect(stack.ws_url(0), make_jwt(user), label="outage")
        other = None
        try:
            session_id = await before(client)
            state["session_id"] = session_id

            await e2e.async_wait_until(
                lambda: time.monotonic() - stack.topology_declared_at >= QUEUE_SETTLE_SECONDS,
                QUEUE_SETTLE_SECONDS + 1, "the turns queue to be older than the broker's 500 ms dets auto-save",
            )
            stack.rabbitmq("kill")
            state["killed"] = True
            error, elapsed = await during(client, session_id)
            state["refused_after"] = elapsed
            # The public /health says unavailable; the internal one names the broker.
            await e2e.async_wait_until(
                lambda: e2e.http_get(stack.http_url(0) + "/health") == (503, '{"status":"unavailable"}'),
                10, "gateway 1's /health to report the outage",
            )
            status, details = e2e.http_get(stack.internal_url(0) + "/health")
            checks = json.loads(details)["checks"]
            assert status == 503 and not all(c["ok"] for name, c in checks.items() if name.startswith("broker")), details

            stack.rabbitmq("restart-after-kill")
            state["killed"] = False
            for index in range(len(stack.gateways)):
                await e2e.async_wait_until(
                    lambda: e2e.http_get(stack.http_url(index) + "/health")[0] == 200,
                    RECOVERY_DEADLINE, f"gateway {index + 1}'s /health to answer 200 after the restart", interval=0.2,
                )
            accepted, reply = await after(client, session_id)

            # A new socket on the other gateway works too.
            other = await Client.connect(stack.ws_url(1), make_jwt(user), label="after-outage gw2")
            await other.send("nova conversa")
            new_session = (await other.expect("session"))["session_id"]
            await other.expect_turn(session_id=new_session, content="nova conversa", n=1, timeout=RECOVERY_DEADLINE)
            return session_id, error, accepted, new_session
        finally:
            await client.ws.close()
            if other is not None:
                await other.ws.close()

    try:
        session_id, error, accepted, new_session = run(scenario(), timeout=150)
    finally:
        if state.get("killed"):
            # Never leave the broker dead for whatever runs next.
            stack.rabbitmq("restart-after-kill")

    assert state["refused_after"] < REFUSAL_DEADLINE
    assert [(r.role, r.content) for r in stored_messages(session_id)] == [
        ("user", "antes da queda"), ("assistant", reply_text(1, "antes da queda")),
        ("user", "depois da volta"), ("assistant", reply_text(2, "depois da volta")),
    ]
    assert len(stored_messages(new_session)) == 2
    for worker in stack.live_workers():
        e2e.wait_until(lambda: e2e.http_get(worker.health_url)[0] == 200, 30, f"{worker.name} healthy after the outage")
