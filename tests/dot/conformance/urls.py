from django.contrib.auth import views as auth_views
from django.urls import include, path

from conformance import views

urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("api/hello/", views.hello),
    path("api/admin/", views.admin_only),
    path("conformance/stats/", views.stats),
]
