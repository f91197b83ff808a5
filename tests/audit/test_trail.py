"""The audit trail proves itself: every event is chained to the one before, and
``verify_audit`` finds an event edited, removed, moved, or cut off the end."""

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from audit.management.commands.grant_app_role import app_role_grants
from audit.models import AuditChainHead, AuditEvent
from audit.services import audit_record, verify_chain

POSTGRES_ONLY = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="roles and concurrent writers: PostgreSQL only"
)


@pytest.fixture
def trail(db, alice) -> list[AuditEvent]:
    run = uuid.uuid4()
    return [
        audit_record(action="login", actor=alice, ip="10.0.0.1"),
        audit_record(action="item.viewed", actor=alice, item_id=7, flow_run_id=run),
        audit_record(action="item.claimed", actor=alice, item_id=7, flow_run_id=run, via="next"),
        audit_record(action="item.submitted", actor=alice, item_id=7, flow_run_id=run),
        audit_record(action="logout", actor=alice),
    ]


@contextmanager
def tampering() -> Iterator[None]:
    """What someone with the table owner's rights could do: the append-only triggers out of the
    way (put back when the test's transaction rolls back)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Triggers off for this transaction (a superuser's power, as the owner's would be).
            cursor.execute("SET LOCAL session_replication_role = replica")
        else:
            cursor.execute("DROP TRIGGER audit_append_only")
    yield


def broken_at() -> int | None:
    _, broken = verify_chain()
    assert broken is not None
    return broken.event.pk if broken.event is not None else None


def test_an_untouched_trail_holds(trail, capsys):
    total = AuditEvent.objects.count()  # the trail's, and alice's account being added
    assert verify_chain() == (total, None)
    call_command("verify_audit")
    assert f"The audit trail holds: {total} events" in capsys.readouterr().out


def test_an_edited_event_is_named(trail):
    with tampering():
        AuditEvent.objects.filter(pk=trail[2].pk).update(detail={"via": "claim"})
    assert broken_at() == trail[2].pk
    with pytest.raises(CommandError, match=f"broken at event {trail[2].pk} \\(item.claimed"):
        call_command("verify_audit")


def test_an_edit_that_also_rewrites_its_link_breaks_the_next_one(trail):
    """Recomputing the edited event's own link does not help: the next event names the old."""
    from audit import chain

    edited = AuditEvent.objects.get(pk=trail[1].pk)
    edited.ip = "203.0.113.9"
    with tampering():
        AuditEvent.objects.filter(pk=edited.pk).update(
            ip=edited.ip, link=chain.link(trail[0].link, edited.content())
        )
    assert broken_at() == trail[2].pk


def test_a_removed_event_is_seen_at_the_next(trail):
    with tampering():
        AuditEvent.objects.filter(pk=trail[1].pk).delete()
    assert broken_at() == trail[2].pk


def test_events_moved_out_of_order_are_seen(trail):
    first, second = (AuditEvent.objects.get(pk=e.pk) for e in trail[1:3])
    fields = ["at", "actor", "action", "item_id", "flow_run_id", "ip", "detail", "link"]
    with tampering():
        for target, source in ((first, trail[2]), (second, trail[1])):
            AuditEvent.objects.filter(pk=target.pk).update(
                **{name: getattr(source, name) for name in fields}
            )
    assert broken_at() == trail[1].pk


def test_events_cut_off_the_end_are_seen(trail):
    total = AuditEvent.objects.count()
    with tampering():
        AuditEvent.objects.filter(pk__in=[e.pk for e in trail[-2:]]).delete()
    _, broken = verify_chain()
    assert broken is not None and broken.event is None
    assert f"ends after {total - 2} events but the head records {total}" in broken.reason
    with pytest.raises(CommandError, match=f"ends after {total - 2} events"):
        call_command("verify_audit")


def test_the_triggers_refuse_an_edit_without_tampering(trail):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=trail[0].pk).update(action="nothing")
    assert verify_chain() == (AuditEvent.objects.count(), None)


def test_a_rolled_back_action_leaves_no_event_and_no_gap(trail):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="item.claimed", item_id=8)
        raise RuntimeError("the claim failed")
    audit_record(action="item.claimed", item_id=9)
    assert verify_chain() == (AuditEvent.objects.count(), None)


@POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_writers_at_the_same_moment_are_chained_one_after_another():
    """Eight connections append at once: the head row's lock puts them in one line."""
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(5):
                audit_record(action="item.viewed", item_id=n * 100 + i)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert verify_chain() == (40, None)
    assert AuditChainHead.objects.get(pk=1).events == 40


@POSTGRES_ONLY
def test_the_application_role_may_read_and_append_but_never_change_the_trail(trail):
    role = f"flowdesk_app_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}"')  # rolled back with the test
        call_command("grant_app_role", role)
        cursor.execute(f'SET LOCAL ROLE "{role}"')
        audit_record(action="item.viewed", item_id=1)  # appending works, head included
        for statement in (
            "UPDATE audit_auditevent SET action = 'x'",
            "DELETE FROM audit_auditevent",
            "TRUNCATE audit_auditevent",
        ):
            with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
                cursor.execute(statement)
        cursor.execute("RESET ROLE")
    assert verify_chain() == (AuditEvent.objects.count(), None)


def test_the_grants_leave_the_trail_read_and_append_only():
    statements = app_role_grants("flowdesk_app")
    assert 'REVOKE UPDATE, DELETE, TRUNCATE ON "audit_auditevent" FROM "flowdesk_app"' in statements


def test_the_daily_check_logs_an_error_naming_the_break(trail, caplog):
    from audit.tasks import verify_trail

    assert verify_trail() is True
    with tampering():
        AuditEvent.objects.filter(pk=trail[3].pk).update(ip="192.0.2.1")
    assert verify_trail() is False
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert f"broken at event {trail[3].pk}" in record.getMessage()
