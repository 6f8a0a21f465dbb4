"""The fixed user and OAuth applications the conformance tests use (ids and secrets are test data).

The Rust side has the same values in tests/tests/dot/mod.rs.
"""

# The resource owner who logs in and approves the authorization-code flow.
USERNAME = "alice"
PASSWORD = "alice-password-for-tests"

# A confidential client-credentials application (client_credentials grant).
CC_CLIENT_ID = "tokensmith-cc"
CC_CLIENT_SECRET = "tokensmith-cc-secret"

# A confidential client-credentials application whose secret holds `: % + / & =` and spaces,
# plus `%2B`, so that a client that skips or doubles the RFC 6749 §2.3.1 encoding is caught.
SPECIAL_CLIENT_ID = "tokensmith-special"
SPECIAL_CLIENT_SECRET = "s3cr3t: %2B+/&=a b"

# A confidential authorization-code application; PKCE is required (settings.PKCE_REQUIRED) and
# refresh tokens rotate (settings.ROTATE_REFRESH_TOKEN).
CODE_CLIENT_ID = "tokensmith-code"
CODE_CLIENT_SECRET = "tokensmith-code-secret"
CODE_REDIRECT_URI = "http://127.0.0.1:8765/callback"

# A confidential device-authorization-grant application (RFC 8628, /o/device-authorization/).
DEVICE_CLIENT_ID = "tokensmith-device"
DEVICE_CLIENT_SECRET = "tokensmith-device-secret"

# Which scopes each application may have (conformance.scopes.PerApplicationScopes).
AVAILABLE_SCOPES = {
    CC_CLIENT_ID: ["read", "write", "admin"],
    SPECIAL_CLIENT_ID: ["read", "write"],
    CODE_CLIENT_ID: ["read", "write"],
    DEVICE_CLIENT_ID: ["read", "write"],
}


def seed():
    """Creates the user and the applications (idempotent)."""
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    user_model = get_user_model()
    user = user_model.objects.filter(username=USERNAME).first()
    if user is None:
        user = user_model.objects.create_user(USERNAME, password=PASSWORD)

    application = get_application_model()
    apps = [
        (CC_CLIENT_ID, CC_CLIENT_SECRET, application.GRANT_CLIENT_CREDENTIALS, ""),
        (SPECIAL_CLIENT_ID, SPECIAL_CLIENT_SECRET, application.GRANT_CLIENT_CREDENTIALS, ""),
        (CODE_CLIENT_ID, CODE_CLIENT_SECRET, application.GRANT_AUTHORIZATION_CODE, CODE_REDIRECT_URI),
        (DEVICE_CLIENT_ID, DEVICE_CLIENT_SECRET, application.GRANT_DEVICE_CODE, ""),
    ]
    for client_id, secret, grant, redirect_uris in apps:
        if application.objects.filter(client_id=client_id).exists():
            continue
        # The plaintext secret: DOT hashes it on save (hash_client_secret defaults to True).
        application.objects.create(
            name=client_id,
            client_id=client_id,
            client_secret=secret,
            hash_client_secret=True,
            client_type=application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=grant,
            redirect_uris=redirect_uris,
            user=user,
            skip_authorization=False,
        )
