"""The REST API: the same sessions, queue, workers and rules as the WebSocket."""

from __future__ import annotations

import json

import parley_e2e as e2e
from parley_e2e import ADMIN_KEY, Sockets, make_jwt, psql, reply_text, run, sql_literal, wait_until

MARKER = "{TOPIC_COMPLETED}"


def error_code(body) -> str | None:
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def test_a_training_session_over_rest_from_start_to_completion(stack):
    token = make_jwt(e2e.unique("rest"))
    status, started = stack.api("POST", "/api/sessions/start", {"topic_id": 7001, "course_id": 70}, token)
    assert status == 201, started
    session = started["session"]
    session_id = session["session_id"]
    assert session["topic_title"] == "Equações do 1º grau" and session["status"] == "active" and session["completed_at"] is None, session
    assert started["message"]["content"].startswith("Olá! Vamos começar sobre Equações do 1º grau."), started
    status, first = stack.api("POST", f"/api/sessions/{session_id}/message", {"content": "x = 2", "client_msg_id": "a"}, token)
    assert status == 200, first
    assert first["message"]["content"] == reply_text(1, "x = 2") and first["completed"] is False and first["status"] == "active", first
    status, done = stack.api("POST", f"/api/sessions/{session_id}/message", {"content": "eu domino isso"}, token, gateway=1)
    assert status == 200, done
    assert done["completed"] is True and done["status"] == "completed", done
    assert done["message"]["content"] == "Parabéns! Você demonstrou domínio do tema.", done
    status, refused = stack.api("POST", f"/api/sessions/{session_id}/message", {"content": "mais?"}, token)
    assert status == 409 and error_code(refused) == "session_completed", (status, refused)
    status, history = stack.api("GET", f"/api/sessions/{session_id}", token=token)
    assert status == 200, history
    assert history["session"]["status"] == "completed" and history["session"]["completed_at"], history
    assert [m["role"] for m in history["messages"]] == ["assistant", "user", "assistant", "user", "assistant"], history
    assert MARKER not in json.dumps(history, ensure_ascii=False)
    assert history["next_cursor"] is None
    wait_until(lambda: stack.platform.completions_for(session_id), 15, "the platform's notice of a REST session")


def test_history_is_paged_with_a_cursor(stack):
    token = make_jwt(e2e.unique("pages"))
    status, started = stack.api("POST", "/api/sessions/start", None, token)
    assert status == 201, started
    session_id = started["session"]["session_id"]
    for n in range(1, 4):
        status, _ = stack.api("POST", f"/api/sessions/{session_id}/message", {"content": f"m{n}"}, token)
        assert status == 200
    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, page = stack.api("GET", f"/api/sessions/{session_id}{query}", token=token)
        assert status == 200, page
        pages += 1
        seen += [m["id"] for m in page["messages"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 7 and seen == sorted(set(seen)), (pages, seen)
    status, body = stack.api("GET", f"/api/sessions/{session_id}?cursor=abc", token=token)
    assert status == 400 and error_code(body) == "malformed_request", body
    status, body = stack.api("GET", f"/api/sessions/{session_id}?limit=0", token=token)
    assert status == 400 and error_code(body) == "malformed_request", body


def test_rest_and_websocket_share_a_session(stack):
    user = e2e.unique("both")
    token = make_jwt(user)

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(1), token, label="socket")
            await client.send({"type": "start", "request_id": "r"})
            session_id = (await client.expect("session", request_id="r"))["session_id"]
            await client.expect("reply", 20, session_id=session_id)
            import asyncio

            status, body = await asyncio.to_thread(stack.api, "POST", f"/api/sessions/{session_id}/message", {"content": "via rest"}, token)
            seen = await client.expect("reply", 20, session_id=session_id)
            return status, body, seen

    status, body, seen = run(scenario())
    assert status == 200, body
    assert seen["turn_id"] == body["turn_id"] and seen["message"]["content"] == reply_text(1, "via rest"), (seen, body)


def test_rest_errors_are_json_with_the_right_status(stack):
    owner, other = make_jwt(e2e.unique("owner")), make_jwt(e2e.unique("other"))
    status, started = stack.api("POST", "/api/sessions/start", {}, owner)
    assert status == 201, started
    session_id = started["session"]["session_id"]
    missing = "00000000-0000-4000-8000-000000000000"
    cases = {
        "no token": (stack.api("POST", "/api/sessions/start", {}), 401, "missing_token"),
        "bad token": (stack.api("GET", f"/api/sessions/{session_id}", token="nope"), 401, "invalid_token"),
        "foreign session": (stack.api("GET", f"/api/sessions/{session_id}", token=other), 403, "forbidden"),
        "foreign message": (stack.api("POST", f"/api/sessions/{session_id}/message", {"content": "oi"}, other), 403, "forbidden"),
        "unknown session": (stack.api("POST", f"/api/sessions/{missing}/message", {"content": "oi"}, owner), 404, "session_not_found"),
        "bad uuid": (stack.api("GET", "/api/sessions/not-a-uuid", token=owner), 400, "malformed_request"),
        "not json": (stack.api("POST", f"/api/sessions/{session_id}/message", "{nope", owner), 400, "malformed_request"),
        "no content": (stack.api("POST", f"/api/sessions/{session_id}/message", {"text": "oi"}, owner), 400, "malformed_request"),
        "wrong type": (stack.api("POST", "/api/sessions/start", {"topic_id": "x"}, owner), 400, "malformed_request"),
        "empty": (stack.api("POST", f"/api/sessions/{session_id}/message", {"content": "  "}, owner), 400, "empty_content"),
        "too long": (stack.api("POST", f"/api/sessions/{session_id}/message", {"content": "a" * 4001}, owner), 413, "content_too_long"),
        "huge body": (stack.api("POST", f"/api/sessions/{session_id}/message", {"content": "a" * 70000}, owner), 413, "body_too_large"),
        "unknown topic": (stack.api("POST", "/api/sessions/start", {"topic_id": 424242}, owner), 404, "topic_not_found"),
        "bad wait": (stack.api("POST", f"/api/sessions/{session_id}/message?wait=0", {"content": "oi"}, owner), 400, "malformed_request"),
    }
    wrong = {
        name: (status, body)
        for name, ((status, body), want_status, want_code) in cases.items()
        if status != want_status or error_code(body) != want_code or not body["error"].get("message")
    }
    assert not wrong, wrong
    # The administrator reads any session.
    status, body = stack.api("GET", f"/api/sessions/{session_id}", token=ADMIN_KEY)
    assert status == 200 and body["session"]["session_id"] == session_id, body
    # Nothing the refused requests carried was stored.
    assert [m.role for m in e2e.stored_messages(session_id)] == ["assistant"]


def test_a_reply_slower_than_the_wait_is_a_504_and_still_stored(stack):
    token = make_jwt(e2e.unique("slow"))
    status, started = stack.api("POST", "/api/sessions/start", {}, token)
    assert status == 201
    session_id = started["session"]["session_id"]
    status, body = stack.api("POST", f"/api/sessions/{session_id}/message?wait=1", {"content": "devagar [sim:ttft=2500]"}, token)
    assert status == 504 and error_code(body) == "reply_timeout", (status, body)
    assert body["error"]["session_id"] == session_id and body["error"]["turn_id"], body
    turn_id = body["error"]["turn_id"]
    rows = wait_until(
        lambda: psql(f"SELECT content FROM messages WHERE turn_id = {sql_literal(turn_id)} AND role = 'assistant'"),
        20, "the slow reply to be stored",
    )
    assert rows == [[reply_text(1, "devagar")]], rows
    status, history = stack.api("GET", f"/api/sessions/{session_id}", token=token)
    assert history["messages"][-1]["content"] == reply_text(1, "devagar"), history


def test_a_message_still_waiting_behind_another_when_the_wait_ends_is_withdrawn(stack):
    user = e2e.unique("busy")
    token = make_jwt(user)

    async def scenario():
        import asyncio

        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), token, label="busy")
            await client.send({"type": "start", "request_id": "r"})
            session_id = (await client.expect("session", request_id="r"))["session_id"]
            await client.expect("reply", 20, session_id=session_id)
            await client.message("devagar [sim:ttft=3000]", session_id=session_id)
            await client.expect("accepted", session_id=session_id)
            status, body = await asyncio.to_thread(
                stack.api, "POST", f"/api/sessions/{session_id}/message?wait=1", {"content": "fila"}, token
            )
            slow = await client.expect("reply", 20, session_id=session_id)
            # Had the withdrawn message been sent, this would be the tutor's third answer.
            await client.message("depois", session_id=session_id)
            await client.expect_turn(session_id=session_id, content="depois", n=2)
            return session_id, status, body, slow

    session_id, status, body, slow = run(scenario())
    assert status == 409 and error_code(body) == "session_busy", (status, body)
    assert body["error"]["session_id"] == session_id and "not sent" in body["error"]["message"], body
    assert slow["message"]["content"] == reply_text(1, "devagar"), slow
    # The withdrawn message was never sent: nothing of it is stored.
    assert "fila" not in [m.content for m in e2e.stored_messages(session_id)]


def test_v1_chat_and_its_paged_logs(stack):
    user = e2e.unique("v1")
    token = make_jwt(user)
    answers = []
    for n in range(3):
        status, body = stack.api("POST", "/v1/chat", {"user_id": user, "prompt": f"pergunta {n}"}, token)
        assert status == 200, body
        assert set(body) == {"id", "user_id", "session_id", "prompt", "response", "model", "timestamp"}, body
        assert body["user_id"] == user and body["prompt"] == f"pergunta {n}", body
        assert body["response"] == reply_text(1, f"pergunta {n}") and body["model"], body
        answers.append(body)
    status, body = stack.api("POST", "/v1/chat", {"user_id": "someone-else", "prompt": "oi"}, token)
    assert status == 403 and error_code(body) == "forbidden", body
    status, first = stack.api("GET", f"/v1/chat/{user}/logs?limit=2", token=token)
    assert status == 200, first
    status, second = stack.api("GET", f"/v1/chat/{user}/logs?limit=2&cursor={first['next_cursor']}", token=token)
    assert status == 200, second
    assert [log["prompt"] for log in first["logs"] + second["logs"]] == ["pergunta 2", "pergunta 1", "pergunta 0"]
    assert second["next_cursor"] is None
    assert first["logs"][0]["id"] == answers[2]["id"]
    status, body = stack.api("GET", f"/v1/chat/{user}/logs", token=make_jwt(e2e.unique("nosy")))
    assert status == 403 and error_code(body) == "forbidden", body
    status, body = stack.api("GET", "/v1/chat/logs", token=token)
    assert status == 403 and error_code(body) == "admin_required", body
    status, body = stack.api("GET", f"/v1/chat/logs?user_id={user}&limit=500", token=ADMIN_KEY)
    assert status == 200 and len(body["logs"]) == 3, body
    status, body = stack.api("GET", "/v1/chat/logs?limit=1", token=ADMIN_KEY)
    assert status == 200 and len(body["logs"]) == 1 and body["next_cursor"], body


def test_the_openapi_document_covers_the_routes_and_docs_render_it(stack):
    status, document = stack.api("GET", "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3."), document
    paths = set(document["paths"])
    for path in ("/api/sessions/start", "/api/sessions/{session_id}/message", "/api/sessions/{session_id}", "/v1/chat",
                 "/v1/chat/{user_id}/logs", "/v1/chat/logs"):
        assert path in paths, (path, sorted(paths))
    status, page = e2e.http_get(stack.http_url(0) + "/docs")
    assert status == 200 and "/openapi.json" in page and "<script" in page, page[:200]


def test_a_misspelt_field_is_refused_not_ignored(stack):
    """Found by the REST fuzzer: `{"topicId": 7001}` started a free chat instead of the
    topic, without a word. A field the body does not have is `malformed_request`."""
    user = e2e.unique("typo")
    token = e2e.make_jwt(user)
    status, body = stack.api("POST", "/api/sessions/start", {"topicId": 7001}, token)
    assert status == 400 and body["error"]["code"] == "malformed_request", body
    assert '"topicId"' in body["error"]["message"] and '"topic_id"' in body["error"]["message"], body
    assert e2e.psql(f"SELECT count(*) FROM sessions WHERE user_id = {e2e.sql_literal(user)}") == [["0"]]
    status, body = stack.api("POST", "/v1/chat", {"user_id": user, "prompt": "olá", "stream": True}, token)
    assert status == 400 and '"stream"' in body["error"]["message"], body
