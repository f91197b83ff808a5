from django.http import HttpRequest

from flows_integration.models import ApiHealth


def flows_health(request: HttpRequest) -> dict[str, object]:
    """The Flows API's health for the banner: staff keep working while submissions wait."""
    if not request.user.is_authenticated:
        return {}
    return {"flows_health": ApiHealth.objects.filter(pk=1).first()}
