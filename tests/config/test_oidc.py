"""Single sign-on through OpenID Connect (reviewqueue/oidc.py), end to end against a real provider:
django-oauth-toolkit in a subprocess (tests/oidc_provider/), Flowdesk on ``live_server``, and an
httpx client that follows the redirects and fills in the provider's sign-in and consent forms as
a browser would."""

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pytest
from axes.models import AccessAttempt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings

from audit.models import AuditEvent

pytestmark = [pytest.mark.oidc, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(django_settings.BASE_DIR)
CLIENT_ID = "flowdesk-test"
CLIENT_SECRET = "flowdesk-test-secret-not-for-production"
# The hospital's directory: its own usernames, which need not be Flowdesk's.
PEOPLE = [
    {"username": "alice.h", "email": "alice@hospital.example", "password": "alice-at-hospital"},
    {"username": "bob", "email": "bob.personal@mail.example", "password": "bob-at-hospital"},
    {"username": "mallory", "email": "mallory@hospital.example", "password": "mallory-pw"},
    # Claims alice's address without having proved it.
    {"username": "carol", "email": "alice@hospital.example", "password": "carol-pw"},
]
UNVERIFIED = ["bob", "carol"]


@pytest.fixture(scope="session")
def oidc_provider(live_server, tmp_path_factory) -> Iterator[str]:
    """The provider's issuer URL, with a fresh RSA key, database and client for Flowdesk."""
    state_dir = tmp_path_factory.mktemp("oidc-provider")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (state_dir / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    spec = {
        "people": PEOPLE,
        "unverified": UNVERIFIED,
        "client": {
            "id": CLIENT_ID,
            "secret": CLIENT_SECRET,
            "redirect_uri": f"{live_server.url}/accounts/oidc/callback/",
        },
    }
    (state_dir / "spec.json").write_text(json.dumps(spec))
    env = {
        **os.environ,
        "OIDC_PROVIDER_DIR": str(state_dir),
        "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
    }
    # Its errors go to a file, not a pipe nobody reads once it runs (a full pipe would stall it).
    errors = state_dir / "stderr.txt"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.oidc_provider.serve"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        port = _port_announced(process, errors, timeout=60)
        yield f"http://127.0.0.1:{port}/o"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]


def _port_announced(process: subprocess.Popen, errors: Path, timeout: float) -> str:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0].startswith("listening "):
        process.kill()
        process.wait(timeout=10)
        pytest.fail(f"the test provider did not start:\n{errors.read_text()[-3000:]}")
    return lines[0].split()[1]


@pytest.fixture
def sso(settings, oidc_provider):
    settings.OIDC_ISSUER = oidc_provider
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_PROVIDER_NAME = "Test Hospital"
    # A loaded machine answers slowly; a timeout here would be the machine, not the code.
    settings.OIDC_TIMEOUT = 60.0
    return settings


@pytest.fixture
def alice_at_hospital(alice):
    alice.email = "alice@hospital.example"
    alice.save(update_fields=["email"])
    return alice


@pytest.fixture
def http_browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as http:
        yield http


class _FirstForm(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {name: value or "" for name, value in attrs}
        if tag == "form" and not self._done:
            self._inside, self.action = True, named.get("action", "")
        elif tag == "input" and self._inside and named.get("type") != "submit" and "name" in named:
            self.fields[named["name"]] = named.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._inside:
            self._inside, self._done = False, True


def _submit(http: httpx.Client, page: httpx.Response, **values: str) -> httpx.Response:
    """Fill in and post the first form on ``page``, as a browser would; no redirect followed."""
    form = _FirstForm()
    form.feed(page.text)
    assert form.action is not None, f"no form on {page.url}"
    return http.post(urljoin(str(page.url), form.action), data={**form.fields, **values})


def _provider_sign_in(http: httpx.Client, flowdesk: str, username: str, password: str) -> str:
    """From Flowdesk's button through the provider's sign-in and consent pages; returns the URL
    the provider sends the http_browser back to (Flowdesk's callback with its code and state)."""
    page = http.get(f"{flowdesk}/accounts/oidc/authenticate/", follow_redirects=True)
    assert "Hospital sign-in" in page.text, page.text[:500]
    signed_in = _submit(http, page, username=username, password=password)
    assert signed_in.status_code == 302, signed_in.text[:500]
    consent = http.get(urljoin(str(signed_in.url), signed_in.headers["location"]))
    assert consent.status_code == 200
    back = _submit(http, consent, allow="Authorize")
    assert back.status_code == 302
    return back.headers["location"]


def _audit(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def test_a_known_user_signs_in_and_lands_on_the_queue(
    live_server, sso, alice_at_hospital, http_browser
):
    login_page = http_browser.get(f"{live_server.url}/accounts/login/")
    assert "Sign in with Test Hospital" in login_page.text
    # The password form stays unless OIDC_ONLY.
    assert 'name="password"' in login_page.text

    callback = _provider_sign_in(http_browser, live_server.url, "alice.h", "alice-at-hospital")
    query = parse_qs(urlsplit(callback).query)
    assert callback.startswith(f"{live_server.url}/accounts/oidc/callback/")
    assert set(query) >= {"code", "state"}

    landed = http_browser.get(callback, follow_redirects=True)
    assert landed.url == f"{live_server.url}/"
    assert "Work queue" in landed.text
    [login] = _audit("login")
    assert login.actor_id == alice_at_hospital.pk
    assert login.detail == {"method": "oidc"}
    assert _audit("login.failed") == []
    # Nothing of the exchange is kept where it could leak: no token in the session or the trail.
    session = http_browser.cookies.get("sessionid", domain=urlsplit(live_server.url).hostname)
    from django.contrib.sessions.backends.db import SessionStore

    stored = SessionStore(session_key=session).load()
    assert not any("token" in key and key != "oidc_id_token_expiration" for key in stored)


def test_an_unknown_user_gets_the_plain_page_and_no_session(live_server, sso, http_browser):
    callback = _provider_sign_in(http_browser, live_server.url, "mallory", "mallory-pw")
    refused = http_browser.get(callback)
    assert refused.status_code == 403
    assert "Your hospital account is not set up in Flowdesk; ask a supervisor." in refused.text
    assert (
        http_browser.get(f"{live_server.url}/").headers["location"].startswith("/accounts/login/")
    )
    [failed] = _audit("login.failed")
    assert failed.actor_id is None
    assert failed.detail == {"username": "mallory", "method": "oidc", "reason": "unknown user"}
    assert _audit("login") == []
    # django-axes counts the failure against the address, with the one-time code masked.
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert not AccessAttempt.objects.filter(get_data__contains=code).exists()
    assert AccessAttempt.objects.filter(get_data__contains="code=****").count() == 1


def test_an_unknown_user_is_created_without_a_role_where_asked(
    live_server, sso, http_browser, django_user_model
):
    sso.OIDC_CREATE_USERS = True
    callback = _provider_sign_in(http_browser, live_server.url, "mallory", "mallory-pw")
    landed = http_browser.get(callback, follow_redirects=True)
    assert landed.url == f"{live_server.url}/"
    mallory = django_user_model.objects.get(username="mallory")
    assert mallory.email == "mallory@hospital.example"
    assert not mallory.has_usable_password()
    assert not mallory.groups.exists() and not mallory.is_staff
    assert [event.actor_id for event in _audit("user.created")] == [mallory.pk]
    assert [event.actor_id for event in _audit("login")] == [mallory.pk]


def test_an_unverified_email_address_matches_no_one(
    live_server, sso, alice_at_hospital, http_browser
):
    callback = _provider_sign_in(http_browser, live_server.url, "carol", "carol-pw")
    refused = http_browser.get(callback)
    assert refused.status_code == 403
    assert _audit("login") == []
    assert _audit("login.failed")[0].detail["reason"] == "unknown user"


def test_the_providers_username_matches_when_the_address_is_not_verified(
    live_server, sso, bob, http_browser
):
    callback = _provider_sign_in(http_browser, live_server.url, "bob", "bob-at-hospital")
    landed = http_browser.get(callback, follow_redirects=True)
    assert landed.url == f"{live_server.url}/"
    assert [event.actor_id for event in _audit("login")] == [bob.pk]


def test_a_tampered_state_is_refused(live_server, sso, alice_at_hospital, http_browser):
    callback = _provider_sign_in(http_browser, live_server.url, "alice.h", "alice-at-hospital")
    parts = urlsplit(callback)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query["state"] = "x" + query["state"][1:]
    refused = http_browser.get(urlunsplit(parts._replace(query=urlencode(query))))
    assert refused.status_code == 400
    assert "did not work" in refused.text
    assert http_browser.get(f"{live_server.url}/").status_code == 302
    [failed] = _audit("login.failed")
    assert failed.detail == {"username": "", "method": "oidc", "reason": "unknown state"}
    assert _audit("login") == []


def test_the_code_works_once(live_server, sso, alice_at_hospital, http_browser):
    callback = _provider_sign_in(http_browser, live_server.url, "alice.h", "alice-at-hospital")
    assert http_browser.get(callback).status_code == 302
    # Replayed, in this http_browser (its state is used up) or from another (never given it).
    assert http_browser.get(callback).status_code == 400
    with httpx.Client(timeout=30) as other:
        assert other.get(callback).status_code == 400
    assert len(_audit("login")) == 1


def test_flowdesks_own_code_is_still_asked_after_the_provider(
    live_server, sso, alice_at_hospital, http_browser
):
    sso.TWO_FACTOR_ENABLED = True
    alice_at_hospital.is_staff = True
    alice_at_hospital.save(update_fields=["is_staff"])
    callback = _provider_sign_in(http_browser, live_server.url, "alice.h", "alice-at-hospital")
    landed = http_browser.get(callback, follow_redirects=True)
    assert urlsplit(str(landed.url)).path == "/accounts/two-factor/set-up/"


def test_a_provider_that_does_mfa_stands_for_flowdesks_code(
    live_server, sso, alice_at_hospital, http_browser
):
    sso.TWO_FACTOR_ENABLED = True
    sso.OIDC_PROVIDER_DOES_MFA = True
    alice_at_hospital.is_staff = True
    alice_at_hospital.save(update_fields=["is_staff"])
    callback = _provider_sign_in(http_browser, live_server.url, "alice.h", "alice-at-hospital")
    landed = http_browser.get(callback, follow_redirects=True)
    assert landed.url == f"{live_server.url}/"
    # A password sign-in of the same person still has to give the code.
    with httpx.Client(timeout=30) as other:
        page = other.get(f"{live_server.url}/accounts/login/")
        signed_in = _submit(other, page, username="alice", password="alice-password")
        assert signed_in.status_code == 302
        after = other.get(f"{live_server.url}/", follow_redirects=True)
        assert urlsplit(str(after.url)).path == "/accounts/two-factor/set-up/"


# --- Without a provider: the sign-in page, and passwords beside single sign-on ------------------


def test_without_the_setting_the_sign_in_page_is_as_before(client, settings):
    settings.OIDC_ISSUER = ""
    page = client.get("/accounts/login/")
    assert "Sign in with" not in page.content.decode()
    assert 'name="password"' in page.content.decode()
    assert client.get("/accounts/oidc/authenticate/").status_code == 404
    assert client.get("/accounts/oidc/callback/?code=a&state=b").status_code == 404


def test_oidc_only_hides_the_password_form_and_refuses_passwords_but_a_superusers(
    client, settings, alice, django_user_model
):
    settings.OIDC_ISSUER = "https://login.hospital.example"
    settings.OIDC_ONLY = True
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with your hospital account" in page
    assert 'name="password"' not in page

    refused = client.post(
        "/accounts/login/", {"username": "alice", "password": "alice-password"}
    ).content.decode()
    assert "passwords are not used here" in refused
    assert "_auth_user_id" not in client.session
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    refused = client.post(
        "/admin/login/", {"username": "alice", "password": "alice-password"}
    ).content.decode()
    assert "passwords are not used here" in refused
    assert "_auth_user_id" not in client.session

    django_user_model.objects.create_superuser("root", password="root-password-long")
    client.post("/admin/login/", {"username": "root", "password": "root-password-long"})
    assert "_auth_user_id" in client.session


def test_a_password_sign_in_with_a_code_in_its_url_never_reaches_the_provider(
    client, settings, alice
):
    settings.OIDC_ISSUER = "http://127.0.0.1:9"  # nothing listens there
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    response = client.post(
        "/accounts/login/?code=x&state=y", {"username": "alice", "password": "alice-password"}
    )
    assert response.status_code == 302
    assert _audit("login")[0].detail == {}


# --- Settings ------------------------------------------------------------------------------------


def test_production_refuses_a_provider_over_plain_http(tmp_path):
    from tests.config.test_settings import PRODUCTION, start_django

    secret = tmp_path / "oidc-secret"
    secret.write_text("from-a-file\n")
    client = {"OIDC_CLIENT_ID": "flowdesk", "OIDC_CLIENT_SECRET_FILE": str(secret)}
    result = start_django(**PRODUCTION, **client, OIDC_ISSUER="http://login.hospital.example")
    assert result.returncode != 0
    assert "OIDC_ISSUER must be https://" in result.stderr
    started = start_django(**PRODUCTION, **client, OIDC_ISSUER="https://login.hospital.example")
    assert started.stdout.strip() == "started", started.stderr
    # A provider without its client is a typo to refuse at start, not at the first sign-in.
    result = start_django(OIDC_ISSUER="https://login.hospital.example")
    assert "OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET" in result.stderr
