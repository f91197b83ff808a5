"""Writes of the supervisors' dashboard: their saved views (``SavedView``)."""

from typing import Any

from django.db import IntegrityError, transaction

from reviewqueue.models import SavedView


class ViewNameTaken(Exception):
    """The person already has a saved view of that name."""


def saved_view_create(*, user: Any, name: str, query: str) -> SavedView:
    """Save the dashboard's filters (``query``, ids and periods only) under ``name``. Two tabs
    saving the same name at once: the unique constraint (``one_view_name``) lets one in and the
    other gets ``ViewNameTaken``, its savepoint rolled back, so nothing is half written."""
    try:
        with transaction.atomic():
            return SavedView.objects.create(user=user, name=name, query=query)
    except IntegrityError as exc:
        raise ViewNameTaken(name) from exc


def saved_view_delete(*, view: SavedView) -> None:
    view.delete()
