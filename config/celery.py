"""The Celery app shared by the engine's executor and Flowdesk's own tasks."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("flowdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
