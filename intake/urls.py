from django.urls import path

from intake import api, views

app_name = "intake"

urlpatterns = [
    path("runs/start/", views.start_choose, name="start_choose"),
    path("runs/start/<slug:template_id>/", views.start_form, name="start_form"),
    path("runs/started/<uuid:flow_run_id>/", views.run_started, name="run_started"),
    path("api/v1/runs", api.runs_create, name="api_runs"),
    path("api/v1/openapi.json", api.openapi, name="api_openapi"),
]
