"""A scopes backend that gives each conformance application its own set of scopes.

DOT's default backend lets every application have every scope in SCOPES; here `admin` is granted
only to the client-credentials application, so that a scope DOT knows can still be refused
(`invalid_scope`), as can one it does not know.
"""

from oauth2_provider.scopes import SettingsScopes

from conformance.seed import AVAILABLE_SCOPES


class PerApplicationScopes(SettingsScopes):
    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        all_scopes = super().get_available_scopes(application, request, *args, **kwargs)
        if application is None:
            return all_scopes
        allowed = AVAILABLE_SCOPES.get(application.client_id, ["read"])
        return [scope for scope in all_scopes if scope in allowed]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return ["read"]
