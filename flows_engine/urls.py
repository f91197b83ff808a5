from django.urls import path

from flows_engine import views

app_name = "flows_engine"

urlpatterns = [
    path("oauth/token", views.token, name="token"),
    path("v1/flows", views.template_list, name="template_list"),
    path("v1/flows/<slug:template_id>", views.template_detail, name="template_detail"),
    path("v1/flows/<slug:template_id>/versions", views.version_publish, name="version_publish"),
    path("v1/flows/<slug:template_id>/runs", views.run_create, name="run_create"),
    path("v1/flow-runs/<str:run_id>", views.run_detail, name="run_detail"),
    path("openapi.json", views.openapi, name="openapi"),
]
