from django.urls import path

from reviewqueue import views

app_name = "reviewqueue"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "forms/<slug:template_id>/<int:number>/<str:state_id>/",
        views.form_partial,
        name="form_partial",
    ),
]
