"""Staff's own passwords: change it when signed in, or reset it through a link sent by e-mail.
Django's views and forms, with our pages, and each change in the audit trail (never the
password)."""

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import reverse_lazy

from config.client_ip import client_ip
from reviewqueue import services


class PasswordChange(auth_views.PasswordChangeView):
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.audit_record(
            action="password.changed", actor=self.request.user, ip=client_ip(self.request)
        )
        return response


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.audit_record(action="password.reset", actor=form.user, ip=client_ip(self.request))
        return response
