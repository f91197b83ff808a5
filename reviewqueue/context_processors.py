from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from flows_integration.models import ApiHealth
from reviewqueue import notifications, roles


def flows_health(request: HttpRequest) -> dict[str, object]:
    """The Flows API's health for the banner: staff keep working while submissions wait.

    Lazy: only whole pages show the banner, and the fragments htmx polls never pay its query.
    ``flows_health_detail`` says whether the banner may show the technical detail (the failing
    call, how often it failed): supervisors act on it, reviewers only need to know to carry on.
    """
    if not request.user.is_authenticated:
        return {}
    return {
        "flows_health": SimpleLazyObject(lambda: ApiHealth.objects.filter(pk=1).first()),
        "flows_health_detail": SimpleLazyObject(lambda: roles.is_supervisor(request.user)),
        # The Triage link in the top bar.
        "can_triage": SimpleLazyObject(lambda: roles.can_triage(request.user)),
        # The top bar's "Notifications (3)": one query on a partial index, whole pages only.
        "unread_notifications": SimpleLazyObject(lambda: notifications.unread_count(request.user)),
    }
