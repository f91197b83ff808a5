"""Single sign-on through a hospital's OpenID Connect provider (mozilla-django-oidc), off unless
``OIDC_ISSUER`` names the provider.

Every setting is read when a sign-in needs it, not at import: the provider's endpoints and keys
come from its discovery document (``<issuer>/.well-known/openid-configuration``), fetched at the
first sign-in and kept for an hour. The authorization-code flow with state, nonce and PKCE (S256);
ID tokens signed with RS256 by a key from the provider's JWKS, issued by ``OIDC_ISSUER`` to
``OIDC_CLIENT_ID``. No token is kept in the session, logged or audited.

A person is matched to a Flowdesk user by a verified e-mail address, else by the provider's
``preferred_username``; Flowdesk's groups stay their roles. Someone not matched gets a plain page
(or a new user without any role, where ``OIDC_CREATE_USERS`` is on). Two-factor sign-in still asks
for Flowdesk's own code unless ``OIDC_PROVIDER_DOES_MFA`` says the provider asked for one.
"""

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import requests
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from config.client_ip import client_ip
from reviewqueue import services

logger = logging.getLogger(__name__)

SIGN_ALGORITHM = "RS256"
DISCOVERY_KEPT_SECONDS = 60 * 60
# The session's mark of a sign-in through the provider: the user's id, so that it means nothing
# once another person signs in on the same browser (Django flushes the session then anyway).
SESSION_KEY = "flowdesk_oidc_user"

NOT_SET_UP = "Your hospital account is not set up in Flowdesk; ask a supervisor."
DID_NOT_WORK = "Signing in with your hospital account did not work. Try again."


class ProviderError(Exception):
    """The provider could not be reached or answered something we cannot use."""


def enabled() -> bool:
    return bool(settings.OIDC_ISSUER)


# --- The provider, from its discovery document ----------------------------------------------------

_discovered: dict[str, tuple[float, dict[str, Any]]] = {}


def provider() -> dict[str, Any]:
    """The provider's endpoints and algorithms, from its discovery document; kept for an hour so
    that a sign-in costs no extra round trip, refetched after that (providers move endpoints)."""
    issuer = settings.OIDC_ISSUER.rstrip("/")
    kept = _discovered.get(issuer)
    if kept is not None and kept[0] > time.monotonic():
        return kept[1]
    try:
        response = httpx.get(
            f"{issuer}/.well-known/openid-configuration", timeout=settings.OIDC_TIMEOUT
        )
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderError(f"discovery failed: {type(exc).__name__}") from exc
    # OpenID Connect Discovery 1.0, 4.3: the document must name the issuer it was fetched from,
    # or a provider could speak for another.
    if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != issuer:
        raise ProviderError("discovery document names another issuer")
    endpoints = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    missing = [name for name in endpoints if not document.get(name)]
    if missing:
        raise ProviderError(f"discovery document lacks {', '.join(missing)}")
    if settings.PRODUCTION and any(
        urlsplit(document[name]).scheme != "https" for name in endpoints
    ):
        raise ProviderError("the provider's endpoints must be https://")
    if SIGN_ALGORITHM not in document.get(
        "id_token_signing_alg_values_supported", [SIGN_ALGORITHM]
    ):
        raise ProviderError(f"the provider does not sign ID tokens with {SIGN_ALGORITHM}")
    _discovered[issuer] = (time.monotonic() + DISCOVERY_KEPT_SECONDS, document)
    return document


def _claimed_name(claims: dict[str, Any]) -> str:
    """Who the provider says signed in, for the audit trail: a name, never a token."""
    return str(claims.get("preferred_username") or claims.get("email") or "")[:150]


def _failed(
    request: HttpRequest, reason: str, username: str = "", status: int = 403
) -> HttpResponse:
    """Audit a refused sign-in and show the plain page; the reason is ours, never the provider's
    text (which could carry anything)."""
    services.audit_record(
        action="login.failed",
        ip=client_ip(request),
        username=username,
        method="oidc",
        reason=reason,
    )
    logger.warning("Single sign-on refused: %s", reason)
    message = NOT_SET_UP if reason in ("unknown user", "inactive user") else DID_NOT_WORK
    return render(request, "registration/oidc_failed.html", {"message": message}, status=status)


# --- The authentication backend -------------------------------------------------------------------


class Backend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with the provider discovered, ID tokens checked for issuer and
    audience (the library checks neither), and our matching. Its refusals are left on the
    request (``oidc_failure``) for the callback view to audit and explain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django makes a backend for every authenticate() and get_user(): the library would read
        # its endpoints from settings here, which we only know after discovery.
        self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        # Only the callback passes a nonce: a password sign-in with ?code=&state= in its URL
        # never reaches the provider.
        if request is None or "nonce" not in kwargs or not enabled():
            return None
        try:
            document = provider()
            self.OIDC_OP_TOKEN_ENDPOINT = document["token_endpoint"]
            self.OIDC_OP_USER_ENDPOINT = document["userinfo_endpoint"]
            self.OIDC_OP_JWKS_ENDPOINT = document["jwks_uri"]
            self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
            self.OIDC_RP_CLIENT_SECRET = settings.OIDC_CLIENT_SECRET
            self.OIDC_RP_SIGN_ALGO = SIGN_ALGORITHM
            self.OIDC_RP_IDP_SIGN_KEY = None
            user = super().authenticate(request, **kwargs)
        except ProviderError as exc:
            _refuse(request, f"provider: {exc}")
            return None
        except (requests.RequestException, SuspiciousOperation, jwt.PyJWTError, KeyError) as exc:
            # The exception's text can quote the provider's answer: its class is enough here.
            _refuse(request, f"token refused: {type(exc).__name__}")
            return None
        if user is not None:
            # Read by the "login" audit receiver (reviewqueue/receivers.py).
            user.sign_in_method = "oidc"
        return user

    def get_user(self, user_id: Any) -> Any:
        # The library's get_user skips Django's is_active check: a switched-off user's session
        # must end as it does for a password sign-in.
        return ModelBackend.get_user(self, user_id)

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if str(payload.get("iss", "")).rstrip("/") != settings.OIDC_ISSUER.rstrip("/"):
            raise SuspiciousOperation("ID token from another issuer")
        if settings.OIDC_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token for another client")
        return payload

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        """A verified e-mail address first (an unverified one could be anyone's), then the
        provider's username: the hospital's directory must not let people choose their own."""
        email = claims.get("email")
        if email and claims.get("email_verified") in (True, "true"):
            users = self.UserModel.objects.filter(email__iexact=email)
            if users.exists():
                return users
        username = claims.get("preferred_username")
        if username:
            return self.UserModel.objects.filter(username=username)
        return self.UserModel.objects.none()

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        claims = self.get_userinfo(access_token, id_token, payload)
        # OpenID Connect Core 5.3.2: the UserInfo answer must be about the ID token's subject.
        if not self.verify_claims(claims) or claims.get("sub") != payload.get("sub"):
            _refuse(self.request, "userinfo about another subject")
            return None
        users = list(self.filter_users_by_claims(claims)[:2])
        if len(users) > 1:
            _refuse(self.request, "more than one user matches", _claimed_name(claims))
            return None
        if users:
            if not users[0].is_active:
                _refuse(self.request, "inactive user", _claimed_name(claims))
                return None
            return users[0]
        if settings.OIDC_CREATE_USERS:
            return self.create_user(claims)
        _refuse(self.request, "unknown user", _claimed_name(claims))
        return None

    def create_user(self, claims: dict[str, Any]) -> Any:
        """A user with no password, not staff and in no group: no role until a supervisor
        gives one (claims are not mapped to groups)."""
        email = claims.get("email") if claims.get("email_verified") in (True, "true") else ""
        username = claims.get("preferred_username") or email
        if not username or self.UserModel.objects.filter(username=username).exists():
            _refuse(self.request, "no free username for a new user", _claimed_name(claims))
            return None
        user = self.UserModel.objects.create_user(username, email=email or "")
        services.audit_record(
            action="user.created", actor=user, ip=client_ip(self.request), method="oidc"
        )
        return user


def _refuse(request: HttpRequest, reason: str, username: str = "") -> None:
    request.oidc_failure = (reason, username)  # type: ignore[attr-defined]


# --- Views ----------------------------------------------------------------------------------------


class SignIn(OIDCAuthenticationRequestView):
    """Sends the browser to the provider with a fresh state, nonce and PKCE challenge."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library reads the endpoint from settings here; ours is discovered in get().
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not enabled():
            raise Http404
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider()["authorization_endpoint"]
        except ProviderError as exc:
            return _failed(request, f"provider: {exc}", status=502)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
        return super().get(request)


class Callback(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back; signs the person in or shows why not."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not enabled():
            raise Http404
        state = request.GET.get("state")
        if "code" in request.GET and state not in request.session.get("oidc_states", {}):
            # Not a state this browser was given (forged, replayed, or from another browser):
            # the library would answer a bare 400.
            return _failed(request, "unknown state", status=400)
        return super().get(request)

    def login_success(self) -> HttpResponse:
        response = super().login_success()
        self.request.session[SESSION_KEY] = self.user.pk
        return response

    def login_failure(self) -> HttpResponse:
        request = self.request
        reason, username = getattr(request, "oidc_failure", (None, ""))
        if reason is None:
            error = request.GET.get("error", "")
            # The provider's error code (access_denied, login_required ...), only if it is one.
            reason = f"provider said {error}" if error.replace("_", "").isalpha() else "refused"
        return _failed(request, reason[:100], username)


# --- Password sign-in beside single sign-on -------------------------------------------------------


def _password_allowed(user: Any) -> None:
    # With OIDC_ONLY, passwords are for superusers only: the way in when the provider is down.
    if enabled() and settings.OIDC_ONLY and not user.is_superuser:
        raise ValidationError(
            f"Sign in with {settings.OIDC_PROVIDER_NAME}: passwords are not used here.",
            code="oidc_only",
        )


class PasswordForm(AuthenticationForm):
    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        _password_allowed(user)


class LoginView(auth_views.LoginView):
    """Django's sign-in page, with the single sign-on button when a provider is set."""

    authentication_form = PasswordForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if enabled():
            context["oidc"] = {"name": settings.OIDC_PROVIDER_NAME, "only": settings.OIDC_ONLY}
        return context


class AdminPasswordForm(AdminAuthenticationForm):
    """Django admin's sign-in form, with the same rule (config/urls.py sets it)."""

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        _password_allowed(user)


# --- Two-factor sign-in ---------------------------------------------------------------------------


def provider_verified(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """With OIDC_PROVIDER_DOES_MFA, a session signed in through the provider counts as having
    given its second factor there: ``user.is_verified()`` (django-otp's, which
    reviewqueue/two_factor.py asks) answers yes. django-otp marks a session by the device that
    took a code; the provider is no such device, so the answer is given here, after
    OTPMiddleware and before two_factor.verification_required."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if enabled() and settings.OIDC_PROVIDER_DOES_MFA:
            user: Any = request.user
            if (
                user.is_authenticated
                and request.session.get(SESSION_KEY) == user.pk
                and not user.is_verified()
            ):
                user.is_verified = _yes
        return get_response(request)

    return middleware


def _yes() -> bool:
    return True
