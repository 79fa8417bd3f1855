"""Many sessions at once, and the order of back-to-back messages."""

from __future__ import annotations

import asyncio

import parley_e2e as e2e
from parley_e2e import Sockets, make_jwt, reply_text, run, stored_messages

SOCKETS = 30
MESSAGES_PER_SOCKET = 3


def test_many_concurrent_sessions_each_get_their_replies_in_order(stack):
    """30 sockets over both gateways, each sending 3 messages back to back on a
    session of its own: every message is accepted and answered in order, with the
    simulator's answer to exactly that message, and the database holds exactly
    3 user + 3 assistant rows per session."""

    async def one_socket(sockets: Sockets, index: int) -> dict:
        user = e2e.unique(f"many{index}")
        client = await sockets.open(stack.ws_url(index % 2), make_jwt(user), label=f"socket {index} gw{index % 2 + 1}")
        contents = [f"sessão {index}, mensagem {k} – ação {e2e.unique('x')}" for k in range(1, MESSAGES_PER_SOCKET + 1)]
        for k, content in enumerate(contents, start=1):
            await client.message(content, client_msg_id=f"s{index}-c{k}")
        session = await client.expect("session", status="active")
        session_id = session["session_id"]
        turns = []
        for k, content in enumerate(contents, start=1):
            accepted, reply = await client.expect_turn(
                session_id=session_id, content=content, n=k, client_msg_id=f"s{index}-c{k}", timeout=30
            )
            turns.append((accepted["turn_id"], content, reply))
        return {"user": user, "session_id": session_id, "turns": turns}

    async def scenario():
        async with Sockets() as sockets:
            return await asyncio.gather(*(one_socket(sockets, i) for i in range(SOCKETS)))

    results = run(scenario(), timeout=60)

    session_ids = [r["session_id"] for r in results]
    assert len(set(session_ids)) == SOCKETS, "two sockets were given the same session"
    turn_ids = [t[0] for r in results for t in r["turns"]]
    assert len(set(turn_ids)) == SOCKETS * MESSAGES_PER_SOCKET, "a turn id was handed out twice"

    rows = stored_messages(session_ids)
    by_session: dict[str, list[e2e.StoredMessage]] = {}
    for row in rows:
        by_session.setdefault(row.session_id, []).append(row)
    for result in results:
        sid = result["session_id"]
        session_rows = by_session.get(sid, [])
        users = [r for r in session_rows if r.role == "user"]
        assistants = [r for r in session_rows if r.role == "assistant"]
        assert len(users) == MESSAGES_PER_SOCKET and len(assistants) == MESSAGES_PER_SOCKET, (
            f"session {sid}: expected 3 user + 3 assistant rows, got "
            f"{[(r.role, r.content) for r in session_rows]}"
        )
        # Rows in id order: user k, assistant k, for k = 1..3, with the turn ids the client saw.
        expected = []
        for k, (turn_id, content, reply) in enumerate(result["turns"], start=1):
            expected.append((turn_id, "user", content))
            expected.append((turn_id, "assistant", reply_text(k, content)))
        assert [(r.turn_id, r.role, r.content) for r in session_rows] == expected, f"session {sid}: stored rows differ"
        stored_reply_ids = [r.id for r in assistants]
        assert stored_reply_ids == [t[2]["message"]["id"] for t in result["turns"]], (
            f"session {sid}: reply message ids differ from the stored ones"
        )
        owner = e2e.session_row(sid)
        assert owner and owner["user_id"] == result["user"] and owner["status"] == "active", owner
    assert e2e.duplicate_turn_roles(session_ids) == [], "duplicate (turn_id, role) rows"


def test_back_to_back_messages_are_answered_in_send_order(stack):
    """One socket sends 6 messages without waiting. The first is slow in the LLM, so
    a gateway that did not hold the later ones back would get answers out of order
    and with the wrong history; the replies must be Resposta 1..6 in send order."""
    user = e2e.unique("order")
    contents = [
        f"[sim:delay=400] primeira {e2e.unique('m')}",
        f"segunda {e2e.unique('m')}",
        f"[sim:delay=150] terceira {e2e.unique('m')}",
        f"quarta {e2e.unique('m')}",
        f"quinta {e2e.unique('m')}",
        f"sexta {e2e.unique('m')}",
    ]
    shown = [c.split("] ", 1)[1] if c.startswith("[sim:") else c for c in contents]

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="order")
            for k, content in enumerate(contents, start=1):
                await client.message(content, client_msg_id=f"c{k}")
            session_id = (await client.expect("session"))["session_id"]
            frames = []
            for k in range(1, len(contents) + 1):
                accepted = await client.expect("accepted", 20, session_id=session_id, client_msg_id=f"c{k}")
                reply = await client.expect_reply(
                    session_id=session_id, turn_id=accepted["turn_id"], text=reply_text(k, shown[k - 1])
                )
                frames.append((accepted, reply))
            return session_id, frames

    session_id, frames = run(scenario(), timeout=60)
    rows = stored_messages(session_id)
    assert [(r.role, r.content) for r in rows] == [
        pair for k, content in enumerate(contents, start=1)
        for pair in (("user", content), ("assistant", reply_text(k, shown[k - 1])))
    ]
    assert [r.turn_id for r in rows if r.role == "assistant"] == [a["turn_id"] for a, _ in frames]
