"""The demo content of ``make run``: logins for each role, teams, queues and routes."""

from datetime import time, timedelta

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from flows_integration.models import FlowTemplate
from reviewqueue import roles
from reviewqueue.models import (
    BusinessCalendar,
    OpeningHours,
    Queue,
    ReasonCode,
    ReasonKind,
    Route,
    SlaClock,
)

DEMO_PASSWORD = "flowdesk-demo"
# username, first name, role groups, team groups
DEMO_USERS: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    ("alice", "Alice", (roles.REVIEWER,), ("Clinical team", "Billing team")),
    ("bob", "Bob", (roles.REVIEWER,), ("Clinical team",)),
    # Signs off what the others decided: a medical director's and a billing manager's steps.
    ("maria", "Maria", (roles.REVIEWER,), ("Sign-off team",)),
    ("sam", "Sam", (roles.SUPERVISOR,), ()),
    ("ada", "Ada", (roles.FLOW_ADMIN,), ()),
    # Reads and exports the audit trail; works no queue.
    ("cora", "Cora", (roles.COMPLIANCE,), ()),
]
# queue, its teams, its SLA, and its routes: (template id, state id or "" for every state,
# priority, whether whoever answered another step of the Run is kept from it)
DemoRoute = tuple[str, str, int, bool]
DEMO_QUEUES: list[tuple[str, tuple[str, ...], timedelta, list[DemoRoute]]] = [
    (
        "Clinical review",
        ("Clinical team",),
        timedelta(hours=4),
        [("prior-authorization", "", 50, False)],
    ),
    (
        "Eligibility",
        ("Clinical team", "Billing team"),
        timedelta(hours=8),
        [("coverage-check", "", 10, False)],
    ),
    # One working day, in the billing office's business hours (``DEMO_CALENDAR``).
    ("Billing", ("Billing team",), timedelta(hours=8), [("billing-write-off", "", 0, False)]),
    # Separation of duties: a sign-off is another team's, and never its own decision's.
    (
        "Sign-off",
        ("Sign-off team",),
        timedelta(hours=8),
        [
            ("prior-authorization", "supervisor-signoff", 50, True),
            ("billing-write-off", "manager-approval", 0, True),
        ],
    ),
]


# The reasons reviewers choose from in every demo queue: (kind, code, title).
DEMO_REASONS: list[tuple[str, str, str]] = [
    (ReasonKind.DECLINE, "outside-expertise", "Outside my expertise"),
    (ReasonKind.DECLINE, "conflict-of-interest", "Conflict of interest"),
    (ReasonKind.POSTPONE, "waiting-for-records", "Waiting for records"),
    (ReasonKind.POSTPONE, "payer-callback", "Waiting for the payer to call back"),
    (ReasonKind.RETURN, "incomplete", "Earlier step incomplete"),
    (ReasonKind.RETURN, "wrong-details", "Earlier step has wrong details"),
]

# The billing office works Monday to Friday, 9 to 5 in New York, closed on US public holidays;
# the Billing queue's SLA runs in these hours.
DEMO_CALENDAR = "Billing office"
DEMO_CALENDAR_QUEUE = "Billing"


def demo_users_ensure() -> list[str]:
    """Create the demo logins with their roles and teams (idempotent); returns the new ones."""
    User = get_user_model()
    created = []
    for username, first_name, role_names, teams in DEMO_USERS:
        user, was_created = User.objects.get_or_create(
            username=username,
            # An address at a reserved domain: a reset link shows in the console of `make run`.
            defaults={"first_name": first_name, "email": f"{username}@flowdesk.example"},
        )
        if was_created:
            user.set_password(DEMO_PASSWORD)
            # Flow admins work in Django admin, which needs is_staff.
            user.is_staff = roles.FLOW_ADMIN in role_names
            user.save()
            created.append(username)
        user.groups.add(*[Group.objects.get_or_create(name=n)[0] for n in (*role_names, *teams)])
    flow_admins_publish_grant()
    return created


# Publishing to the embedded engine, named by app label: the review queue never imports it.
ENGINE_PUBLISH_PERMISSIONS = ("view_template", "view_templateversion", "add_templateversion")


def flow_admins_publish_grant() -> None:
    """Let flow admins publish template versions in the engine's admin when the engine runs
    here. Not in the roles' migration: the engine's permissions exist only where it is
    installed, and against Sohar publishing happens in Sohar's own tools."""
    if not apps.is_installed("flows_engine"):
        return
    group, _ = Group.objects.get_or_create(name=roles.FLOW_ADMIN)
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="flows_engine", codename__in=ENGINE_PUBLISH_PERMISSIONS
        )
    )


def demo_queues_ensure() -> list[Queue]:
    """The demo queues and their routes (idempotent). A route names its template before the
    template's first version is mirrored, so routing works from the first Run."""
    made = []
    for name, teams, sla, routes in DEMO_QUEUES:
        queue, _ = Queue.objects.get_or_create(name=name, defaults={"sla": sla})
        queue.teams.add(*[Group.objects.get_or_create(name=team)[0] for team in teams])
        for template_id, state_id, priority, separate in routes:
            template, _ = FlowTemplate.objects.get_or_create(template_id=template_id)
            Route.objects.get_or_create(
                template=template,
                state_id=state_id,
                defaults={
                    "queue": queue,
                    "priority": priority,
                    "not_by_earlier_answerers": separate,
                },
            )
        made.append(queue)
    demo_calendar_ensure()
    return made


def demo_calendar_ensure() -> BusinessCalendar:
    """The billing office's calendar (idempotent). The Billing queue is put on it when the
    calendar is made, and left as an admin has set it since."""
    calendar, created = BusinessCalendar.objects.get_or_create(
        name=DEMO_CALENDAR, defaults={"time_zone": "America/New_York", "country": "US"}
    )
    if not created:
        return calendar
    OpeningHours.objects.bulk_create(
        OpeningHours(calendar=calendar, weekday=weekday, opens=time(9), closes=time(17))
        for weekday in range(OpeningHours.Weekday.MONDAY, OpeningHours.Weekday.SATURDAY)
    )
    sla = next(sla for name, _, sla, _ in DEMO_QUEUES if name == DEMO_CALENDAR_QUEUE)
    Queue.objects.filter(name=DEMO_CALENDAR_QUEUE).update(
        sla_clock=SlaClock.BUSINESS, calendar=calendar, sla=sla
    )
    return calendar


def demo_reasons_ensure() -> int:
    """The demo queues' reason codes (idempotent: a code an admin has retired or retitled is left
    as it is); returns how many were made."""
    made = 0
    for queue in Queue.objects.filter(name__in=[name for name, *_ in DEMO_QUEUES]):
        for order, (kind, code, title) in enumerate(DEMO_REASONS):
            _, created = ReasonCode.objects.get_or_create(
                queue=queue, kind=kind, code=code, defaults={"title": title, "order": order}
            )
            made += created
    return made
