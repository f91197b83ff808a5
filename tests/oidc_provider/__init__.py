"""A small OpenID Connect provider (django-oauth-toolkit) for the single sign-on tests: its own
Django project, run in a subprocess by tests/config/test_oidc.py, never imported by Flowdesk."""
