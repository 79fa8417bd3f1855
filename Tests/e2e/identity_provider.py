"""A local identity provider for the end-to-end suite: RSA and P-256 signing keys, a
JWKS endpoint served over HTTP (the way Keycloak, Auth0 or Cognito publish theirs), and
RS256 / ES256 tokens signed with `cryptography`."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(number: int, size: int | None = None) -> bytes:
    return number.to_bytes(size or (number.bit_length() + 7) // 8, "big")


class SigningKey:
    def __init__(self, kid: str, algorithm: str) -> None:
        self.kid = kid
        self.algorithm = algorithm
        if algorithm == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(algorithm)

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        if self.algorithm == "RS256":
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": _b64url(_uint(numbers.n)), "e": _b64url(_uint(numbers.e))}
        return {"kty": "EC", "kid": self.kid, "use": "sig", "crv": "P-256", "x": _b64url(_uint(numbers.x, 32)), "y": _b64url(_uint(numbers.y, 32))}

    def sign(self, data: bytes) -> bytes:
        if self.algorithm == "RS256":
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return _uint(r, 32) + _uint(s, 32)  # JWS wants r‖s, not DER


class IdentityProvider:
    """Serves `GET /certs` (the JWKS of `published`) on 127.0.0.1 and counts the fetches."""

    issuer = "https://id.parley.test/realms/parley"
    audience = "parley-gateway"

    def __init__(self) -> None:
        self.published: list[SigningKey] = []
        self.fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path != "/certs":
                    self.send_error(404)
                    return
                provider.fetches += 1
                body = json.dumps({"keys": [key.jwk() for key in provider.published]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/certs"

    def token(self, key: SigningKey, sub: str, *, expires_in: int = 3600, claims: dict | None = None) -> str:
        header = {"alg": key.algorithm, "typ": "JWT", "kid": key.kid}
        payload: dict[str, Any] = {"sub": sub, "iss": self.issuer, "aud": self.audience, "exp": int(time.time()) + expires_in}
        payload.update(claims or {})
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(payload).encode())
        return signing_input + "." + _b64url(key.sign(signing_input.encode("ascii")))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
