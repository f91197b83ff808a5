"""Transport and headers (docs/security.md, "Transport and headers"): sign-in behind a proxy that
terminates TLS, the Content-Security-Policy, no caching of what a signed-in person is shown, and
templates with no inline script for the policy to block."""

import re
import time
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from tests.config.test_settings import settings_of

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
LOGIN = reverse("login")
QUEUE = reverse("reviewqueue:queue")
PUBLIC = "flowdesk.example.org"


def sign_in_through_proxy(client: Client, *, host: str, origin: str) -> int:
    """What a browser does through a proxy that terminates TLS: the form over https, posted with
    its https:// Origin; the proxy passes plain HTTP on with ``X-Forwarded-Proto: https``."""
    proxied = {"HTTP_HOST": host, "HTTP_X_FORWARDED_PROTO": "https"}
    form = client.get(LOGIN, **proxied)
    if form.status_code != 200:
        return form.status_code
    response = client.post(
        LOGIN,
        {
            "username": "alice",
            "password": "alice-password",
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
        HTTP_ORIGIN=origin,
        **proxied,
    )
    return response.status_code


def test_sign_in_works_behind_a_tls_proxy(alice, settings):
    settings.ALLOWED_HOSTS = [PUBLIC]
    settings.SECURE_SSL_REDIRECT = True  # production's
    # As today without the setting: Django takes the proxied request for plain HTTP and sends
    # the browser back to https://, where the proxy passes it on as plain HTTP again: a loop.
    assert sign_in_through_proxy(Client(), host=PUBLIC, origin=f"https://{PUBLIC}") == 301
    settings.SECURE_SSL_REDIRECT = False
    # Without the redirect, the https:// Origin does not match the http:// request: CSRF refused.
    assert (
        sign_in_through_proxy(
            Client(enforce_csrf_checks=True), host=PUBLIC, origin=f"https://{PUBLIC}"
        )
        == 403
    )

    from_env = settings_of("SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    settings.SECURE_PROXY_SSL_HEADER = tuple(from_env["SECURE_PROXY_SSL_HEADER"])
    settings.SECURE_SSL_REDIRECT = True
    client = Client(enforce_csrf_checks=True)
    assert sign_in_through_proxy(client, host=PUBLIC, origin=f"https://{PUBLIC}") == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_sign_in_through_a_proxy_that_renames_the_host_needs_a_trusted_origin(alice, settings):
    """The proxy hands Django its own name for the upstream, not the one the browser used."""
    settings.ALLOWED_HOSTS = ["flowdesk-web"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    origin = f"https://{PUBLIC}"
    assert (
        sign_in_through_proxy(Client(enforce_csrf_checks=True), host="flowdesk-web", origin=origin)
        == 403
    )

    from_env = settings_of("CSRF_TRUSTED_ORIGINS", CSRF_TRUSTED_ORIGINS=origin)
    settings.CSRF_TRUSTED_ORIGINS = from_env["CSRF_TRUSTED_ORIGINS"]
    client = Client(enforce_csrf_checks=True)
    assert sign_in_through_proxy(client, host="flowdesk-web", origin=origin) == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_production_redirects_to_https_except_the_health_check(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    response = Client().get(LOGIN)
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    # The container's HEALTHCHECK asks over plain HTTP from inside the container.
    assert Client().get(reverse("healthz")).status_code == 200
    secure = Client().get(LOGIN, secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"].startswith("max-age=3600")


# --- Content-Security-Policy -----------------------------------------------------------------


def policy(response) -> dict[str, list[str]]:
    directives = [d.split() for d in response["Content-Security-Policy"].split(";")]
    return {d[0]: d[1:] for d in directives if d}


@pytest.mark.parametrize("signed_in", [False, True])
def test_pages_have_a_policy_without_inline_script(client, alice, signed_in):
    if signed_in:
        client.force_login(alice)
    response = client.get(QUEUE if signed_in else LOGIN)
    assert response.status_code == 200
    rules = policy(response)
    assert rules["default-src"] == ["'self'"]
    assert rules["script-src"] == ["'self'"]  # no 'unsafe-inline', no nonce, no 'unsafe-eval'
    assert rules["object-src"] == ["'none'"]
    assert rules["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in rules["style-src"]


def test_the_admins_inline_styles_carry_the_nonce_of_the_policy(admin_client):
    """Django's admin writes inline <style> with ``{% csp_nonce_attr %}``; the nonce in its page
    must be the one the header allows, or the admin's styles break."""
    response = admin_client.get(reverse("admin:auth_user_changelist"))
    nonces = set(re.findall(r'nonce="([^"]+)"', response.content.decode()))
    assert len(nonces) == 1, nonces
    (nonce,) = nonces
    assert f"'nonce-{nonce}'" in policy(response)["style-src"]
    assert f"'nonce-{nonce}'" not in policy(response).get("script-src", [])


def tags_of(html: str) -> list[str]:
    return re.findall(r"<[a-zA-Z][^>]*>", html)


def templates() -> list[Path]:
    found = sorted((ROOT / "templates").rglob("*.html"))
    assert len(found) > 20, "the templates moved: this scan would check nothing"
    return found


@pytest.mark.parametrize("template", templates(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_inline_script_or_style(template):
    """The policy blocks them; better that a test names the template than that a page silently
    loses its behaviour in production."""
    # What a comment says is never rendered.
    html = re.sub(r"{% comment %}.*?{% endcomment %}|{#.*?#}", "", template.read_text(), flags=re.S)
    for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I):
        assert "src=" in attrs and not body.strip(), f"inline script: {attrs} {body[:80]}"
    for tag in tags_of(html):
        assert not re.search(r"\son[a-z]+\s*=", tag, re.I), f"event handler attribute: {tag}"
        assert not re.search(r"\sstyle\s*=", tag, re.I), f"style attribute: {tag}"
        assert "hx-on" not in tag, f"hx-on is evaluated as script: {tag}"
        assert "javascript:" not in tag.lower(), f"javascript: URL: {tag}"
    assert not re.search(r"<style\b", html, re.I), "inline <style>: use a file under static/"


# --- Cache-Control ---------------------------------------------------------------------------


def stored(response) -> bool:
    return "no-store" not in response.get("Cache-Control", "")


@pytest.mark.parametrize(
    "url", [QUEUE, reverse("reviewqueue:runs"), reverse("reviewqueue:preferences")]
)
def test_signed_in_pages_are_not_stored_and_static_files_are(client, alice, url):
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 200
    assert not stored(response)
    assert not stored(client.get(url, headers={"HX-Request": "true"}))
    # Static files (WhiteNoise answers them first) and anonymous pages may be cached.
    static = client.get("/static/flowdesk.css")
    assert static.status_code == 200
    assert stored(static)
    assert stored(Client().get(reverse("ping")))


def test_the_answer_that_ends_an_idle_session_is_not_stored(client, alice, settings):
    """Signed in when the request came counts, though signed out by the time it is answered."""
    client.force_login(alice)
    session = client.session
    session["active_at"] = int(time.time()) - settings.SESSION_IDLE_SECONDS - 60
    session.save()
    response = client.get(QUEUE, headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == LOGIN
    assert not stored(response)
