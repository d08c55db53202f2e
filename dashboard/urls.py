"""URLs of the staff dashboard."""

from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("users/", views.user_lookup, name="user_lookup"),
    path("users/<str:user_id>/", views.user_detail, name="user"),
]
