"""A small OpenID Connect identity provider for tests: HTTPS (its own CA, made with the openssl
CLI), a discovery document, a JWKS with one RS256 key, and a token endpoint that answers the
refresh-token grant with a new id-token (and a new refresh-token, revoking the old one).

The real kube-apiserver trusts it with --oidc-issuer-url/--oidc-ca-file: it fetches the
discovery document and the keys from here and verifies every id-token's signature, issuer,
audience and expiry, so a kubeconfig's `oidc` auth-provider is tested against the real
server. Signing is `openssl dgst -sha256 -sign` (no crypto library needed).
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CLIENT_ID = "tritonop"
CLIENT_SECRET = "tritonop-secret"


def _openssl(*args: str, cwd: Path, data: bytes | None = None) -> bytes:
    result = subprocess.run(["openssl", *args], cwd=cwd, input=data, capture_output=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr.decode()}")
    return result.stdout


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OidcIssuer:
    """``start()`` it; ``url`` is its issuer, ``ca`` the CA file that verifies it."""

    def __init__(self, workdir: Path, *, subject: str = "alice") -> None:
        self.workdir = workdir
        self.subject = subject
        self.refresh_token = "refresh-0"
        self.refreshes = 0  # refresh grants answered
        self.ttl_s = 300
        self.url = ""
        self._server: ThreadingHTTPServer | None = None

    @property
    def ca(self) -> Path:
        return self.workdir / "ca.crt"

    def start(self) -> OidcIssuer:
        pki = self.workdir
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                 "-days", "2", "-subj", "/CN=tritonop-test-oidc-ca", cwd=pki)  # fmt: skip
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr",
                 "-subj", "/CN=127.0.0.1", cwd=pki)  # fmt: skip
        (pki / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        _openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", "san.ext", "-out", "tls.crt", cwd=pki)  # fmt: skip
        _openssl("genrsa", "-out", "signing.key", "2048", cwd=pki)
        modulus = _openssl("rsa", "-in", "signing.key", "-noout", "-modulus", cwd=pki).decode().split("=", 1)[1]
        self._jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
                     "n": _b64url(bytes.fromhex(modulus.strip())), "e": _b64url((65537).to_bytes(3, "big"))}  # fmt: skip

        issuer = self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(issuer))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki / "tls.crt", pki / "tls.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{server.server_address[1]}"
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def id_token(self, *, expires_in: float | None = None) -> str:
        """An id-token for ``subject`` signed with the issuer's key (expired when negative)."""
        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT_ID, "sub": self.subject, "iat": now,
                  "exp": now + int(self.ttl_s if expires_in is None else expires_in)}  # fmt: skip
        header = {"alg": "RS256", "kid": "k1", "typ": "JWT"}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = _openssl("dgst", "-sha256", "-sign", "signing.key", cwd=self.workdir, data=signing_input.encode())
        return f"{signing_input}.{_b64url(signature)}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/keys",
            "token_endpoint": f"{self.url}/token",
            "authorization_endpoint": f"{self.url}/auth",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def grant(self, form: dict[str, str], basic: str | None) -> tuple[int, dict[str, Any]]:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if basic != expected:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            return 400, {"error": "invalid_grant", "error_description": "refresh token unknown or revoked"}
        self.refreshes += 1
        self.refresh_token = f"refresh-{self.refreshes}"
        return 200, {"id_token": self.id_token(), "refresh_token": self.refresh_token, "token_type": "Bearer"}


def _handler(issuer: OidcIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                self._answer(200, issuer.discovery())
            elif self.path == "/keys":
                self._answer(200, {"keys": [issuer._jwk]})
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if self.path != "/token":
                self._answer(404, {"error": "not found"})
                return
            self._answer(*issuer.grant(form, self.headers.get("Authorization")))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
