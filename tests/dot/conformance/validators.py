"""DOT's request validator with the one method the pinned oauthlib asks of it and DOT 3.4.1 lacks.

oauthlib 4.0.1 checks a polled device code through `RequestValidator.validate_device_code`, which
DOT 3.4.1 does not implement: every device token request DOT let through (an approved device) ended
in a 500 (`AttributeError`). This reads DOT's own DeviceGrant row, as DOT's token view already did
before calling oauthlib, and answers with the status oauthlib expects.
"""

from oauth2_provider.models import get_device_grant_model
from oauth2_provider.oauth2_validators import OAuth2Validator


class ConformanceValidator(OAuth2Validator):
    def validate_device_code(self, client_id, code, request, *args, **kwargs):
        model = get_device_grant_model()
        client_id = client_id or getattr(getattr(request, "client", None), "client_id", None)
        grant = model.objects.filter(device_code=code, client_id=client_id).first()
        if grant is None:
            return None
        if grant.is_expired():
            return "expired_token"
        status = {
            model.AUTHORIZED: "authorized",
            model.AUTHORIZATION_PENDING: "authorization_pending",
            model.DENIED: "access_denied",
            model.EXPIRED: "expired_token",
        }.get(grant.status)
        if status == "authorized":
            request.user = grant.user
            request.scopes = grant.scope.split()
        return status
