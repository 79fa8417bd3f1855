"""Abuse limits on a gateway of their own (the suite's gateways run without them):
turns and sessions per user, sockets per user and per client address. A refused action
is `rate_limited` (with `retry_after`) or HTTP 429 (with `Retry-After`), and nothing is
stored or published."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
import websockets

import parley_e2e as e2e
from parley_e2e import Client, Sockets, make_jwt, run, stored_messages
from test_sessions import start_session

STRICT = {
    "RATE_TURNS_PER_MINUTE": "6", "RATE_TURNS_BURST": "2",
    "RATE_STARTS_PER_MINUTE": "60", "RATE_STARTS_BURST": "10",
    "MAX_SOCKETS_PER_USER": "2",
    "RATE_SOCKETS_PER_MINUTE": "6", "RATE_SOCKETS_BURST": "5",
    "ALLOWED_ORIGINS": "https://parley.example",
}


@pytest.fixture(scope="module")
def strict(stack):
    proc = stack.start_gateway(len(stack.gateways), extra_env=STRICT)
    proc.wait_healthy()
    index = stack.gateways.index(proc)
    yield index
    proc.terminate()
    stack.gateways.remove(proc)


def test_turns_beyond_the_users_rate_are_refused_and_nothing_is_stored(stack, strict):
    user = e2e.unique("flood")
    token = make_jwt(user)

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(strict), token, label="flood")
            session_id, _ = await start_session(client, "r-flood")
            for k in range(3):
                await client.message(f"mensagem {k}", session_id=session_id, client_msg_id=f"f{k}")
            refused = None
            for _ in range(7):  # accepted, reply and the refusal, in some order
                frame = await client.recv(20, waiting_for="the refusal")
                if frame.get("type") == "error":
                    refused = frame
                    break
            assert refused is not None and refused["code"] == "rate_limited", refused
            assert refused["client_msg_id"] == "f2" and refused["retry_after"] >= 1, refused
            # The two within the rate are answered (the socket stays open meanwhile: a
            # turn still waiting behind another is withdrawn when its socket closes).
            replies = lambda: len([f for f in client.frames if f.get("type") == "reply"]) >= 3  # noqa: E731 (opening + 2)
            await client.pump_until(replies, 30, "both accepted turns answered")
            return session_id

    session_id = run(scenario(), timeout=60)
    contents = [m.content for m in stored_messages(session_id)]
    assert len(contents) == 5 and "mensagem 2" not in contents, contents

    # REST shares the user's bucket: 429 with Retry-After, nothing sent.
    request = urllib.request.Request(
        stack.http_url(strict) + f"/api/sessions/{session_id}/message", data=b'{"content":"mais uma"}', method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10)
    assert refused.value.code == 429 and int(refused.value.headers["Retry-After"]) >= 1
    assert len(stored_messages(session_id)) == 5


def test_sockets_are_capped_per_user_and_new_ones_per_address(stack, strict):
    user = e2e.unique("sockets")

    async def scenario():
        first = await Client.connect(stack.ws_url(strict), make_jwt(user), label="1")
        second = await Client.connect(stack.ws_url(strict), make_jwt(user), label="2")
        third = await Client.connect(stack.ws_url(strict), make_jwt(user), label="3")
        try:
            error = await third.expect_error("too_many_sockets", 10)
            assert "2 sockets" in error["message"], error
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(third.ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013, closed.value
            # The rate of new sockets from this address (burst 5; this test and the one
            # before took 4): `rate_limited` with `retry_after`, then close 1013.
            codes = []
            for k in range(4):
                extra = await Client.connect(stack.ws_url(strict), make_jwt(e2e.unique(f"other{k}")), label=f"x{k}")
                try:
                    frame = await asyncio.wait_for(extra.ws.recv(), 1)
                    codes.append(json.loads(frame).get("code"))
                    if codes[-1] == "rate_limited":
                        assert json.loads(frame)["retry_after"] >= 1, frame
                except asyncio.TimeoutError:
                    codes.append(None)  # admitted: the server waits for a frame
                await extra.close()
            assert "rate_limited" in codes, codes
        finally:
            for client in (first, second, third):
                await client.close()

    run(scenario(), timeout=60)


def test_a_page_of_another_site_cannot_open_a_socket(stack, strict):
    """With ALLOWED_ORIGINS, a browser handshake from another origin gets
    `origin_not_allowed` and close code 1008; a listed origin and a client that sends
    no Origin (wscat, an app) are served. Runs last: it takes from the address's rate."""

    async def scenario():
        refused = await websockets.connect(
            stack.ws_url(strict) + "?user=x", origin="https://evil.example", proxy=None,
            additional_headers={"Authorization": f"Bearer {make_jwt(e2e.unique('o'))}"},
        )
        frame = json.loads(await asyncio.wait_for(refused.recv(), 10))
        assert frame["code"] == "origin_not_allowed", frame
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(refused.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    run(scenario(), timeout=30)


def test_a_page_of_another_site_cannot_call_the_rest_api(stack, strict):
    """The same allow-list for REST: a request carrying another site's Origin gets 403
    `origin_not_allowed` and starts nothing (with authentication off, a page could
    otherwise post as its visitor); a listed origin and no Origin are served."""
    user = e2e.unique("csrf")
    token = make_jwt(user)
    url = stack.http_url(strict) + "/api/sessions/start"

    def post(origin: str | None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
        if origin:
            headers["Origin"] = origin
        request = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, body = post("https://evil.example")
    assert status == 403 and body["error"]["code"] == "origin_not_allowed", body
    assert e2e.psql(f"SELECT count(*) FROM sessions WHERE user_id = {e2e.sql_literal(user)}") == [["0"]]
    for origin in ("https://parley.example", None):
        status, body = post(origin)
        assert status == 201 and body["session"]["status"] == "active", (origin, body)
