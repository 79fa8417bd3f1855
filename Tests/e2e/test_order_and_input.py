"""Order across gateways, and input that PostgreSQL cannot store (issue 9, defects 3 and 6)."""

from __future__ import annotations

import time

import parley_e2e as e2e
from parley_e2e import Sockets, make_jwt, reply_text, run, stored_messages
from test_sessions import start_session


def test_a_turn_sent_through_another_gateway_waits_for_the_earlier_one(stack):
    """T1 is being generated (slowly) for a session through gateway 1; the client sends
    T2 through gateway 2 (a reload behind a load balancer). Gateway 2 knows nothing of
    T1 and publishes T2 at once, but no worker may generate T2 before T1 is answered:
    T2's reply comes after T1's, and T2's prompt holds T1 and its answer (the
    simulator's second answer, not a first one)."""
    user = e2e.unique("order")
    first = f"primeira, devagar [sim:ttft=2500] {e2e.unique('m')}"
    first_echo = first.replace("[sim:ttft=2500]", "")  # the simulator drops its markers
    second = f"segunda, pelo outro gateway {e2e.unique('m')}"

    async def scenario():
        async with Sockets() as sockets:
            a = await sockets.open(stack.ws_url(0), make_jwt(user), label="A@gw1")
            session_id, opening = await start_session(a, "r-order")
            b = await sockets.open(stack.ws_url(1), make_jwt(user), label="B@gw2")
            await b.send({"type": "resume", "session_id": session_id, "after_id": opening["message"]["id"]})
            await b.expect("history", session_id=session_id)

            await a.message(first, client_msg_id="t1")
            accepted_1 = await a.expect("accepted", session_id=session_id, client_msg_id="t1")
            await b.message(second, session_id=session_id, client_msg_id="t2")
            accepted_2 = await b.expect("accepted", session_id=session_id, client_msg_id="t2")
            # B hears both replies, T1's first.
            reply_1 = await b.expect_reply(session_id=session_id, turn_id=accepted_1["turn_id"], text=reply_text(1, first_echo), timeout=30)
            reply_1_at = time.monotonic()
            reply_2 = await b.expect_reply(session_id=session_id, turn_id=accepted_2["turn_id"], text=reply_text(2, second), timeout=30)
            assert reply_2["message"]["id"] > reply_1["message"]["id"]
            assert time.monotonic() >= reply_1_at
            return session_id

    session_id = run(scenario(), timeout=90)
    assert [(r.role, r.content) for r in stored_messages(session_id)][1:] == [
        ("user", first), ("assistant", reply_text(1, first_echo)), ("user", second), ("assistant", reply_text(2, second)),
    ]


def test_a_nul_character_is_refused_at_once_and_nothing_is_stored(stack):
    """PostgreSQL text cannot hold U+0000. Such a message is refused by the gateway with
    `invalid_content` (WebSocket and REST), and the session goes on."""
    user = e2e.unique("nul")
    token = make_jwt(user)

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), token, label="nul")
            session_id, _ = await start_session(client, "r-nul")
            await client.send({"type": "message", "session_id": session_id, "content": "oi\u0000tudo bem", "client_msg_id": "n1"})
            error = await client.expect_error("invalid_content", 5, client_msg_id="n1")
            assert "U+0000" in error["message"], error
            # The session is not held up: the next message is answered at once.
            text = f"sem nulo {e2e.unique('m')}"
            await client.message(text, session_id=session_id, client_msg_id="n2")
            await client.expect_turn(session_id=session_id, content=text, n=1, client_msg_id="n2")
            return session_id

    session_id = run(scenario(), timeout=60)
    status, body = stack.api("POST", f"/api/sessions/{session_id}/message", {"content": "a\u0000b"}, token)
    assert status == 400 and body["error"]["code"] == "invalid_content", (status, body)
    assert [r.role for r in stored_messages(session_id)] == ["assistant", "user", "assistant"]
