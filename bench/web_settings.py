"""Flowdesk's settings plus one bench-only view, ``POST /bench/insert`` (``bench/web_urls.py``):
the ``burst`` scenario's baseline of a bare autocommitted INSERT through the same gunicorn."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.web_urls"
