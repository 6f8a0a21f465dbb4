"""Settings of the conformance server: Django OAuth Toolkit with as little else as possible.

Read from the environment (serve.py sets them):
- DOT_DB_PATH: the sqlite database file (a temporary directory per server).
- DOT_ACCESS_TOKEN_LIFETIME: ACCESS_TOKEN_EXPIRE_SECONDS (default 3600).
- DOT_ISSUER: OIDC_ISS_ENDPOINT, the issuer the metadata documents name (default: from each request).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

# A throwaway server on 127.0.0.1 for tests only: a fixed key and DEBUG off (plain error pages).
SECRET_KEY = "tokensmith-conformance-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "conformance",
]

MIDDLEWARE = [
    "conformance.middleware.count_requests",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "conformance.urls"
WSGI_APPLICATION = "conformance.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DOT_DB_PATH", str(BASE_DIR.parent / "db.sqlite3")),
        # Concurrent token requests from the tests: wait for the write lock instead of failing. A
        # transaction that starts as a reader and then writes (DOT's refresh-token rotation) cannot
        # wait for the lock: SQLite fails it at once with "database is locked" (seen in CI). Starting
        # every transaction as a writer (BEGIN IMMEDIATE, Django 5.1+) makes it wait like the rest.
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}

# DOT hashes client secrets with the first hasher (CLIENT_SECRET_HASHER = "default"), on every token
# request: a cheap PBKDF2 keeps that path while making it fast.
PASSWORD_HASHERS = ["conformance.hashers.FastPBKDF2PasswordHasher"]

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_URL = "/accounts/login/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": "WARNING"}},
}

def _oidc_rsa_key():
    """A fresh RSA key for OpenID Connect (id tokens, JWKS), made at every server start: a test
    server's key, never committed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


OAUTH2_PROVIDER = {
    # OpenID Connect, for its discovery document (/o/.well-known/openid-configuration).
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": _oidc_rsa_key(),
    "OIDC_ISS_ENDPOINT": os.environ.get("DOT_ISSUER", ""),
    # The device authorization grant (RFC 8628): serve.py sets the verification URIs once it knows
    # its port; the interval is the RFC's default.
    "DEVICE_FLOW_INTERVAL": 5,
    # DOT's validator plus the device-code check the pinned oauthlib needs (conformance/validators.py).
    "OAUTH2_VALIDATOR_CLASS": "conformance.validators.ConformanceValidator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("DOT_ACCESS_TOKEN_LIFETIME", "3600")),
    "SCOPES": {"read": "Read", "write": "Write", "admin": "Administer"},
    "DEFAULT_SCOPES": ["read"],
    # Which application may have which scopes (conformance/scopes.py).
    "SCOPES_BACKEND_CLASS": "conformance.scopes.PerApplicationScopes",
    # A used refresh token is replaced, and rejected at once (no grace period).
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    # PKCE for every authorization code (only the authorization-code application uses codes); S256 only.
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    # The redirect URI is a loopback http:// URI, as a CLI's callback listener would be.
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    "REQUEST_APPROVAL_PROMPT": "force",
}
