"""Two-factor sign-in: a code from an authenticator app (TOTP) after the password, with
one-time recovery codes for a lost phone (django-otp's ``otp_totp`` and ``otp_static``).

Who must use it (``required_for``): superusers, staff (who can open Django admin), supervisors
and flow admins; reviewers too where ``TWO_FACTOR_FOR_REVIEWERS`` is on. Anyone who set it up of
their own accord is asked for a code as well. ``TWO_FACTOR_ENABLED`` off asks no one.

Wrong codes have their own limit, django-otp's throttle on each device: after n wrong codes in a
row the next one is not even checked for 2^(n-1) seconds (1, 2, 4 … 512 s after the tenth). It
is kept on the device row, so signing in again with the password (which resets django-axes'
count) does not reset it; only a right code does, or a supervisor's reset.

Every event is in the audit trail; a code or a secret never is.
"""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from reviewqueue import roles, services

RECOVERY_CODE_COUNT = 10
DEVICE_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


class TwoFactorError(Exception):
    """A code was refused; the message is for the person who typed it."""


# --- Who, and where they stand ----------------------------------------------------------------


def required_for(user: Any) -> bool:
    """Whether ``user`` must set up two-factor sign-in before reaching any page."""
    if not (settings.TWO_FACTOR_ENABLED and user.is_authenticated):
        return False
    if user.is_superuser or user.is_staff or settings.TWO_FACTOR_FOR_REVIEWERS:
        return True
    # Permissions, as in roles.py: supervisors, and flow admins (who store template versions).
    return roles.can_triage(user)


def is_verified(user: Any) -> bool:
    """Whether this request's session gave a code (set by django-otp's OTPMiddleware)."""
    return bool(user.is_verified())


def enrolled(user: Any) -> bool:
    """Whether ``user`` has a confirmed authenticator app (recovery codes alone are not one)."""
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()


def recovery_codes_left(user: Any) -> int:
    return StaticToken.objects.filter(device__user_id=user.pk, device__confirmed=True).count()


def secret_of(device: TOTPDevice) -> str:
    """The device's key as authenticator apps take it by hand: base32, in groups of four."""
    from base64 import b32encode

    text = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def _normalised(code: str) -> str:
    # People type recovery codes with the dash we show, spaces, or in capitals.
    return "".join(code.split()).replace("-", "").lower()


def _refusal(device: Any) -> str | None:
    """Why ``device`` will not check a code now (its throttle), or None."""
    allowed, why = device.verify_is_allowed()
    if allowed:
        return None
    until = (why or {}).get("locked_until")
    if until is None:
        return "Too many wrong codes. Try again later."
    seconds = max(1, round((until - timezone.now()).total_seconds()))
    return f"Too many wrong codes. Try again in {_duration(seconds)}."


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 2 * 60 * 60:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3600)} hours"


# --- Services ---------------------------------------------------------------------------------


def totp_device_pending(*, user: Any) -> TOTPDevice:
    """The authenticator app ``user`` is setting up: the same secret each time the page is
    shown until a code confirms it, so a reload does not break what the app already holds."""
    device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def totp_enrol(*, user: Any, code: str, ip: str | None) -> tuple[TOTPDevice, list[str]]:
    """Confirm the pending authenticator app with a code from it; returns the device and a new
    set of recovery codes (the only time they exist outside the database). Refuses when a
    confirmed app exists: setting up a second one is not a way around giving its code."""
    with transaction.atomic():
        if enrolled(user):
            raise TwoFactorError("Two-factor sign-in is already set up.")
        # The row lock settles two tabs confirming at once: one confirms, the other finds it
        # confirmed (or its code already used: last_t) and is refused.
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user_id=user.pk, confirmed=False)
            .order_by("pk")
            .first()
        )
        if device is None:
            raise TwoFactorError("Start again: scan the new code below.")
        refusal = _refusal(device)
        if refusal is None and device.verify_token(_normalised(code)):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).delete()
            codes = _recovery_codes_replace(user)
            services.audit_record(action="two_factor.enrolled", actor=user, ip=ip)
            return device, codes
    services.audit_record(
        action="two_factor.failed",
        actor=user,
        ip=ip,
        stage="enrolment",
        method="totp",
        throttled=refusal is not None,
    )
    raise TwoFactorError(refusal or "That code is not right. Enter the code the app shows now.")


def two_factor_verify(*, user: Any, code: str, ip: str | None) -> TOTPDevice | StaticDevice:
    """Check a code from ``user``'s authenticator app (six digits) or one of their recovery codes
    (anything else); returns the device that accepted it. A recovery code works once."""
    token = _normalised(code)
    method = "totp" if token.isdigit() and len(token) == 6 else "recovery"
    model: type[TOTPDevice] | type[StaticDevice] = TOTPDevice if method == "totp" else StaticDevice
    refusal = None
    with transaction.atomic():
        # Locked: the same code sent twice at once is accepted once (TOTP's last_t, a recovery
        # code's delete), and the throttle's count is not lost between two failures.
        device = model.objects.select_for_update().filter(user_id=user.pk, confirmed=True).first()
        if device is not None:
            refusal = _refusal(device)
            if refusal is None and device.verify_token(token):
                if method == "totp":
                    services.audit_record(action="two_factor.verified", actor=user, ip=ip)
                else:
                    services.audit_record(
                        action="two_factor.recovery_code_used",
                        actor=user,
                        ip=ip,
                        left=device.token_set.count(),
                    )
                return device
    services.audit_record(
        action="two_factor.failed",
        actor=user,
        ip=ip,
        stage="sign-in",
        method=method,
        throttled=refusal is not None,
    )
    raise TwoFactorError(refusal or "That code is not right.")


def recovery_codes_create(*, user: Any, ip: str | None) -> list[str]:
    """Replace ``user``'s recovery codes with a new set (the old ones stop working)."""
    with transaction.atomic():
        codes = _recovery_codes_replace(user)
        services.audit_record(
            action="two_factor.recovery_codes_created", actor=user, ip=ip, count=len(codes)
        )
    return codes


def _recovery_codes_replace(user: Any) -> list[str]:
    StaticDevice.objects.filter(user_id=user.pk).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def two_factor_reset(*, user: Any, by: Any, ip: str | None) -> None:
    """A supervisor removes a colleague's authenticator app and recovery codes (a lost phone):
    the colleague sets it up again at their next page. Nobody resets their own (that would
    skip their code), and only a superuser resets a superuser's."""
    if user.pk == by.pk:
        raise TwoFactorError("Ask another supervisor to reset your own two-factor sign-in.")
    if user.is_superuser and not by.is_superuser:
        raise TwoFactorError("Only a superuser can reset a superuser's two-factor sign-in.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user_id=user.pk).delete()
        StaticDevice.objects.filter(user_id=user.pk).delete()
        services.audit_record(
            action="two_factor.reset",
            actor=by,
            ip=ip,
            colleague=user.get_username(),
            colleague_id=user.pk,
        )


def devices_enrolled() -> list[TOTPDevice]:
    """Everyone's authenticator app, with its person, for the supervisors' reset page."""
    return list(
        TOTPDevice.objects.filter(confirmed=True).select_related("user").order_by("user__username")
    )


# --- Middleware -------------------------------------------------------------------------------


def _open_paths() -> set[str]:
    """What a signed-in person may reach before giving their code."""
    return {
        reverse("two_factor_verify"),
        reverse("two_factor_enrol"),
        reverse("logout"),
        reverse("admin:logout"),
        reverse("healthz"),
        reverse("ping"),
    }


def verification_required(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """Until a person who has an authenticator app (or must set one up) gives a code, every
    other page, Django admin included, sends them to do that. htmx requests are sent there with
    HX-Redirect, as config.middleware does when a session ends. After OTPMiddleware (which says
    whether the session is verified) and after session_limits (an ended session is anonymous)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            settings.TWO_FACTOR_ENABLED
            and user.is_authenticated
            and not is_verified(user)
            and request.path_info not in _open_paths()
        ):
            if enrolled(user):
                target = "two_factor_verify"
            elif required_for(user):
                target = "two_factor_enrol"
            else:
                return get_response(request)
            if getattr(request, "htmx", False):
                back = request.htmx.current_url_abs_path  # type: ignore[attr-defined]
                return HttpResponseClientRedirect(url_with_next(target, back))
            back = request.get_full_path() if request.method in ("GET", "HEAD") else None
            return redirect(url_with_next(target, back))
        return get_response(request)

    return middleware


def url_with_next(name: str, next_url: str | None) -> str:
    url = reverse(name)
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url
