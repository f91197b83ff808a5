"""Two-factor sign-in pages: give a code after the password, set up an authenticator app, see
and renew recovery codes, and (supervisors) reset a colleague's. Who must, the limits and the
audit are in ``reviewqueue/two_factor.py``; these views only ask and answer."""

from typing import Any

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from config.client_ip import client_ip
from reviewqueue import roles, two_factor

# New recovery codes wait here between the POST that makes them and the one page that shows
# them: a reload of that page shows them no more.
NEW_CODES_KEY = "two_factor_new_codes"


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "off",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )


def _next(request: HttpRequest) -> str:
    """Where to go once this step is done: the page first asked for, if it is ours."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _verified_with(request: HttpRequest, device: Any) -> None:
    """The session counts as verified from now on, under a new key (as at sign-in): a session
    id seen before the code was given does not carry what it gave."""
    request.session.cycle_key()
    otp_login(request, device)


def _qr_svg(uri: str) -> SafeString:
    # Inline SVG made by segno from our own URI: no script, no inline style (the CSP allows
    # neither), and no image request that could leak the secret into a log.
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, light="#fff", title="QR code for your authenticator app", svgclass="qr"
    )
    return mark_safe(svg)


def _shown(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """After the password: a code from the authenticator app, or a recovery code."""
    user = request.user
    if (
        not settings.TWO_FACTOR_ENABLED
        or two_factor.is_verified(user)
        or not two_factor.enrolled(user)
    ):
        return redirect(_next(request))
    form = CodeForm(request.POST or None)
    if form.is_valid():
        try:
            device = two_factor.two_factor_verify(
                user=user, code=form.cleaned_data["code"], ip=client_ip(request)
            )
        except two_factor.TwoFactorError as exc:
            form.add_error("code", str(exc))
        else:
            _verified_with(request, device)
            if isinstance(device, StaticDevice):
                left = two_factor.recovery_codes_left(user)
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. "
                    "Make new ones under Two-factor sign-in if your phone is lost.",
                )
            return redirect(_next(request))
    return render(
        request, "registration/two_factor_verify.html", {"form": form, "next": _next(request)}
    )


@login_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: scan the code (or type the secret), confirm with a code."""
    user = request.user
    if two_factor.enrolled(user):
        if not two_factor.is_verified(user):
            return redirect(two_factor.url_with_next("two_factor_verify", _next(request)))
        messages.info(request, "Two-factor sign-in is already set up.")
        return redirect("two_factor")
    if not settings.TWO_FACTOR_ENABLED:
        return redirect("two_factor")
    device = two_factor.totp_device_pending(user=user)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        try:
            device, codes = two_factor.totp_enrol(
                user=user, code=form.cleaned_data["code"], ip=client_ip(request)
            )
        except two_factor.TwoFactorError as exc:
            form.add_error("code", str(exc))
            device = two_factor.totp_device_pending(user=user)
        else:
            _verified_with(request, device)
            request.session[NEW_CODES_KEY] = codes
            return redirect(two_factor.url_with_next("two_factor_recovery_codes", _next(request)))
    context = {
        "form": form,
        "next": _next(request),
        "required": two_factor.required_for(user),
        "secret": two_factor.secret_of(device),
        "uri": device.config_url,
        "qr": _qr_svg(device.config_url),
    }
    return render(request, "registration/two_factor_enrol.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """New recovery codes, shown once; a POST replaces them all (the old ones stop working)."""
    user = request.user
    if not two_factor.is_verified(user):
        return redirect("two_factor")
    if request.method == "POST":
        request.session[NEW_CODES_KEY] = two_factor.recovery_codes_create(
            user=user, ip=client_ip(request)
        )
        return redirect("two_factor_recovery_codes")
    codes = request.session.pop(NEW_CODES_KEY, None)
    context = {
        "codes": [_shown(code) for code in codes] if codes else None,
        "left": two_factor.recovery_codes_left(user),
        "next": _next(request),
    }
    return render(request, "registration/two_factor_recovery_codes.html", context)


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """Where a person sees whether two-factor sign-in is on for them and renews their codes."""
    user = request.user
    context = {
        "enabled": settings.TWO_FACTOR_ENABLED,
        "enrolled": two_factor.enrolled(user),
        "required": two_factor.required_for(user),
        "verified": two_factor.is_verified(user),
        "left": two_factor.recovery_codes_left(user),
        "supervisor": roles.is_supervisor(user),
    }
    return render(request, "registration/two_factor.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def reset(request: HttpRequest) -> HttpResponse:
    """Supervisors remove a colleague's authenticator app (a lost phone); audited."""
    if not roles.is_supervisor(request.user):
        raise Http404
    if request.method == "POST":
        pk = request.POST.get("user", "")
        if not pk.isdigit():
            raise Http404
        colleague = get_object_or_404(get_user_model(), pk=int(pk))
        try:
            two_factor.two_factor_reset(user=colleague, by=request.user, ip=client_ip(request))
        except two_factor.TwoFactorError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Two-factor sign-in of {roles.display_name(colleague)} is reset: "
                "they set it up again when they next open a page.",
            )
        return redirect("two_factor_reset")
    context = {"devices": two_factor.devices_enrolled()}
    return render(request, "registration/two_factor_reset.html", context)
