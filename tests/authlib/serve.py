#!/usr/bin/env python
"""Runs the Authlib token endpoint of the JWT client-authentication conformance test on 127.0.0.1.

    target/authlib-venv/bin/python tests/authlib/serve.py [--port 0] [--exit-on-stdin-eof]

A Flask app whose token endpoint (POST /oauth/token) is Authlib's AuthorizationServer with the
client_credentials grant, and whose only client authentication is RFC 7523 §2.2 client assertions,
verified by Authlib's own JWTBearerClientAssertion (authlib.oauth2.rfc7523): signature, iss = sub,
aud, exp and a jti never seen before. Three clients are registered:

    tokensmith-rs256   private_key_jwt    the public half of crates/core/tests/fixtures/test-only-rsa.pem
    tokensmith-es256   private_key_jwt    the public half of crates/core/tests/fixtures/test-only-ec-p256.pem
    tokensmith-hs256   client_secret_jwt  the secret HS256_SECRET below

The audiences accepted are the token endpoint's URL and the issuer, http://127.0.0.1:PORT. Once it
accepts connections it prints one line, `tokensmith-authlib listening on http://127.0.0.1:PORT`.
With --exit-on-stdin-eof it exits as soon as its standard input closes, so a test process that
spawned it with a pipe cannot leave it behind. GET /stats gives counts of what it accepted and refused.
"""

import sys

# Keep the repository clean: no __pycache__ next to the server.
sys.dont_write_bytecode = True

import argparse  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

from authlib.integrations.flask_oauth2 import AuthorizationServer  # noqa: E402
from authlib.oauth2.rfc6749 import ClientMixin, InvalidClientError, grants  # noqa: E402
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402
from joserfc.jwk import ECKey, OctKey, RSAKey  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "crates/core/tests/fixtures"
# TEST-ONLY: the HS256 client's secret, also in tests/tests/authlib_jwt.rs.
HS256_SECRET = "tokensmith-hs256-test-secret-of-at-least-32-bytes"
TOKEN_PATH = "/oauth/token"


class Client(ClientMixin):
    """A registered client: its id, how it authenticates and the key that verifies its assertions."""

    def __init__(self, client_id, auth_method, key):
        self.client_id = client_id
        self.auth_method = auth_method
        self.key = key

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        allowed = {"read", "write"}
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return False

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.auth_method

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials"


CLIENTS = {
    "tokensmith-rs256": Client(
        "tokensmith-rs256", "private_key_jwt", RSAKey.import_key((FIXTURES / "test-only-rsa.pub.pem").read_bytes())
    ),
    "tokensmith-es256": Client(
        "tokensmith-es256", "private_key_jwt", ECKey.import_key((FIXTURES / "test-only-ec-p256.pub.pem").read_bytes())
    ),
    "tokensmith-hs256": Client("tokensmith-hs256", "client_secret_jwt", OctKey.import_key(HS256_SECRET)),
}

STATS = {"issued": 0, "refused": 0}
STATS_LOCK = threading.Lock()


def count(what):
    with STATS_LOCK:
        STATS[what] += 1


class ClientAssertion(JWTBearerClientAssertion):
    """Authlib's RFC 7523 client authentication, for the clients registered with one method.

    Authlib verifies the assertion; this subclass supplies what it asks the application for (the
    audiences, the client's key, a jti store) and two checks of RFC 7521 §4.2: the assertion is
    answered only for clients registered with this method (so that a private_key_jwt client cannot
    pass with an HS256 assertion, nor the reverse), and a `client_id` sent in the body must be the
    assertion's subject.
    """

    def __init__(self, method, audiences):
        super().__init__(validate_jti=True)
        self.CLIENT_AUTH_METHOD = method
        self.audiences = audiences
        self.seen_jti = set()
        self.lock = threading.Lock()

    def __call__(self, query_client, req):
        if req.form.get("client_assertion_type") != self.CLIENT_ASSERTION_TYPE:
            return None
        _, claims = self.extract_assertion(req.form.get("client_assertion") or "")
        client = query_client(claims.get("sub")) if isinstance(claims.get("sub"), str) else None
        if client is not None and client.auth_method != self.CLIENT_AUTH_METHOD:
            return None  # the other method's handler answers for this client
        body_client_id = req.form.get("client_id")
        if body_client_id is not None and body_client_id != claims.get("sub"):
            raise InvalidClientError(description="client_id is not the assertion's subject")
        return super().__call__(query_client, req)

    def get_audiences(self):
        return self.audiences

    def resolve_client_public_key(self, client):
        return client.key

    def validate_jti(self, claims, jti):
        key = (claims["sub"], jti)
        with self.lock:
            if key in self.seen_jti:
                return False
            self.seen_jti.add(key)
            return True


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt", "client_secret_jwt"]


def create_app(base_url):
    app = Flask("tokensmith-authlib")
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"client_credentials": 3600}
    server = AuthorizationServer(app, query_client=CLIENTS.get, save_token=lambda token, req: None)
    server.register_grant(ClientCredentialsGrant)
    audiences = [base_url + TOKEN_PATH, base_url]
    for method in ("private_key_jwt", "client_secret_jwt"):
        server.register_client_auth_method(method, ClientAssertion(method, audiences))

    @app.post(TOKEN_PATH)
    def token():
        response = server.create_token_response()
        count("issued" if response.status_code == 200 else "refused")
        return response

    @app.get("/stats")
    def stats():
        with STATS_LOCK:
            return jsonify(STATS)

    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when standard input closes")
    args = parser.parse_args()

    if args.exit_on_stdin_eof:

        def watch_stdin():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                sys.stdout.flush()
                os._exit(0)

        threading.Thread(target=watch_stdin, name="stdin-watchdog", daemon=True).start()

    # Bind first (port 0: a free one), then build the app that knows its own URL.
    holder = {}
    http = make_server("127.0.0.1", args.port, lambda env, start: holder["app"](env, start), threaded=True)
    base_url = f"http://127.0.0.1:{http.server_port}"
    holder["app"] = create_app(base_url)
    print(f"tokensmith-authlib listening on {base_url}", flush=True)
    http.serve_forever()


if __name__ == "__main__":
    main()
