from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from flows_integration.models import ApiHealth


def flows_health(request: HttpRequest) -> dict[str, object]:
    """The Flows API's health for the banner: staff keep working while submissions wait.

    Lazy: only whole pages show the banner, and the fragments htmx polls never pay its query.
    """
    if not request.user.is_authenticated:
        return {}
    return {"flows_health": SimpleLazyObject(lambda: ApiHealth.objects.filter(pk=1).first())}
