"""Several sockets on one session (same gateway and across gateways), resume, and
plain-text messages."""

from __future__ import annotations

import asyncio
import json

import parley_e2e as e2e
from parley_e2e import Sockets, make_jwt, reply_text, run, stored_messages

OPENING_PREFIX = "Olá!"


def history_tuples(frame: dict) -> list[tuple[int, str, str]]:
    return [(m["id"], m["role"], m["content"]) for m in frame["messages"]]


def stored_tuples(session_id: str, after_id: int = 0) -> list[tuple[int, str, str]]:
    return [(r.id, r.role, r.content) for r in stored_messages(session_id) if r.id > after_id]


async def start_session(client: e2e.Client, request_id: str) -> tuple[str, dict]:
    """`start` → `session` (echoing request_id) → the opening `reply`, no `accepted`."""
    await client.send({"type": "start", "request_id": request_id})
    session = await client.expect("session", status="active", request_id=request_id)
    session_id = session["session_id"]
    opening = await client.expect("reply", 20, session_id=session_id, status="active", completed=False)
    message = opening["message"]
    assert message["role"] == "assistant" and message["content"].startswith(OPENING_PREFIX), opening
    return session_id, opening


def test_two_sockets_of_one_user_share_a_session_and_resume_returns_stored_messages(stack):
    user = e2e.unique("alice")
    first_text = f"primeira de A {e2e.unique('m')}"
    second_text = f"segunda, de B {e2e.unique('m')}"

    async def scenario():
        async with Sockets() as sockets:
            a = await sockets.open(stack.ws_url(0), make_jwt(user), label="A")
            session_id, opening = await start_session(a, "r-a")
            opening_id = opening["message"]["id"]

            b = await sockets.open(stack.ws_url(0), make_jwt(user), label="B")
            # No after_id: everything (after_id 0 itself is covered by its own test below).
            await b.send({"type": "resume", "session_id": session_id})
            history = await b.expect("history", session_id=session_id)
            assert history_tuples(history) == [(opening_id, "assistant", opening["message"]["content"])], history

            # A sends; both see the reply, only A sees `accepted`.
            await a.message(first_text, client_msg_id="a1")
            accepted, reply_a = await a.expect_turn(session_id=session_id, content=first_text, n=1, client_msg_id="a1")
            reply_b = await b.expect_reply(session_id=session_id, turn_id=accepted["turn_id"], text=reply_text(1, first_text))
            assert reply_b["message"] == reply_a["message"], (reply_a, reply_b)

            # B sends on its current session (set by resume); A sees the reply.
            await b.message(second_text, client_msg_id="b1")
            accepted_b, reply_b2 = await b.expect_turn(session_id=session_id, content=second_text, n=2, client_msg_id="b1")
            reply_a2 = await a.expect_reply(session_id=session_id, turn_id=accepted_b["turn_id"], text=reply_text(2, second_text))
            assert reply_a2["message"] == reply_b2["message"]

            # A third socket resumes after the opening: exactly the stored rows after it.
            c = await sockets.open(stack.ws_url(1), make_jwt(user), label="C")
            await c.send({"type": "resume", "session_id": session_id, "after_id": opening_id})
            after_opening = await c.expect("history", session_id=session_id)
            await c.send({"type": "resume", "session_id": session_id, "after_id": reply_b2["message"]["id"]})
            after_last = await c.expect("history", session_id=session_id)
            await c.send({"type": "resume", "session_id": session_id})
            everything = await c.expect("history", session_id=session_id)
            return session_id, opening_id, accepted, accepted_b, after_opening, after_last, everything

    session_id, opening_id, accepted, accepted_b, after_opening, after_last, everything = run(scenario(), timeout=60)

    stored_after_opening = stored_tuples(session_id, after_id=opening_id)
    assert [(role, content) for _, role, content in stored_after_opening] == [
        ("user", first_text), ("assistant", reply_text(1, first_text)),
        ("user", second_text), ("assistant", reply_text(2, second_text)),
    ]
    assert history_tuples(after_opening) == stored_after_opening
    assert history_tuples(after_last) == []
    assert history_tuples(everything) == stored_tuples(session_id)
    assert len(everything["messages"]) == 5
    rows = stored_messages(session_id)
    assert [r.turn_id for r in rows if r.role == "user"] == [accepted["turn_id"], accepted_b["turn_id"]]


def test_reply_reaches_a_socket_of_the_session_on_the_other_gateway(stack):
    user = e2e.unique("fanout")
    text_a = f"de A no gateway 1 {e2e.unique('m')}"
    text_b = f"de B no gateway 2 {e2e.unique('m')}"

    async def scenario():
        async with Sockets() as sockets:
            a = await sockets.open(stack.ws_url(0), make_jwt(user), label="A@gw1")
            session_id, opening = await start_session(a, "r-fanout")
            b = await sockets.open(stack.ws_url(1), make_jwt(user), label="B@gw2")
            await b.send({"type": "resume", "session_id": session_id, "after_id": opening["message"]["id"]})
            history = await b.expect("history", session_id=session_id)
            assert history["messages"] == [], history

            await a.message(text_a, client_msg_id="a1")
            accepted_a, reply_a = await a.expect_turn(session_id=session_id, content=text_a, n=1, client_msg_id="a1")
            reply_at_b = await b.expect_reply(session_id=session_id, turn_id=accepted_a["turn_id"], text=reply_text(1, text_a))
            assert reply_at_b["message"] == reply_a["message"]

            # And the other way round, with an explicit session_id.
            await b.message(text_b, session_id=session_id, client_msg_id="b1")
            accepted_b, reply_b = await b.expect_turn(session_id=session_id, content=text_b, n=2, client_msg_id="b1")
            reply_at_a = await a.expect_reply(session_id=session_id, turn_id=accepted_b["turn_id"], text=reply_text(2, text_b))
            assert reply_at_a["message"] == reply_b["message"]
            return session_id

    session_id = run(scenario(), timeout=60)
    assert [(r.role, r.content) for r in stored_messages(session_id)][1:] == [
        ("user", text_a), ("assistant", reply_text(1, text_a)), ("user", text_b), ("assistant", reply_text(2, text_b)),
    ]


def test_plain_text_starts_a_session_and_is_answered(stack):
    user = e2e.unique("plain")

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(1), make_jwt(user), label="plain")
            await client.send("olá")
            session = await client.expect("session", status="active")
            session_id = session["session_id"]
            await client.expect_turn(session_id=session_id, content="olá", n=1, client_msg_id=None)
            # A second plain text goes to the same session.
            await client.send("  tudo bem?  ")
            await client.expect_turn(session_id=session_id, content="tudo bem?", n=2, client_msg_id=None)
            return session_id

    session_id = run(scenario(), timeout=30)
    assert [(r.role, r.content) for r in stored_messages(session_id)] == [
        ("user", "olá"), ("assistant", reply_text(1, "olá")),
        ("user", "tudo bem?"), ("assistant", reply_text(2, "tudo bem?")),
    ]
    assert e2e.session_row(session_id)["user_id"] == user


def test_resume_and_start_accept_the_integers_0_and_1(stack):
    """`after_id` and `topic_id` are whole numbers; 0 and 1 are whole numbers too.
    (A decoder that asks `value is Bool` of a Foundation number rejects them.) No
    topic 0 or 1 exists on the platform: the start is decoded, then refused as such."""
    user = e2e.unique("ints")

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="ints")
            session_id, opening = await start_session(client, "r-ints")
            expected = [(opening["message"]["id"], "assistant", opening["message"]["content"])]
            outcomes = {}
            for after_id in (0, 1):
                await client.send({"type": "resume", "session_id": session_id, "after_id": after_id})
                frame = await client.recv(waiting_for=f"the answer to resume after_id={after_id}")
                outcomes[f"resume after_id={after_id}"] = (frame.get("type"), frame.get("code"),
                                                          history_tuples(frame) if frame.get("type") == "history" else None)
            for topic_id in (0, 1):
                await client.send({"type": "start", "topic_id": topic_id, "request_id": f"t{topic_id}"})
                frame = await client.recv(waiting_for=f"the answer to start topic_id={topic_id}")
                outcomes[f"start topic_id={topic_id}"] = (frame.get("type"), frame.get("code"), None)
                if frame.get("type") == "session":
                    await client.expect("reply", 20, session_id=frame["session_id"])
            return expected, outcomes

    expected, outcomes = run(scenario(), timeout=30)
    wanted = {
        "resume after_id=0": ("history", None, expected),
        "resume after_id=1": ("history", None, expected),
        "start topic_id=0": ("error", "topic_not_found", None),
        "start topic_id=1": ("error", "topic_not_found", None),
    }
    wrong = {frame: f"got {outcomes[frame][:2]}, expected {wanted[frame][:2]}" for frame in wanted if outcomes[frame] != wanted[frame]}
    assert not wrong, f"integer fields 0/1 mishandled: {wrong}"


def test_resume_pages_a_long_history_and_reads_a_completed_session(stack):
    """`resume` returns at most 500 messages and says when more follow; a completed
    session's history can be read over WebSocket, while a message to it is refused."""
    user = e2e.unique("pages")

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="pages")
            session_id, opening = await start_session(client, "r-pages")
            # 600 more messages, written straight to the database.
            e2e.psql(
                "INSERT INTO messages (session_id, turn_id, role, content, raw_content) "
                f"SELECT {e2e.sql_literal(session_id)}::uuid, gen_random_uuid(), 'user', 'm' || n, 'm' || n FROM generate_series(1, 600) AS n"
            )
            await client.send({"type": "resume", "session_id": session_id, "after_id": 0})
            first = await client.expect("history", session_id=session_id, status="active", more=True)
            assert len(first["messages"]) == 500 and first["messages"][0]["id"] == opening["message"]["id"]
            await client.send({"type": "resume", "session_id": session_id, "after_id": first["messages"][-1]["id"]})
            rest = await client.expect("history", session_id=session_id, more=False)
            assert len(rest["messages"]) == 101, len(rest["messages"])

            e2e.psql(f"UPDATE sessions SET status = 'completed', completed_at = now() WHERE id = {e2e.sql_literal(session_id)}")
            reader = await sockets.open(stack.ws_url(1), make_jwt(user), label="reader")
            await reader.send({"type": "resume", "session_id": session_id, "after_id": rest["messages"][-2]["id"]})
            done = await reader.expect("history", session_id=session_id, status="completed", more=False)
            assert [m["content"] for m in done["messages"]] == ["m600"]
            await reader.message("mais uma?", session_id=session_id, client_msg_id="late")
            await reader.expect_error("session_completed", 20, client_msg_id="late")

    run(scenario(), timeout=60)


def test_a_terminal_socket_reads_plain_lines(stack):
    """`/ws?format=text`, what a person at wscat sees: the answer as a line of its own
    and an error as `error: <code>: <message>`, no JSON; an unknown format is refused
    by name."""
    user = e2e.unique("terminal")
    headers = {"Authorization": f"Bearer {make_jwt(user)}"}

    async def read(ws) -> str:
        return await asyncio.wait_for(ws.recv(), 20)

    async def scenario():
        async with e2e.ws_connect(f"{stack.ws_url(0)}?format=text", additional_headers=headers, proxy=None, ping_interval=None) as ws:
            await ws.send("olá")
            answer = await read(ws)
            await ws.send("x" * 5000)
            refused = await read(ws)
            await ws.send("tudo bem?")
            second = await read(ws)
        async with e2e.ws_connect(f"{stack.ws_url(0)}?format=xml", additional_headers=headers, proxy=None, ping_interval=None) as ws:
            bad = json.loads(await read(ws))
        return answer, refused, second, bad

    answer, refused, second, bad = run(scenario(), timeout=60)
    assert answer == reply_text(1, "olá")
    assert refused.startswith("error: content_too_long: "), refused
    assert second == reply_text(2, "tudo bem?")
    assert (bad["type"], bad["code"]) == ("error", "malformed_request")
    assert "format must be json or text" in bad["message"]
