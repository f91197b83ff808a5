from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config.views import healthz, ping

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("ping", ping, name="ping"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("flows/", include("flows_integration.urls")),
    path("", include("intake.urls")),
    path("", include("reviewqueue.urls")),
]

if settings.FLOWS_ENGINE_ENABLED:
    urlpatterns.append(path("flows-api/", include("flows_engine.urls")))
