"""The three roles, as Django groups created by a data migration (``0002_roles``).

Teams are plain groups too: a queue names the teams whose reviewers work it.
"""

from typing import Any

REVIEWER = "Reviewer"
SUPERVISOR = "Supervisor"
FLOW_ADMIN = "Flow admin"
COMPLIANCE = "Compliance"

SUPERVISE = "reviewqueue.supervise_item"
STORE_VERSIONS = "flows_integration.add_templateversion"
READ_AUDIT = "audit.view_auditevent"


def is_supervisor(user: Any) -> bool:
    """Supervisors (and superusers) see every queue and may reassign and re-send."""
    return bool(user.is_active and user.has_perm(SUPERVISE))


def can_triage(user: Any) -> bool:
    """Supervisors and flow admins (who store template versions) say which template a Run
    started elsewhere is. Permissions, not group names: they are read once per request."""
    return bool(user.is_active and (is_supervisor(user) or user.has_perm(STORE_VERSIONS)))


def display_name(user: Any) -> str:
    """How a person is named to colleagues: full name, else login."""
    return user.get_full_name() or user.get_username()
