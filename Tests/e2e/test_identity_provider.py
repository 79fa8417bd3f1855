"""Tokens of an identity provider: a gateway with `JWT_JWKS_URL` verifies RS256 and
ES256 tokens against the provider's published keys, fetches them again when a token
names a key it has not seen (rotation), and answers 503 `unavailable`, not 401, while
it cannot fetch them at all."""

from __future__ import annotations

import time

import pytest

import parley_e2e as e2e
from identity_provider import IdentityProvider, SigningKey
from parley_e2e import Sockets, run
from test_errors import assert_refused, refused_handshake
from test_sessions import start_session


@pytest.fixture(scope="module")
def provider():
    idp = IdentityProvider()
    idp.published = [SigningKey("rsa-2026-11", "RS256"), SigningKey("ec-2026-11", "ES256")]
    yield idp
    idp.stop()


def provider_gateway(stack, jwks_url: str, min_refetch_seconds: int = 1):
    proc = stack.start_gateway(len(stack.gateways), extra_env={
        "JWT_JWKS_URL": jwks_url,
        "JWT_ISSUER": IdentityProvider.issuer,
        "JWT_AUDIENCE": IdentityProvider.audience,
        "JWT_JWKS_MIN_REFETCH_SECONDS": str(min_refetch_seconds),
    })
    proc.wait_healthy()
    return proc, stack.gateways.index(proc)


@pytest.fixture(scope="module")
def gateway(stack, provider):
    proc, index = provider_gateway(stack, provider.jwks_url)
    yield index
    proc.terminate()
    stack.gateways.remove(proc)


def test_an_rs256_token_of_the_provider_opens_a_socket_and_its_turns_are_answered(stack, provider, gateway):
    user = e2e.unique("idp")
    token = provider.token(provider.published[0], user)

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(gateway), token, label="idp")
            session_id, _ = await start_session(client, "idp-start")
            await client.message("olá", session_id=session_id, client_msg_id="idp-1")
            await client.expect_turn(session_id=session_id, content="olá", n=1, client_msg_id="idp-1")
            return session_id

    session_id = run(scenario())
    # The same user with an ES256 token reads the session over REST.
    status, history = stack.api("GET", f"/api/sessions/{session_id}", token=provider.token(provider.published[1], user), gateway=gateway)
    assert status == 200, history
    assert [m["content"] for m in history["messages"] if m["role"] == "user"] == ["olá"], history


def test_forged_foreign_and_expired_tokens_are_refused(stack, provider, gateway):
    impostor = SigningKey(provider.published[0].kid, "RS256")  # another key under the provider's kid
    cases = {
        "invalid_token": [
            provider.token(impostor, "mallory"),
            provider.token(provider.published[0], "mallory", claims={"iss": "https://evil.example"}),
            provider.token(provider.published[0], "mallory", claims={"aud": "billing"}),
            e2e.make_jwt("mallory"),  # HS256 with the gateway's JWT_SECRET, but without the issuer it requires
        ],
        "token_expired": [provider.token(provider.published[1], "late", expires_in=-60)],
    }
    for code, tokens in cases.items():
        for token in tokens:
            assert_refused(run(refused_handshake(stack.ws_url(gateway), token)), code)
            status, body = stack.api("GET", "/v1/chat/mallory/logs", token=token, gateway=gateway)
            assert status == 401 and body["error"]["code"] == code, (token, status, body)


def test_a_rotated_key_is_fetched_when_a_token_first_names_it(stack, provider, gateway):
    user = e2e.unique("rotated")
    before = provider.fetches
    rotated = SigningKey("rsa-2026-12", "RS256")
    provider.published = [rotated, *provider.published]
    time.sleep(1.1)  # JWT_JWKS_MIN_REFETCH_SECONDS=1 since the last fetch
    status, body = stack.api("GET", f"/v1/chat/{user}/logs", token=provider.token(rotated, user), gateway=gateway)
    assert status == 200, body
    assert provider.fetches == before + 1
    # Made-up key ids do not make the gateway fetch again and again.
    for attempt in range(20):
        fake = SigningKey(f"made-up-{attempt}", "ES256")
        status, body = stack.api("GET", f"/v1/chat/{user}/logs", token=provider.token(fake, user), gateway=gateway)
        assert status == 401 and "made-up" in body["error"]["message"], body
    assert provider.fetches <= before + 2


def test_a_provider_that_cannot_be_reached_means_try_again_not_a_bad_token(stack, provider):
    (closed_port,) = e2e.free_ports(1)
    # A fetch waits up to its 5 s limit for the provider; the socket below comes within
    # the minimum interval and is refused at once.
    proc, index = provider_gateway(stack, f"http://127.0.0.1:{closed_port}/certs", min_refetch_seconds=60)
    try:
        user = e2e.unique("waiting")
        token = provider.token(provider.published[0], user)
        status, body = stack.api("GET", f"/v1/chat/{user}/logs", token=token, gateway=index)
        assert status == 503 and body["error"]["code"] == "unavailable", body
        assert str(closed_port) not in body["error"]["message"], body  # the reason is in the log, not for clients
        frame, close_code, reason = run(refused_handshake(stack.ws_url(index), token))
        assert frame["code"] == "unavailable" and close_code == 1013 and reason == "unavailable", (frame, close_code, reason)
    finally:
        proc.terminate()
        stack.gateways.remove(proc)
