from django.urls import path

from reviewqueue import views

app_name = "reviewqueue"

urlpatterns = [
    path("", views.home, name="home"),
]
