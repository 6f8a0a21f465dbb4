from django.contrib.auth import views as auth_views
from django.urls import include, path
from oauth2_provider.views import OAuthServerMetadataView

from conformance import views

urlpatterns = [
    # Before DOT's own routes: its device authorization view with a fix for the pinned oauthlib.
    path("o/device-authorization/", views.DeviceAuthorizationView.as_view()),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    # RFC 8414 §3.1: the metadata of the issuer http://HOST/o is at the root, with the issuer's path
    # after the well-known segment (DOT serves it under /o/ only unless mounted so).
    path(".well-known/oauth-authorization-server/<path:issuer_path>", OAuthServerMetadataView.as_view()),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("api/hello/", views.hello),
    path("api/admin/", views.admin_only),
    path("conformance/stats/", views.stats),
    path("conformance/expire-device/", views.expire_device),
]
