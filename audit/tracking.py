"""Configuration changes in the trail: who changed a queue, a route, a template, a person's
groups or a group's permissions, whether through the admin, a command or the shell.

Apps name the models that are configuration (``track``); the trail records that a row was
added, changed or deleted and which relations changed, never field values.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

from audit.services import audit_record

_tracked: set[type[Model]] = set()

# Sign-in stamps these on the user row: not a change of who someone is or may do.
_ROUTINE_USER_FIELDS = frozenset({"last_login"})


def track(*models: type[Model]) -> None:
    """Audit every add, change and delete of ``models``, and of their many-to-many relations."""
    for model in models:
        if model in _tracked:
            continue
        _tracked.add(model)
        uid = f"audit.{model._meta.label_lower}"
        post_save.connect(_saved, sender=model, dispatch_uid=f"{uid}.saved")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"{uid}.deleted")
        for field in model._meta.many_to_many:
            m2m_changed.connect(
                _relation_changed,
                sender=field.remote_field.through,
                dispatch_uid=f"{uid}.{field.name}",
            )


def connect() -> None:
    """People and roles are configuration everywhere."""
    track(get_user_model(), Group)


def _saved(
    sender: type[Model], instance: Model, created: bool, raw: bool, update_fields: Any, **_: Any
) -> None:
    if raw:  # loaddata
        return
    if update_fields and set(update_fields) <= _ROUTINE_USER_FIELDS:
        return
    detail = _named(sender, instance)
    if update_fields:
        detail["fields"] = sorted(update_fields)
    audit_record(action="config.added" if created else "config.changed", **detail)


def _deleted(sender: type[Model], instance: Model, **_: Any) -> None:
    audit_record(action="config.deleted", **_named(sender, instance))


def _relation_changed(
    sender: Any,
    instance: Model,
    action: str,
    reverse: bool,
    model: type[Model],
    pk_set: Any,
    **_: Any,
) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    audit_record(
        action="config.relation_changed",
        **_named(type(instance), instance),
        related=model._meta.label_lower,
        change=action.removeprefix("post_"),
        related_ids=sorted(pk_set) if pk_set else [],
    )


def _named(model: type[Model], instance: Model) -> dict[str, Any]:
    """Which row: its model, id, and name as the admin shows it (configuration is named by
    logins, queue and template names, never by patient data)."""
    return {
        "model": model._meta.label_lower,
        "object_id": str(instance.pk),
        "name": str(instance)[:100],
    }
