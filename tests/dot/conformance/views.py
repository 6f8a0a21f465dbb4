"""The conformance server's own views: a protected resource and the request counters."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_device_grant_model
from oauth2_provider.views.device import DeviceAuthorizationView as DotDeviceAuthorizationView
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


@csrf_exempt
def expire_device(request):
    """Marks the device grant of the POSTed `user_code` expired, as DOT does once its `expires` passed
    and the user code is looked at: the test cannot wait the 30 minutes DOT gives a device code."""
    grant_model = get_device_grant_model()
    updated = grant_model.objects.filter(user_code=request.POST.get("user_code", "")).update(
        status=grant_model.EXPIRED
    )
    return JsonResponse({"expired": updated}, status=200 if updated else 404)


class DeviceAuthorizationView(DotDeviceAuthorizationView):
    """DOT's device authorization endpoint, working with the pinned oauthlib.

    oauthlib 4.0.1 adds the granted `scope` to the device authorization response, and DOT 3.4.1
    passes every member of that response to `DeviceCodeResponse(**response)`, which takes no `scope`:
    every request ended in a 500. The member is dropped before DOT reads it (DOT records the scope
    from the request itself); nothing else changes.
    """

    def create_device_authorization_response(self, request):
        headers, response, status = super().create_device_authorization_response(request)
        if status == 200 and isinstance(response, dict):
            response.pop("scope", None)
        return headers, response, status
