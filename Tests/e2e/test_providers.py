"""The provider chain on the real stack: Gemini first, OpenAI as the fallback, both
served by the simulator. Counters of the simulator prove how often each was called."""

from __future__ import annotations

import time

import parley_e2e as e2e
from parley_e2e import Sockets, make_jwt, psql, run, sql_literal


def ask(stack, content: str, user: str) -> tuple[dict, dict, float]:
    """Sends one plain-text message: (accepted, final frame, seconds from accepted to it)."""

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label=user)
            await client.send(content)
            session_id = (await client.expect("session"))["session_id"]
            accepted = await client.expect("accepted", session_id=session_id)
            started = time.monotonic()
            final = await client.recv(30, waiting_for="the reply or an error")
            while final.get("type") == "reset":
                final = await client.recv(30, waiting_for="the reply or an error after a reset")
            return accepted, final, time.monotonic() - started

    return run(scenario(), timeout=60)


def calls(before: dict, after: dict) -> dict[str, int]:
    return {key: after.get(key, 0) - before.get(key, 0) for key in ("gemini_stream", "openai_stream")}


def stored_facts(turn_id: str) -> list[str]:
    rows = psql(
        "SELECT provider, model, attempts, prompt_tokens > 0, completion_tokens > 0, latency_ms >= 0, ttft_ms >= 0, finish_reason "
        f"FROM messages WHERE turn_id = {sql_literal(turn_id)} AND role = 'assistant'"
    )
    assert len(rows) == 1, rows
    return rows[0]


def test_a_failing_primary_falls_back_to_the_second_provider(stack):
    before = stack.sim_stats()
    accepted, final, _ = ask(stack, f"gemini caiu [sim:status=503,only=gemini] {e2e.unique('m')}", e2e.unique("fallback"))
    assert final["type"] == "reply", final
    assert calls(before, stack.sim_stats()) == {"gemini_stream": 3, "openai_stream": 1}
    provider, model, attempts, *checks, finish = stored_facts(accepted["turn_id"])
    assert (provider, model, attempts) == ("openai", "gpt-4o-mini", "4")
    assert checks == ["t", "t", "t", "t"] and finish == "stop"


def test_a_rate_limited_attempt_is_retried_after_the_servers_hint(stack):
    before = stack.sim_stats()
    accepted, final, elapsed = ask(stack, f"devagar [sim:status=429,retry_after=1,fail_first=1] {e2e.unique('m')}", e2e.unique("retry"))
    assert final["type"] == "reply", final
    assert calls(before, stack.sim_stats()) == {"gemini_stream": 2, "openai_stream": 0}
    assert elapsed >= 1.0, f"the retry did not wait for Retry-After: {elapsed:.2f} s"
    provider, model, attempts, *_ = stored_facts(accepted["turn_id"])
    assert (provider, model, attempts) == ("gemini", "gemini-2.5-flash", "2")


def test_a_client_error_is_not_retried_but_falls_back(stack):
    before = stack.sim_stats()
    _, final, _ = ask(stack, f"pedido ruim [sim:status=400,only=gemini] {e2e.unique('m')}", e2e.unique("reject"))
    assert final["type"] == "reply", final
    assert calls(before, stack.sim_stats()) == {"gemini_stream": 1, "openai_stream": 1}


def test_a_blocked_message_is_a_clear_error_and_not_sent_elsewhere(stack):
    before = stack.sim_stats()
    accepted, final, _ = ask(stack, f"algo proibido [sim:safety,only=gemini] {e2e.unique('m')}", e2e.unique("blocked"))
    assert final["type"] == "error" and final["code"] == "llm_blocked", final
    assert final["turn_id"] == accepted["turn_id"]
    assert calls(before, stack.sim_stats()) == {"gemini_stream": 1, "openai_stream": 0}
    assert psql(f"SELECT count(*) FROM messages WHERE turn_id = {sql_literal(accepted['turn_id'])}") == [["0"]]


def test_a_malformed_chunk_is_retried_after_a_reset(stack):
    before = stack.sim_stats()
    _, final, _ = ask(stack, f"chunk quebrado [sim:malformed=3,fail_first=1,tokens=30] {e2e.unique('m')}", e2e.unique("malformed"))
    assert final["type"] == "reply", final
    assert calls(before, stack.sim_stats()) == {"gemini_stream": 2, "openai_stream": 0}
