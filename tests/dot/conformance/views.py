"""The conformance server's own views: a protected resource and the request counters."""

from django.http import JsonResponse
from oauth2_provider.decorators import protected_resource

from conformance import middleware


@protected_resource(scopes=["read"], advertise_metadata=True)
def hello(request):
    """A resource that needs a valid access token with the `read` scope.

    A missing, unknown, expired or revoked token gets an RFC 6750 401 with `WWW-Authenticate: Bearer`;
    a token without the scope a 403 (`insufficient_scope`).
    """
    owner = request.resource_owner
    return JsonResponse({"hello": owner.get_username() if owner is not None else None})


@protected_resource(scopes=["admin"], advertise_metadata=True)
def admin_only(request):
    """A resource that needs the `admin` scope."""
    return JsonResponse({"admin": True})


def stats(request):
    """Requests seen so far, by `METHOD /path/` (not protected: it is a test server)."""
    return JsonResponse(middleware.counts())
