"""A worker dies (SIGKILL) while it holds turns: each accepted turn is still
answered exactly once, and stored exactly once."""

from __future__ import annotations

import asyncio

import parley_e2e as e2e
from parley_e2e import Sockets, make_jwt, reply_text, run, stored_messages

LLM_DELAY_MS = 1500


def test_killing_a_worker_loses_no_accepted_turn_and_duplicates_none(stack):
    workers = stack.live_workers()
    assert len(workers) == e2e.WORKER_COUNT, f"expected {e2e.WORKER_COUNT} live workers before the crash"
    # Exactly as many turns as all workers together take at once (prefetch), each on
    # a session of its own: every worker then holds WORKER_CONCURRENCY of them.
    turns = e2e.WORKER_COUNT * e2e.WORKER_CONCURRENCY
    user = e2e.unique("crash")
    victim = workers[0]
    calls_before = stack.sim_stats().get("requests", 0)

    async def scenario():
        async with Sockets() as sockets:
            clients = [
                await sockets.open(stack.ws_url(i % 2), make_jwt(user), label=f"crash {i} gw{i % 2 + 1}")
                for i in range(turns)
            ]
            contents = [f"[sim:delay={LLM_DELAY_MS}] em voo {i} {e2e.unique('m')}" for i in range(turns)]
            shown = [c.split("] ", 1)[1] for c in contents]
            for i, (client, content) in enumerate(zip(clients, contents)):
                await client.message(content, client_msg_id=f"k{i}")
            sessions, accepted = [], []
            for i, client in enumerate(clients):
                sessions.append((await client.expect("session"))["session_id"])
                accepted.append(await client.expect("accepted", session_id=sessions[i], client_msg_id=f"k{i}"))

            # Wait until every turn is at the LLM (so the victim holds its share
            # mid-call), then crash it.
            await e2e.async_wait_until(
                lambda: stack.sim_stats().get("requests", 0) - calls_before >= turns,
                10, f"all {turns} turns to reach the LLM", interval=0.05,
            )
            victim.kill()
            replacement = stack.start_worker()

            replies = await asyncio.gather(*(
                client.expect_reply(
                    session_id=sessions[i], turn_id=accepted[i]["turn_id"], text=reply_text(1, shown[i]), timeout=30, after_resets=True
                )
                for i, client in enumerate(clients)
            ))
            # A follow-up on every session: the next frames must be exactly its
            # accepted and reply, so a second reply to the first turn would show here.
            for i, client in enumerate(clients):
                await client.message(f"depois da queda {i}", client_msg_id=f"after{i}")
            await asyncio.gather(*(
                client.expect_turn(session_id=sessions[i], content=f"depois da queda {i}", n=2, client_msg_id=f"after{i}")
                for i, client in enumerate(clients)
            ))
            await asyncio.to_thread(replacement.wait_healthy)
            return sessions, accepted, replies, clients, contents, shown

    sessions, accepted, replies, clients, contents, shown = run(scenario(), timeout=60)

    for i, client in enumerate(clients):
        reply_turns = [f["turn_id"] for f in client.frames if f.get("type") == "reply"]
        assert len(reply_turns) == len(set(reply_turns)) == 2, f"socket {i} got replies {reply_turns}"
    # Only the victim's turns start over (with a reset: it may have streamed text).
    reset_sockets = [i for i, client in enumerate(clients) if any(f.get("type") == "reset" for f in client.frames)]
    assert len(reset_sockets) <= e2e.WORKER_CONCURRENCY, f"resets on sockets {reset_sockets}"

    rows = stored_messages(sessions)
    for i, session_id in enumerate(sessions):
        turn_id = accepted[i]["turn_id"]
        crash_rows = [(r.role, r.content) for r in rows if r.turn_id == turn_id]
        assert crash_rows == [("user", contents[i]), ("assistant", reply_text(1, shown[i]))], (
            f"turn {turn_id} of session {session_id}: stored {crash_rows}"
        )
        assert [r.id for r in rows if r.turn_id == turn_id and r.role == "assistant"] == [replies[i]["message"]["id"]]
        assert len([r for r in rows if r.session_id == session_id]) == 4
    assert e2e.duplicate_turn_roles(sessions) == []

    # The victim held WORKER_CONCURRENCY turns at the LLM; each was asked again
    # once after redelivery, and no turn was sent to the LLM more than that.
    calls = stack.sim_stats().get("requests", 0) - calls_before
    expected_calls = turns + e2e.WORKER_CONCURRENCY + turns  # first attempts + redeliveries + follow-ups
    assert calls == expected_calls, f"the LLM was called {calls} times, expected {expected_calls}"
    assert len(stack.live_workers()) == e2e.WORKER_COUNT
