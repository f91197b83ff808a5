"""Flowdesk's URLs plus ``POST /bench/insert``: one autocommitted INSERT of the request body
into ``bench_scratch`` (created by the ``burst`` scenario), nothing else. Served only with
``DJANGO_SETTINGS_MODULE=bench.web_settings``."""

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.urls import urlpatterns as flowdesk_urlpatterns


@csrf_exempt
@require_POST
def insert(request: HttpRequest) -> HttpResponse:
    # Django's default autocommit: the INSERT is its own transaction, committed (and fsynced)
    # before the answer, as the receiver's inbox row is.
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_scratch (body) VALUES (%s)", [request.body.decode()])
    return HttpResponse("inserted", content_type="text/plain")


urlpatterns = [path("bench/insert", insert), *flowdesk_urlpatterns]
