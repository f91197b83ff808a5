from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config.views import healthz, metrics, ping, readyz
from reviewqueue import account_views, oidc, two_factor_views

# OIDC_ONLY refuses passwords to all but superusers here as on the sign-in page.
admin.site.login_form = oidc.AdminPasswordForm

urlpatterns = [
    # Answered by config.middleware.probes before the rest of the middleware; here for reverse().
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("ping", ping, name="ping"),
    path("admin/", admin.site.urls),
    path("accounts/login/", oidc.LoginView.as_view(), name="login"),
    # Single sign-on (reviewqueue/oidc.py): authenticate/ and callback/ answer 404 until
    # OIDC_ISSUER is set.
    path("accounts/oidc/", include("mozilla_django_oidc.urls")),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", account_views.PasswordChange.as_view(), name="password_change"),
    path(
        "accounts/password/changed/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "accounts/password/reset/",
        auth_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            extra_context={"password_reset_timeout": settings.PASSWORD_RESET_TIMEOUT}
        ),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirm.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("accounts/two-factor/", two_factor_views.overview, name="two_factor"),
    path("accounts/two-factor/verify/", two_factor_views.verify, name="two_factor_verify"),
    path("accounts/two-factor/set-up/", two_factor_views.enrol, name="two_factor_enrol"),
    path(
        "accounts/two-factor/recovery-codes/",
        two_factor_views.recovery_codes,
        name="two_factor_recovery_codes",
    ),
    path("accounts/two-factor/reset/", two_factor_views.reset, name="two_factor_reset"),
    path("flows/", include("flows_integration.urls")),
    path("", include("intake.urls")),
    path("", include("reviewqueue.urls")),
]

if settings.FLOWS_ENGINE_ENABLED:
    urlpatterns.append(path("flows-api/", include("flows_engine.urls")))
