"""Token streaming from the LLM through RabbitMQ to every socket, and cancel."""

from __future__ import annotations

import parley_e2e as e2e
from parley_e2e import Sockets, make_jwt, psql, run, sql_literal


def deltas_of(client: e2e.Client, turn_id: str) -> list[dict]:
    return [d for d in client.deltas if d.get("turn_id") == turn_id]


def test_deltas_arrive_in_order_before_the_reply_on_every_socket(stack):
    user = e2e.unique("stream")
    content = f"conte mais [sim:tokens=120,tps=300] {e2e.unique('m')}"

    async def scenario():
        async with Sockets() as sockets:
            a = await sockets.open(stack.ws_url(0), make_jwt(user), label="A")
            await a.send(content)
            session_id = (await a.expect("session"))["session_id"]
            b = await sockets.open(stack.ws_url(1), make_jwt(user), label="B on gateway 2")
            await b.send({"type": "resume", "session_id": session_id})
            await b.expect("history", session_id=session_id)
            accepted = await a.expect("accepted", session_id=session_id)
            reply_a = await a.expect("reply", 30, session_id=session_id, turn_id=accepted["turn_id"])
            reply_b = await b.expect("reply", 30, session_id=session_id, turn_id=accepted["turn_id"])
            return accepted["turn_id"], reply_a, reply_b, a, b

    turn_id, reply_a, reply_b, a, b = run(scenario(), timeout=60)
    text = reply_a["message"]["content"]
    assert text.startswith("Resposta 1: você disse"), text
    for client in (a, b):
        deltas = deltas_of(client, turn_id)
        # A 120-token answer arrives in several coalesced pieces, not one per token.
        assert 2 <= len(deltas) < 120, f"{client.label}: {len(deltas)} deltas"
        indexes = [d["index"] for d in deltas]
        assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes), indexes
        # Every delta came before the reply, and together they begin it (the text still
        # grouped when the answer ended went only into the reply).
        assert client.frames.index(deltas[-1]) < client.frames.index(reply_a if client is a else reply_b)
        if client is a:
            streamed = "".join(d["text"] for d in deltas)
            assert streamed and text.startswith(streamed), (streamed[-40:], text[:80])
    assert reply_b["message"] == reply_a["message"]


def test_cancel_stops_a_long_reply_and_keeps_what_was_generated(stack):
    user = e2e.unique("cancel")
    content = f"uma resposta bem longa [sim:tokens=3000,tps=40] {e2e.unique('m')}"
    before = stack.sim_stats()

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="canceller")
            await client.send(content)
            session_id = (await client.expect("session"))["session_id"]
            accepted = await client.expect("accepted", session_id=session_id)
            turn_id = accepted["turn_id"]
            await client.pump_until(lambda: len(deltas_of(client, turn_id)) >= 2, 20, "two deltas of the long reply")
            await client.send({"type": "cancel", "turn_id": turn_id})
            reply = await client.expect("reply", 15, session_id=session_id, turn_id=turn_id)
            return session_id, turn_id, reply, client

    session_id, turn_id, reply, client = run(scenario(), timeout=90)
    assert reply.get("cancelled") is True, reply
    text = reply["message"]["content"]
    streamed = "".join(d["text"] for d in deltas_of(client, turn_id))
    assert text and streamed and text.startswith(streamed[: len(streamed) // 2]), (text[:80], streamed[:80])
    # Far from the 3000 tokens (75 s at 40 tokens/s) it would have taken.
    assert len(text) < 3000 * 3
    rows = psql(
        f"SELECT role, cancelled FROM messages WHERE turn_id = {sql_literal(turn_id)} ORDER BY role"
    )
    assert rows == [["assistant", "t"], ["user", "f"]], rows
    after = stack.sim_stats()
    assert after.get("gemini_stream", 0) - before.get("gemini_stream", 0) == 1, (before, after)
    # The worker closed the HTTP stream to the provider: the simulator saw its client go.
    e2e.wait_until(
        lambda: stack.sim_stats().get("streams_closed_by_client", 0) - before.get("streams_closed_by_client", 0) == 1,
        10, "the simulator to notice the closed stream",
    )


def test_cancelling_an_unknown_turn_is_an_error(stack):
    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(e2e.unique("nocancel")), label="nothing to cancel")
            await client.send({"type": "cancel", "turn_id": "6d5e98a0-6792-40fd-800a-22d6f8425e36"})
            return await client.expect_error("turn_not_found")

    run(scenario())


def test_a_stream_cut_midway_is_retried_after_a_reset(stack):
    user = e2e.unique("cut")
    content = f"corta no meio [sim:cut=5,fail_first=1,tokens=40] {e2e.unique('m')}"

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="cut")
            await client.send(content)
            session_id = (await client.expect("session"))["session_id"]
            accepted = await client.expect("accepted", session_id=session_id)
            turn_id = accepted["turn_id"]

            def replied() -> bool:
                return any(f.get("type") == "reply" and f.get("turn_id") == turn_id for f in client.frames)

            await client.pump_until(replied, 30, "the reply after the reset")
            reply = next(f for f in client.frames if f.get("type") == "reply" and f.get("turn_id") == turn_id)
            return turn_id, reply, client

    turn_id, reply, client = run(scenario(), timeout=60)
    resets = [f for f in client.frames if f.get("type") == "reset" and f.get("turn_id") == turn_id]
    assert len(resets) == 1, client.frames
    reset_at = client.frames.index(resets[0])
    after_reset = "".join(f["text"] for f in client.frames[reset_at:] if f.get("type") == "delta" and f.get("turn_id") == turn_id)
    # What streamed after the reset begins the new answer (what was still grouped at its
    # end went only into the reply); nothing of the cut attempt is in it.
    assert after_reset and reply["message"]["content"].startswith(after_reset), (after_reset[-40:], reply["message"]["content"][:80])
