"""Authentication at the handshake and the error frames of docs/protocol.md."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
import websockets

import parley_e2e as e2e
from parley_e2e import Client, Sockets, make_jwt, psql, reply_text, run, sql_literal, stored_messages


# ---------------------------------------------------------------- handshake


async def refused_handshake(url: str, token: str | None, *, via_query: bool = False) -> tuple[dict, int | None, str]:
    """Connects with a bad token: (the one frame sent, close code, close reason).

    The gateway checks the token after the upgrade (docs/protocol.md): it sends one
    error frame and closes with 1008 (policy violation), the reason being the code."""
    client = await Client.connect(url, token, via_query=via_query)
    try:
        text = await asyncio.wait_for(client.ws.recv(), 10)
        frame = json.loads(text)
        try:
            extra = await asyncio.wait_for(client.ws.recv(), 10)
            raise AssertionError(f"the socket with token {token!r} stayed open and sent {extra!r}")
        except websockets.ConnectionClosed as closed:
            return frame, closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else ""
    finally:
        await client.close()


def assert_refused(result: tuple[dict, int | None, str], code: str) -> None:
    frame, close_code, reason = result
    assert frame.get("type") == "error" and frame.get("code") == code, f"expected an error frame {code!r}, got {frame}"
    assert isinstance(frame.get("message"), str) and frame["message"], frame
    assert close_code == 1008, f"expected close code 1008 (policy violation), got {close_code}"
    assert reason == code, f"expected close reason {code!r}, got {reason!r}"


def test_a_plain_get_without_a_token_gets_http_401_with_the_code(stack):
    import urllib.error
    import urllib.request

    url = stack.ws_url(0).replace("ws://", "http://")
    try:
        urllib.request.urlopen(url, timeout=10)
        raise AssertionError("GET /ws without a token was answered with success")
    except urllib.error.HTTPError as refused:
        assert refused.code == 401, refused.code
        body = json.loads(refused.read().decode())
        assert body["error"]["code"] == "missing_token", body
        assert refused.headers.get("WWW-Authenticate") == "Bearer"


def test_handshake_without_a_token_is_refused_with_missing_token(stack):
    assert_refused(run(refused_handshake(stack.ws_url(0), None)), "missing_token")
    assert_refused(run(refused_handshake(stack.ws_url(1), "", via_query=True)), "missing_token")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-jwt", id="garbage"),
        pytest.param("unknown-api-key-123", id="unknown-api-key"),
        pytest.param(make_jwt("mallory", secret="another-secret-0123456789abcdefg"), id="wrong-secret"),
        pytest.param(make_jwt(None), id="no-sub"),
        pytest.param(make_jwt("mallory")[:-3] + "abc", id="tampered-signature"),
    ],
)
def test_handshake_with_a_bad_token_is_refused_with_invalid_token(stack, token):
    assert_refused(run(refused_handshake(stack.ws_url(0), token)), "invalid_token")


def test_handshake_with_an_expired_token_is_refused_with_token_expired(stack):
    assert_refused(run(refused_handshake(stack.ws_url(0), make_jwt("late", expires_in=-60))), "token_expired")


@pytest.mark.parametrize("via_query", [False, True], ids=["header", "query"])
def test_api_key_and_query_token_authenticate(stack, via_query):
    jwt_user = e2e.unique("query" if via_query else "header")

    async def scenario():
        async with Sockets() as sockets:
            results = {}
            for token, label in ((e2e.API_KEY, "api-key"), (make_jwt(jwt_user), "jwt")):
                client = await sockets.open(stack.ws_url(1), token, via_query=via_query, label=label)
                text = f"autenticado por {label} {e2e.unique('m')}"
                await client.send(text)
                session_id = (await client.expect("session"))["session_id"]
                await client.expect_turn(session_id=session_id, content=text, n=1)
                results[label] = session_id
            return results

    sessions = run(scenario(), timeout=30)
    assert e2e.session_row(sessions["api-key"])["user_id"] == e2e.API_KEY_USER
    assert e2e.session_row(sessions["jwt"])["user_id"] == jwt_user


# ---------------------------------------------------------------- sessions of others


def test_a_user_cannot_use_another_users_session(stack):
    alice, bob = e2e.unique("alice"), e2e.unique("bob")
    unknown = "00000000-0000-4000-8000-" + secrets.token_hex(6)

    async def scenario():
        async with Sockets() as sockets:
            a = await sockets.open(stack.ws_url(0), make_jwt(alice), label="alice")
            await a.send("sessão da alice")
            session_id = (await a.expect("session"))["session_id"]
            await a.expect_turn(session_id=session_id, content="sessão da alice", n=1)

            b = await sockets.open(stack.ws_url(1), make_jwt(bob), label="bob")
            await b.message("quero ler", session_id=session_id, client_msg_id="bob1")
            await b.expect_error("forbidden", client_msg_id="bob1")
            await b.send({"type": "resume", "session_id": session_id})
            await b.expect_error("forbidden")

            await b.message("para ninguém", session_id=unknown, client_msg_id="bob2")
            await b.expect_error("session_not_found", client_msg_id="bob2")
            await b.send({"type": "resume", "session_id": unknown})
            await b.expect_error("session_not_found")

            # Bob's socket still works for his own session.
            await b.send("minha própria")
            own = (await b.expect("session"))["session_id"]
            await b.expect_turn(session_id=own, content="minha própria", n=1)
            return session_id, own

    session_id, bobs = run(scenario(), timeout=30)
    assert [(r.role, r.content) for r in stored_messages(session_id)] == [
        ("user", "sessão da alice"), ("assistant", reply_text(1, "sessão da alice"))
    ], "bob's refused message reached alice's session"
    assert e2e.session_row(bobs)["user_id"] == bob
    assert psql(f"SELECT count(*) FROM sessions WHERE id = {sql_literal(unknown)}") == [["0"]]


# ---------------------------------------------------------------- bad frames


def test_bad_frames_get_their_error_codes_and_the_socket_stays_usable(stack):
    user = e2e.unique("frames")

    async def scenario():
        async with Sockets() as sockets:
            c = await sockets.open(stack.ws_url(0), make_jwt(user), label="frames")
            await c.send('{"type": "message", "content": ')
            await c.expect_error("malformed_frame")
            await c.send('{"content": "sem tipo", "request_id": "q1"}')
            await c.expect_error("malformed_frame", request_id="q1")
            await c.send({"type": "message", "session_id": "not-a-uuid", "content": "x", "client_msg_id": "m1"})
            await c.expect_error("malformed_frame", client_msg_id="m1")
            await c.send({"type": "message", "content": 42, "client_msg_id": "m2"})
            await c.expect_error("malformed_frame", client_msg_id="m2")
            await c.send({"type": "fly", "request_id": "q2"})
            await c.expect_error("unknown_type", request_id="q2")
            await c.send({"type": "message", "content": "   ", "client_msg_id": "m3"})
            await c.expect_error("empty_content", client_msg_id="m3")
            await c.ws.send(b"\x00\x01binary")
            await c.expect_error("unsupported_frame")
            # Still open, and nothing was started by the refused frames.
            await c.send("ainda aqui")
            session_id = (await c.expect("session"))["session_id"]
            await c.expect_turn(session_id=session_id, content="ainda aqui", n=1)
            return session_id

    session_id = run(scenario(), timeout=30)
    assert psql(f"SELECT count(*) FROM sessions WHERE user_id = {sql_literal(user)}") == [["1"]]
    assert len(stored_messages(session_id)) == 2


def test_content_limit_is_4000_characters_and_the_socket_stays_usable(stack):
    user = e2e.unique("long")
    at_limit = "a" * 3992 + secrets.token_hex(4)
    assert len(at_limit) == 4000
    too_long = "b" * 4001

    async def scenario():
        async with Sockets() as sockets:
            c = await sockets.open(stack.ws_url(1), make_jwt(user), label="long")
            await c.send("começo")
            session_id = (await c.expect("session"))["session_id"]
            await c.expect_turn(session_id=session_id, content="começo", n=1)
            await c.message(too_long, client_msg_id="long1")
            await c.expect_error("content_too_long", client_msg_id="long1")
            await c.message(at_limit, client_msg_id="limit")
            await c.expect_turn(session_id=session_id, content=at_limit, n=2, client_msg_id="limit")
            await c.message("depois", client_msg_id="after")
            await c.expect_turn(session_id=session_id, content="depois", n=3, client_msg_id="after")
            return session_id

    session_id = run(scenario(), timeout=30)
    assert [r.content for r in stored_messages(session_id) if r.role == "user"] == ["começo", at_limit, "depois"]


@pytest.mark.parametrize("fragmented", [False, True], ids=["one-frame", "fragmented"])
def test_a_websocket_message_over_64_kib_closes_the_socket_with_1009(stack, fragmented):
    user = e2e.unique("big")
    chunk = "x" * 16384

    async def scenario():
        client = await Client.connect(stack.ws_url(0), make_jwt(user), label="big")
        try:
            if fragmented:
                await client.ws.send([chunk] * 5)  # 80 KiB in five frames of 16 KiB
            else:
                await client.ws.send("y" * (64 * 1024 + 1))
            try:
                frame = await client.recv(10, waiting_for="the close")
            except AssertionError as closed:
                if "socket closed" not in str(closed):
                    raise
            else:
                raise AssertionError(f"expected the server to close the socket, got a frame: {frame}")
            return client.ws.close_code, client.ws.close_reason
        finally:
            await client.ws.close()

    code, reason = run(scenario(), timeout=30)
    assert code == 1009, f"expected close code 1009 (message too big), got {code} ({reason!r})"
    # The gateway itself is fine afterwards.
    assert e2e.http_get(stack.http_url(0) + "/health")[0] == 200


def test_llm_failure_becomes_llm_unavailable_and_nothing_is_stored(stack):
    user = e2e.unique("llm503")
    failing = f"[sim:status=503] isto falha {e2e.unique('m')}"

    async def scenario():
        async with Sockets() as sockets:
            c = await sockets.open(stack.ws_url(0), make_jwt(user), label="llm503")
            await c.message(failing, client_msg_id="f1")
            session_id = (await c.expect("session"))["session_id"]
            accepted = await c.expect("accepted", session_id=session_id, client_msg_id="f1")
            error = await c.expect_error("llm_unavailable", 20, session_id=session_id, turn_id=accepted["turn_id"])
            # The session goes on; the failed turn is not part of its history (Resposta 1).
            await c.message("de novo", client_msg_id="f2")
            await c.expect_turn(session_id=session_id, content="de novo", n=1, client_msg_id="f2")
            return session_id, accepted["turn_id"], error

    session_id, turn_id, error = run(scenario(), timeout=30)
    assert psql(f"SELECT count(*) FROM messages WHERE turn_id = {sql_literal(turn_id)}") == [["0"]]
    assert [(r.role, r.content) for r in stored_messages(session_id)] == [
        ("user", "de novo"), ("assistant", reply_text(1, "de novo"))
    ]
