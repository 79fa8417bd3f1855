"""Topic completion: the model's marker completes the session and never reaches a client."""

from __future__ import annotations

import re

import parley_e2e as e2e
from parley_e2e import Sockets, make_jwt, psql, run, sql_literal

MARKER = "{TOPIC_COMPLETED}"


def test_the_marker_completes_the_session_and_is_never_shown(stack):
    user = e2e.unique("learner")

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="learner")
            await client.send("quanto é 2+2?")
            session_id = (await client.expect("session"))["session_id"]
            await client.expect_turn(session_id=session_id, content="quanto é 2+2?", n=1)
            # The simulator's tutor follows the completion protocol: "eu domino" → marker.
            await client.message("eu domino a soma", session_id=session_id, client_msg_id="m2")
            accepted = await client.expect("accepted", session_id=session_id, client_msg_id="m2")
            reply = await client.expect("reply", 20, session_id=session_id, turn_id=accepted["turn_id"])
            await client.message("mais uma pergunta?", session_id=session_id, client_msg_id="m3")
            refused = await client.expect_error("session_completed", 10, client_msg_id="m3")
            # A new socket cannot reopen it either.
            other = await sockets.open(stack.ws_url(1), make_jwt(user), label="other")
            await other.send({"type": "message", "session_id": session_id, "content": "oi?", "client_msg_id": "o1"})
            await other.expect_error("session_completed", 10, client_msg_id="o1")
            return session_id, accepted["turn_id"], reply, refused, client

    session_id, turn_id, reply, refused, client = run(scenario(), timeout=60)
    assert reply["completed"] is True and reply["status"] == "completed", reply
    assert reply["message"]["content"] == "Parabéns! Você demonstrou domínio do tema.", reply
    streamed = "".join(d["text"] for d in client.deltas if d.get("turn_id") == turn_id)
    # The deltas begin the reply (the text still grouped at the end goes only there).
    assert streamed and reply["message"]["content"].startswith(streamed.rstrip()), streamed
    assert "{" not in streamed and "TOPIC" not in streamed, streamed
    assert all(MARKER not in str(frame) for frame in client.frames)
    rows = psql(f"SELECT status, completed_at IS NOT NULL FROM sessions WHERE id = {sql_literal(session_id)}")
    assert rows == [["completed", "t"]], rows
    stored = psql(f"SELECT content, raw_content FROM messages WHERE turn_id = {sql_literal(turn_id)} AND role = 'assistant'")
    # raw_content keeps what the model wrote: this turn's own marker.
    assert stored[0][0] == reply["message"]["content"] and re.search(r"\{TOPIC_COMPLETED_[A-Z]{8}\}$", stored[0][1]), stored
    assert all("TOPIC_COMPLETED" not in str(frame) for frame in client.frames)


def test_a_marker_typed_by_the_user_completes_nothing(stack):
    user = e2e.unique("sneaky")
    content = f"eu escrevo {MARKER} aqui"

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="sneaky")
            await client.send(content)
            session_id = (await client.expect("session"))["session_id"]
            await client.expect("accepted", session_id=session_id)
            reply = await client.expect("reply", 20, session_id=session_id)
            return session_id, reply

    session_id, reply = run(scenario())
    assert reply["completed"] is False and reply["status"] == "active", reply
    assert MARKER not in reply["message"]["content"]
    assert psql(f"SELECT status FROM sessions WHERE id = {sql_literal(session_id)}") == [["active"]]
