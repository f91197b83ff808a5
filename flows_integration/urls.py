from django.urls import path

from flows_integration import views

app_name = "flows_integration"

urlpatterns = [
    path("webhooks/", views.webhook, name="webhook"),
]
