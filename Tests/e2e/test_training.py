"""Training sessions: context from the platform or the catalog, the topic-aware opening,
completion, and the completion notice delivered exactly once through the outbox."""

from __future__ import annotations

import parley_e2e as e2e
from parley_e2e import Sockets, make_jwt, psql, run, sql_literal, wait_until

MARKER = "{TOPIC_COMPLETED}"


def context_row(session_id: str) -> list[str]:
    rows = psql(
        "SELECT source, coalesce(topic_title, ''), coalesce(course_title, ''), coalesce(user_level, ''), "
        f"array_to_string(learning_objectives, '|') FROM session_contexts WHERE session_id = {sql_literal(session_id)}"
    )
    return rows[0] if rows else []


async def tutoring(client, session_id: str) -> dict:
    """Two answers, then mastery; returns the completing reply."""
    for n, answer in enumerate(["x é a incógnita", "x = 2"], start=1):
        await client.message(answer, session_id=session_id)
        await client.expect_turn(session_id=session_id, content=answer, n=n)
    await client.message("eu domino equações", session_id=session_id, client_msg_id="done")
    accepted = await client.expect("accepted", session_id=session_id, client_msg_id="done")
    return await client.expect("reply", 20, session_id=session_id, turn_id=accepted["turn_id"])


def test_a_platform_topic_session_is_tutored_to_completion_and_notified_once(stack):
    user = e2e.unique("learner")

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="learner")
            await client.send({"type": "start", "topic_id": 7001, "course_id": 70, "request_id": "r1"})
            session_id = (await client.expect("session", request_id="r1"))["session_id"]
            opening = await client.expect("reply", 20, session_id=session_id)
            completed = await tutoring(client, session_id)
            await client.message("e agora?", session_id=session_id, client_msg_id="late")
            await client.expect_error("session_completed", 10, client_msg_id="late")
            return session_id, opening, completed, client

    session_id, opening, completed, client = run(scenario(), timeout=90)
    # The opening was generated for this topic (the simulator echoes the topic of the cue).
    assert opening["message"]["content"].startswith("Olá! Vamos começar sobre Equações do 1º grau."), opening
    assert context_row(session_id) == ["platform", "Equações do 1º grau", "Álgebra", "advanced", "isolar a incógnita|verificar a solução"]
    assert completed["completed"] is True and completed["message"]["content"] == "Parabéns! Você demonstrou domínio do tema."
    assert all(MARKER not in str(frame) for frame in client.frames)
    notices = wait_until(lambda: stack.platform.completions_for(session_id), 15, "the platform's completion notice")
    assert len(notices) == 1, notices
    notice = notices[0]
    assert notice["userId"] == user and notice["topicId"] == 7001 and notice["courseId"] == 70, notice
    assert notice["sessionId"] == session_id and notice["completedAt"].endswith("Z"), notice
    # Exactly once: nothing more arrives after the outbox row is marked delivered.
    wait_until(
        lambda: psql(f"SELECT delivered_at IS NOT NULL FROM completion_outbox WHERE session_id = {sql_literal(session_id)}") == [["t"]],
        10, "the outbox row marked delivered",
    )
    assert len(stack.platform.completions_for(session_id)) == 1


def test_a_catalog_topic_session_takes_its_context_from_the_catalog(stack):
    user = e2e.unique("catalog")

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(1), make_jwt(user), label="catalog")
            await client.send({"type": "start", "topic_id": 201, "request_id": "c1"})
            session_id = (await client.expect("session", request_id="c1"))["session_id"]
            opening = await client.expect("reply", 20, session_id=session_id)
            completed = await tutoring(client, session_id)
            return session_id, opening, completed

    session_id, opening, completed = run(scenario(), timeout=90)
    # A catalog topic is not the platform's: its completion is not sent there.
    assert completed["completed"] is True
    assert psql(f"SELECT count(*) FROM completion_outbox WHERE session_id = {sql_literal(session_id)}") == [["0"]]
    assert stack.platform.completions_for(session_id) == []
    assert opening["message"]["content"].startswith("Olá! Vamos começar sobre Variáveis e tipos."), opening
    row = context_row(session_id)
    assert row[:3] == ["catalog", "Variáveis e tipos", "Introdução à programação"], row
    template = psql(f"SELECT prompt_template FROM session_contexts WHERE session_id = {sql_literal(session_id)}")
    assert template[0][0].startswith("Você é um tutor de programação"), template


def test_unknown_topics_and_courses_are_refused_and_nothing_is_stored(stack):
    user = e2e.unique("unknown")

    async def scenario():
        async with Sockets() as sockets:
            platform = await sockets.open(stack.ws_url(0), make_jwt(user), label="platform")
            await platform.send({"type": "start", "topic_id": 999999, "request_id": "p1"})
            on_platform = await platform.expect_error("topic_not_found", request_id="p1")
            await platform.send({"type": "start", "topic_id": 7001, "course_id": 12345, "request_id": "p2"})
            await platform.expect_error("course_not_found", request_id="p2")
            catalog = await sockets.open(stack.ws_url(1), make_jwt(user), label="catalog")
            await catalog.send({"type": "start", "topic_id": 999999, "request_id": "k1"})
            in_catalog = await catalog.expect_error("topic_not_found", request_id="k1")
            return on_platform, in_catalog

    on_platform, in_catalog = run(scenario())
    assert "999999" in on_platform["message"] and "999999" in in_catalog["message"]
    assert psql(f"SELECT count(*) FROM sessions WHERE user_id = {sql_literal(user)}") == [["0"]]


def test_the_platform_is_retried_and_its_outage_is_a_clear_error(stack):
    user = e2e.unique("retry")

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="retry")
            with stack.platform.lock:
                stack.platform.read_failures = 2  # the gateway tries 3 times
            await client.send({"type": "start", "topic_id": 7001, "request_id": "ok"})
            started = await client.expect("session", 20, request_id="ok")
            await client.expect("reply", 20, session_id=started["session_id"])
            with stack.platform.lock:
                stack.platform.read_failures = 1000
            await client.send({"type": "start", "topic_id": 7001, "request_id": "down"})
            refused = await client.expect_error("platform_unavailable", 20, request_id="down")
            with stack.platform.lock:
                stack.platform.read_failures = 0
            return refused

    refused = run(scenario())
    assert "no session was started" in refused["message"], refused
    assert psql(f"SELECT count(*) FROM sessions WHERE user_id = {sql_literal(user)}") == [["1"]]


def test_a_failing_platform_gets_the_notice_exactly_once_after_retries(stack):
    user = e2e.unique("flaky")
    with stack.platform.lock:
        stack.platform.completion_failures = 3

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="flaky")
            await client.send({"type": "start", "topic_id": 7001, "course_id": 70, "request_id": "s"})
            session_id = (await client.expect("session", request_id="s"))["session_id"]
            await client.expect("reply", 20, session_id=session_id)
            completed = await tutoring(client, session_id)
            return session_id, completed

    session_id, completed = run(scenario(), timeout=90)
    assert completed["completed"] is True
    wait_until(lambda: stack.platform.completions_for(session_id), 20, "the notice after three refusals")
    rows = wait_until(
        lambda: psql(f"SELECT attempts, last_error IS NULL FROM completion_outbox WHERE session_id = {sql_literal(session_id)} AND delivered_at IS NOT NULL"),
        10, "the outbox row marked delivered",
    )
    assert rows == [["4", "t"]], rows
    notices = stack.platform.completions_for(session_id)
    assert len(notices) == 1 and notices[0]["topicId"] == 7001 and notices[0]["courseId"] == 70, notices


def test_a_notice_pending_while_the_workers_stop_is_delivered_after_restart(stack):
    user = e2e.unique("restart")
    with stack.platform.lock:
        stack.platform.refuse_completions = True

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="restart")
            await client.send({"type": "start", "topic_id": 7001, "request_id": "s"})
            session_id = (await client.expect("session", request_id="s"))["session_id"]
            await client.expect("reply", 20, session_id=session_id)
            await tutoring(client, session_id)
            return session_id

    try:
        session_id = run(scenario(), timeout=90)
        wait_until(
            lambda: psql(f"SELECT attempts > 0 FROM completion_outbox WHERE session_id = {sql_literal(session_id)}") == [["t"]],
            15, "a refused delivery attempt",
        )
        # Every worker stops (SIGTERM) with the notice undelivered.
        for worker in stack.live_workers():
            worker.terminate()
        for worker in stack.workers:
            wait_until(lambda w=worker: not w.alive(), 15, f"{worker.name} to stop")
        with stack.platform.lock:
            stack.platform.refuse_completions = False
        assert stack.platform.completions_for(session_id) == []
    finally:
        with stack.platform.lock:
            stack.platform.refuse_completions = False
        # The suite goes on with a full set of workers.
        replacements = [stack.start_worker() for _ in range(e2e.WORKER_COUNT - len(stack.live_workers()))]
        for worker in replacements:
            worker.wait_healthy()
    wait_until(lambda: stack.platform.completions_for(session_id), 20, "the notice after the restart")
    wait_until(
        lambda: psql(f"SELECT delivered_at IS NOT NULL FROM completion_outbox WHERE session_id = {sql_literal(session_id)}") == [["t"]],
        10, "the outbox row marked delivered",
    )
    assert len(stack.platform.completions_for(session_id)) == 1
