"""PostgreSQL goes away and comes back (runs near the end: it disturbs every process).

An accepted turn must survive the outage: the worker keeps it and answers it once the
database is back, without using up its delivery limit. Meanwhile what needs the
database gets a clear `unavailable`, and the workers' /health names the database."""

from __future__ import annotations

import time

import parley_e2e as e2e
from parley_e2e import Client, make_jwt, reply_text, run, stored_messages

OUTAGE_SECONDS = 4.0  # longer than TURN_RETRY_PAUSE_MS x the delivery limit (200 ms x 5)
RECOVERY_DEADLINE = 60.0


def test_an_accepted_turn_survives_a_database_outage(stack):
    user = e2e.unique("dbdown")
    state: dict = {}

    async def scenario():
        client = await Client.connect(stack.ws_url(0), make_jwt(user), label="db-outage")
        fresh = None
        try:
            await client.send("antes")
            session_id = (await client.expect("session"))["session_id"]
            await client.expect_turn(session_id=session_id, content="antes", n=1)

            stack.postgres("stop")
            state["stopped"] = True
            down_at = time.monotonic()

            # The session is already open on this socket: the turn is accepted (it is
            # safe in the broker) even though the database is down.
            await client.message("durante", session_id=session_id, client_msg_id="d1")
            accepted = await client.expect("accepted", 10, session_id=session_id, client_msg_id="d1")

            # Starting a session needs the database: a clear refusal, not silence.
            fresh = await Client.connect(stack.ws_url(1), make_jwt(user), label="db-outage new")
            await fresh.send({"type": "start", "request_id": "r-down"})
            await fresh.expect_error("unavailable", 15, request_id="r-down")

            for worker in stack.live_workers():
                await e2e.async_wait_until(
                    lambda: e2e.http_get(worker.health_url)[0] == 503, 15, f"{worker.name} /health to report the database"
                )
            await e2e.async_wait_until(
                lambda: time.monotonic() - down_at >= OUTAGE_SECONDS, OUTAGE_SECONDS + 1, "the outage to last long enough"
            )

            stack.postgres("start")
            state["stopped"] = False
            reply = await client.expect_reply(
                session_id=session_id, turn_id=accepted["turn_id"], text=reply_text(2, "durante"), timeout=RECOVERY_DEADLINE
            )
            return session_id, reply
        finally:
            await client.close()
            if fresh is not None:
                await fresh.close()

    try:
        session_id, reply = run(scenario(), timeout=150)
    finally:
        if state.get("stopped"):
            stack.postgres("start")

    assert [(m.role, m.content) for m in stored_messages(session_id)] == [
        ("user", "antes"), ("assistant", reply_text(1, "antes")),
        ("user", "durante"), ("assistant", reply_text(2, "durante")),
    ]
    for worker in stack.live_workers():
        e2e.wait_until(lambda: e2e.http_get(worker.health_url)[0] == 200, 30, f"{worker.name} healthy after the outage")
